//! Daemon supervision end to end: restart policies and backoff, stop
//! escalation, liveness and readiness probes, PID files, the registry, guest
//! access, and `wasmproc serve`, one module per concern. Intervals are
//! short and every wait is bounded; nothing leaves loopback.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the tests run the wasmproc CLI as a child process"
)]

mod flood;
mod guest;
mod pidfiles;
mod probe;
mod registry;
mod restart;
mod serve;

use std::io::{Read, Write};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmproc_host::CallError;
use wasmproc_host::Policy;
use wasmproc_host::ProcessManager;
use wasmproc_host::audit::Audit;
use wasmproc_host::process::Exit;
use wasmproc_supervisor::identity::ProcessIdentity;
use wasmproc_supervisor::pidfile::{self, Existing, PidFile};
use wasmproc_supervisor::registry_dir::{EntryKind, RegistryDir};
use wasmproc_supervisor::{
    DaemonCtx, DaemonState, DaemonStatus, HostConfig, Supervisor, SupervisorOptions,
};
use wasmproc_tests::harness::{cli_path, unique_marker};
use wasmproc_tests::os::{alive, eventually, pids_with_arg, pids_with_env};

const MARK: &str = "WASMPROC_TEST_MARK";
const LIMIT: Duration = Duration::from_secs(15);

/// A policy header granting the programs the tests use, the marker
/// variable, and `dir` as the working directory.
fn policy_toml(dir: &Path) -> String {
    format!(
        r#"
[policy.env]
allow = ["{MARK}"]
[policy.dirs]
roots = ["{}"]
[[policy.program]]
name = "sh"
[[policy.program]]
name = "sleep"
[[policy.program]]
name = "test"
operations = ["run"]
[[policy.program]]
name = "false"
operations = ["run"]
[[policy.program]]
name = "/usr/bin/python3"
net.bind = "any"
"#,
        dir.display()
    )
}

struct Fixture {
    dir: tempfile::TempDir,
    supervisor: Arc<Supervisor>,
    marker: String,
}

/// A supervisor for `daemons` (TOML `[[daemon]]` tables, with `{MARK}`
/// replaced by the test's marker assignment).
fn fixture(test: &str, daemons: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = unique_marker(test);
    let daemons = daemons.replace("{MARK}", &format!("{MARK} = \"{marker}\""));
    let text = format!("{}\n{daemons}", policy_toml(dir.path()));
    let config = HostConfig::parse(&text, dir.path()).expect("config");
    let registry = RegistryDir::open(&dir.path().join("registry")).expect("registry");
    let supervisor = Supervisor::new(
        &config,
        ProcessManager::builder()
            .grace(Duration::from_secs(2))
            .host_effects(wasmproc_host::process::HostEffects::ALL)
            .build(),
        SupervisorOptions {
            registry: Some(registry),
            ..SupervisorOptions::default()
        },
    )
    .expect("supervisor");
    Fixture {
        dir,
        supervisor,
        marker,
    }
}

impl Fixture {
    fn status(&self, name: &str) -> DaemonStatus {
        self.supervisor.status(name).expect("declared")
    }

    fn wait_for(
        &self,
        name: &str,
        what: &str,
        mut check: impl FnMut(&DaemonStatus) -> bool,
    ) -> DaemonStatus {
        let ok = eventually(LIMIT, || check(&self.status(name)));
        let s = self.status(name);
        assert!(ok, "daemon {name} never reached `{what}`: {s:#?}");
        s
    }

    fn leftovers(&self) -> Vec<i32> {
        pids_with_env(MARK, &self.marker)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.supervisor.shutdown();
    }
}

/// A loopback port nothing listens on (right now).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}
