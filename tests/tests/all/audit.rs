use serde_json::{Value, json};
use std::sync::Arc;
use wasmproc_host::ProcessCtx;
use wasmproc_host::ProcessManager;
use wasmproc_host::audit::Audit;
use wasmproc_host::audit::JsonLinesSink;
use wasmproc_host::process::block_on;
use wasmproc_host::session::CommandSpec;
use wasmproc_host::session::StartSpec;
use wasmproc_tests::harness::policy;

#[test]
fn audit_decisions_good() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let audit = Audit::new().with_sink(Arc::new(JsonLinesSink::open(&path).unwrap()));
    let manager = ProcessManager::builder()
        .grace(std::time::Duration::from_secs(2))
        .host_effects(wasmproc_host::process::HostEffects::ALL)
        .build();
    {
        let mut ctx = ProcessCtx::builder(
            wasmproc_tests::harness::admit(policy(&["echo", "sleep"])),
            manager,
        )
        .guest("auditor")
        .audit(audit)
        .build();
        block_on(ctx.run(CommandSpec::new("echo").args(["hi"]))).unwrap();
        block_on(ctx.run(CommandSpec::new("rm").args(["-rf", "/"]))).unwrap_err();
        let id = ctx
            .start(CommandSpec::new("sleep").args(["30"]), StartSpec::default())
            .unwrap();
        block_on(ctx.kill(&id)).unwrap();
        block_on(ctx.kill("nope")).unwrap_err();
    }
    let events: Vec<Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |op: &str, decision: Option<&str>| {
        events
            .iter()
            .find(|e| e["operation"] == op && decision.is_none_or(|d| e["decision"] == d))
            .unwrap_or_else(|| panic!("no {op}/{decision:?} event in {events:#?}"))
            .clone()
    };
    for e in &events {
        assert_eq!(e["guest"], "auditor");
        assert!(e["time_ms"].as_u64().unwrap() > 1_600_000_000_000);
    }
    let allowed = find("run", Some("allowed"));
    assert_eq!(allowed["program"], "echo");
    assert_eq!(allowed["args"], json!(["hi"]));
    let denied = find("run", Some("denied"));
    assert_eq!(denied["program"], "rm");
    assert_eq!(denied["args"], json!(["-rf", "/"]));
    assert!(
        denied["reason"]
            .as_str()
            .unwrap()
            .contains("`rm` is not granted")
    );
    let exit = find("exit", None);
    assert_eq!(exit["exit"], "exit 0");
    assert!(exit["pid"].as_u64().is_some());
    let started = find("started", None);
    let id = started["id"].as_str().unwrap().to_string();
    assert!(started["pid"].as_u64().is_some());
    let kill = find("kill", Some("allowed"));
    assert_eq!(kill["id"], id.as_str());
    let killed = find("killed", None);
    assert_eq!(killed["id"], id.as_str());
    assert_eq!(killed["exit"], "signal 15");
    let missing = find("kill", Some("refused"));
    assert!(missing["reason"].as_str().unwrap().starts_with("not-found"));
}
