//! `wasmproc serve`: /health, /ready and /daemons, the control socket,
//! the `wasmproc daemon` commands, and a clean shutdown.

use super::*;

/// `GET path` on `addr`; returns the status code and body.
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    wasmproc_tests::http::get(addr, path, Duration::from_secs(5))
}

struct Served {
    child: Child,
    dir: tempfile::TempDir,
    marker: String,
}

impl Served {
    fn registry(&self) -> PathBuf {
        self.dir.path().join("registry")
    }

    /// The host's temporary directory (its `TMPDIR`), where its sessions'
    /// private directories are made.
    fn tmp(&self) -> PathBuf {
        self.dir.path().join("tmp")
    }

    fn addr(&self) -> String {
        let reg = RegistryDir::open(&self.registry()).expect("registry");
        let host = reg.get(EntryKind::Host, "test-host").expect("host entry");
        host.health
            .expect("health url")
            .trim_start_matches("http://")
            .trim_end_matches("/health")
            .to_string()
    }

    fn cli(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(cli_path())
            .arg("daemon")
            .arg("--registry")
            .arg(self.registry())
            .args(args)
            .output()
            .expect("cli");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(test: &str, daemons: &str) -> (Served, tempfile::TempDir) {
    serve_with(test, "", daemons, |_| {})
}

/// [`serve`] with more `[serve]` keys, and `prepare` run on the directory
/// before the host starts.
fn serve_with(
    test: &str,
    serve_keys: &str,
    daemons: &str,
    prepare: impl FnOnce(&Path),
) -> (Served, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    prepare(dir.path());
    let marker = unique_marker(test);
    let daemons = daemons.replace("{MARK}", &format!("{MARK} = \"{marker}\""));
    let config = format!(
        "[serve]\nname = \"test-host\"\nlisten = \"127.0.0.1:0\"\npid_file = \"host.pid\"\nregistry_dir = \"registry\"\nshutdown_grace = \"3s\"\n{serve_keys}\n{}\n{daemons}",
        policy_toml(dir.path())
    );
    let path = dir.path().join("wasmproc.toml");
    std::fs::write(&path, config).expect("write config");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).expect("tmp dir");
    let child = Command::new(cli_path())
        .args(["serve", "--config"])
        .arg(&path)
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let spare = tempfile::tempdir().expect("dir");
    (Served { child, dir, marker }, spare)
}

fn wait_serving(s: &mut Served) {
    let reg = RegistryDir::open(&s.registry()).expect("registry");
    let up = eventually(LIMIT, || reg.get(EntryKind::Host, "test-host").is_some());
    if !up {
        let _ = s.child.kill();
        let mut err = String::new();
        let _ = s
            .child
            .stderr
            .take()
            .map(|mut e| e.read_to_string(&mut err));
        panic!("serve never registered: {err}");
    }
}

#[test]
fn serve_health_good() {
    let port = free_port();
    let (mut s, _spare) = serve(
        "serve-good",
        &format!(
            r#"
[[daemon]]
name = "web"
program = "/usr/bin/python3"
args = ["-m", "http.server", "{port}", "--bind", "127.0.0.1"]
env = {{ {{MARK}} }}
restart = "always"
readiness = {{ http = "http://127.0.0.1:{port}/", period = "100ms" }}
[[daemon]]
name = "worker"
program = "sh"
args = ["-c", "while :; do sleep 0.2; done"]
env = {{ {{MARK}} }}
restart = "always"
"#
        ),
    );
    wait_serving(&mut s);
    let addr = s.addr();
    let (code, health) = http_get(&addr, "/health").expect("answer");
    assert_eq!(code, 200);
    assert!(health.starts_with("ok\ncontainment: "), "{health}");
    assert!(
        eventually(LIMIT, || http_get(&addr, "/ready")
            == Some((200, "ready\n".into()))),
        "{:?}",
        http_get(&addr, "/ready")
    );
    assert_eq!(http_get(&addr, "/nope").map(|r| r.0), Some(404));
    let host_pid = std::fs::read_to_string(s.dir.path().join("host.pid")).expect("host PID file");
    assert_eq!(
        host_pid.lines().next(),
        Some(s.child.id().to_string().as_str())
    );

    let (code, list) = s.cli(&["list"]);
    assert_eq!(code, 0);
    assert!(
        list.lines()
            .any(|l| l.starts_with("host") && l.contains("test-host")),
        "{list}"
    );
    for name in ["web", "worker"] {
        assert!(
            list.lines()
                .any(|l| l.contains(name) && l.contains("running")),
            "{list}"
        );
    }
    let (code, status) = s.cli(&["status", "web"]);
    assert_eq!(code, 0);
    let status: serde_json::Value = serde_json::from_str(&status).expect("json");
    assert_eq!(
        (status["state"].as_str(), status["ready"].as_bool()),
        (Some("running"), Some(true))
    );
    assert_eq!(s.cli(&["status", "ghost"]).0, 1);
    let (code, stopped) = s.cli(&["stop", "worker"]);
    assert_eq!((code, stopped.trim()), (0, "stopped worker"));
    let (_, status) = s.cli(&["status", "worker"]);
    assert!(status.contains("\"stopped\""), "{status}");
    assert_eq!(
        http_get(&addr, "/health").map(|r| r.0),
        Some(200),
        "a stopped daemon is not a failure"
    );

    let exit = s.terminate();
    assert_eq!(exit.code(), Some(0), "clean shutdown");
    assert!(
        !s.dir.path().join("host.pid").exists(),
        "host PID file removed"
    );
    let reg = RegistryDir::open(&s.registry()).expect("registry");
    assert!(
        reg.entries().is_empty(),
        "unregistered: {:?}",
        reg.entries()
    );
    assert!(
        eventually(Duration::from_secs(2), || pids_with_env(MARK, &s.marker)
            .is_empty()),
        "no process left behind"
    );
    assert!(http_get(&addr, "/health").is_none(), "no longer listening");
}

#[test]
fn health_failed_daemon_bad() {
    let (mut s, _spare) = serve(
        "serve-failed",
        r#"
[[daemon]]
name = "crash"
program = "sh"
args = ["-c", "exit 7"]
backoff = { initial = "10ms", jitter = 0.0 }
start_limit = { burst = 2, interval = "60000ms" }
"#,
    );
    wait_serving(&mut s);
    let addr = s.addr();
    assert!(eventually(LIMIT, || http_get(&addr, "/health")
        .is_some_and(|(c, _)| c == 503)));
    let (code, body) = http_get(&addr, "/health").expect("answer");
    assert_eq!(code, 503);
    assert!(
        body.contains("daemon crash: failed (start limit reached"),
        "{body}"
    );
    let (code, body) = http_get(&addr, "/ready").expect("answer");
    assert_eq!(code, 503, "{body}");
    assert_eq!(s.terminate().code(), Some(0));
}

#[test]
fn serve_start_bad() {
    // Cannot start cleanly: a daemon the policy does not grant, a
    // non-loopback address, a host PID file another host holds.
    let dir = tempfile::tempdir().expect("dir");
    let run = |config: &str| {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, config).expect("write");
        let out = Command::new(cli_path())
            .args(["serve", "--config"])
            .arg(&path)
            .output()
            .expect("serve");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let base = format!(
        "[serve]\nlisten = \"127.0.0.1:0\"\nregistry_dir = \"{}\"\n",
        dir.path().join("reg").display()
    );
    let (code, err) = run(&format!(
        "{base}[[daemon]]\nname = \"x\"\nprogram = \"sleep\"\n"
    ));
    assert_ne!(code, Some(0));
    assert!(err.contains("not granted"), "{err}");
    let (code, err) = run("[serve]\nlisten = \"0.0.0.0:0\"\n");
    assert_ne!(code, Some(0));
    assert!(err.contains("loopback"), "{err}");
    let held = dir.path().join("held.pid");
    let _lock = PidFile::acquire(&held).expect("lock");
    let (code, err) = run(&format!("{base}pid_file = \"{}\"\n", held.display()));
    assert_ne!(code, Some(0));
    assert!(err.contains("held by another process"), "{err}");
}

#[test]
fn serve_sigterm_ugly() {
    // SIGTERM while a daemon ignores SIGTERM: serve still exits cleanly
    // after the daemon's grace period, leaving nothing behind.
    let (mut s, _spare) = serve(
        "serve-ugly",
        r#"
[[daemon]]
name = "stubborn"
program = "sh"
args = ["-c", "trap '' TERM; while :; do sleep 0.05; done"]
env = { {MARK} }
stop_grace = "300ms"
"#,
    );
    wait_serving(&mut s);
    assert!(eventually(LIMIT, || !pids_with_env(MARK, &s.marker).is_empty()));
    let exit = s.terminate();
    assert_eq!(exit.code(), Some(0));
    assert!(
        pids_with_env(MARK, &s.marker).is_empty(),
        "the daemon's group was killed"
    );
    assert!(!s.dir.path().join("host.pid").exists());
}

/// Sends `request` as written to `addr`; returns the status code, or `None`
/// when the server closed the connection without an answer.
fn raw_request(addr: &str, request: &[u8]) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(LIMIT)).expect("timeout");
    s.write_all(request).expect("send");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.get(9..12)?.parse().ok()
}

#[test]
fn serve_http_routes_bad() {
    // Only GET of the three paths is served; other methods get 405, other
    // paths 404, a request that is not HTTP 400, and a client that never
    // sends its request head is cut off instead of holding a connection.
    let (mut s, _spare) = serve("serve-routes", "");
    wait_serving(&mut s);
    let addr = s.addr();
    let (code, body) = http_get(&addr, "/daemons").expect("answer");
    assert_eq!(code, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("JSON"),
        serde_json::json!([])
    );
    assert_eq!(http_get(&addr, "/nope").map(|(c, _)| c), Some(404));
    assert_eq!(
        raw_request(
            &addr,
            format!("POST /health HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n")
                .as_bytes()
        ),
        Some(405)
    );
    assert_eq!(raw_request(&addr, b"NONSENSE\r\n\r\n"), Some(400));
    let began = Instant::now();
    let mut silent = std::net::TcpStream::connect(&addr).expect("connect");
    silent.set_read_timeout(Some(LIMIT)).expect("timeout");
    let mut buf = [0u8; 256];
    let _ = silent.read(&mut buf);
    assert!(
        began.elapsed() < LIMIT,
        "a silent client was not cut off within {LIMIT:?}"
    );
    let status = s.terminate();
    assert!(status.success(), "{status}");
}

#[test]
fn serve_threads_bounded_good() {
    // Forty daemons, each probed every 100 ms: the host's thread count does
    // not grow with them (it was four threads per daemon when each had a
    // supervising thread, an exit watcher, a probe thread and a monitor).
    let port = free_port();
    let daemons: String = (0..40)
        .map(|i| {
            format!(
                "[[daemon]]\nname = \"d{i}\"\nprogram = \"sleep\"\nargs = [\"600\"]\nenv = {{ {{MARK}} }}\nreadiness = {{ tcp = \"127.0.0.1:{port}\", period = \"100ms\" }}\n"
            )
        })
        .collect();
    let (mut s, _spare) = serve("serve-threads", &daemons);
    wait_serving(&mut s);
    assert!(
        eventually(LIMIT, || pids_with_env(MARK, &s.marker).len() == 40),
        "forty daemons running"
    );
    // Probes have run a few rounds by now.
    std::thread::sleep(Duration::from_millis(500));
    let threads = std::fs::read_dir(format!("/proc/{}/task", s.child.id()))
        .expect("tasks")
        .count();
    assert!(threads <= 16, "{threads} host threads for 40 daemons");
    assert_eq!(s.terminate().code(), Some(0));
    assert!(pids_with_env(MARK, &s.marker).is_empty());
}

/// The secret of [`serve_http_host_token_bad`].
const TOKEN: &str = "0123456789abcdef-serve-token";

#[test]
fn serve_http_host_token_bad() {
    // DNS rebinding: a request whose Host is not the listen address gets
    // no answer from any endpoint; /daemons needs the configured bearer
    // token, the other endpoints do not.
    use std::os::unix::fs::PermissionsExt;
    let (mut s, _spare) = serve_with("serve-host", "token_file = \"daemons.token\"", "", |dir| {
        let file = dir.join("daemons.token");
        std::fs::write(&file, format!("{TOKEN}\n")).expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    });
    wait_serving(&mut s);
    let addr = s.addr();
    let port = addr.rsplit_once(':').expect("port").1.to_string();
    let get = |path: &str, headers: &str| {
        raw_request(
            &addr,
            format!("GET {path} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n").as_bytes(),
        )
    };
    let here = format!("Host: {addr}\r\n");
    let localhost = format!("Host: localhost:{port}\r\n");
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    // Good: the listen address or localhost, with its port.
    for host in [&here, &localhost] {
        assert_eq!(get("/health", host), Some(200), "{host}");
        assert_eq!(get("/ready", host), Some(200), "{host}");
        assert_eq!(
            get("/daemons", &format!("{host}{auth}")),
            Some(200),
            "{host}"
        );
    }
    // Bad Host: a rebound name, another port, another loopback address.
    for host in [
        format!("Host: rebind.example:{port}\r\n"),
        "Host: rebind.example\r\n".to_string(),
        "Host: 127.0.0.1:1\r\n".to_string(),
        format!("Host: 127.0.0.2:{port}\r\n"),
    ] {
        for path in ["/health", "/ready", "/daemons", "/nope"] {
            assert_eq!(
                get(path, &format!("{host}{auth}")),
                Some(421),
                "{path} {host}"
            );
        }
    }
    assert_eq!(
        raw_request(&addr, b"GET /health HTTP/1.0\r\n\r\n"),
        Some(400),
        "no Host"
    );
    assert_eq!(
        get(&format!("http://rebind.example:{port}/health"), &here),
        Some(421),
        "absolute-form target naming another host"
    );
    // Missing or wrong token.
    assert_eq!(get("/daemons", &here), Some(401));
    let wrong = format!("{here}Authorization: Bearer {TOKEN}x\r\n");
    assert_eq!(get("/daemons", &wrong), Some(401));
    let basic = format!("{here}Authorization: Basic {TOKEN}\r\n");
    assert_eq!(get("/daemons", &basic), Some(401));
    let (code, body) = http_get(&addr, "/daemons").expect("answer");
    assert_eq!(code, 401);
    assert!(!body.contains(TOKEN), "{body}");
    let status = s.terminate();
    assert!(status.success(), "{status}");
}

#[test]
fn serve_token_file_bad() {
    // A token file others can read, a missing one, or one too short to be
    // a secret: serve refuses to start and says which.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let token = dir.path().join("t");
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[serve]\nlisten = \"127.0.0.1:0\"\nregistry_dir = \"reg\"\ntoken_file = \"{}\"\n",
            token.display()
        ),
    )
    .expect("write");
    let run = || {
        let out = Command::new(cli_path())
            .args(["serve", "--config"])
            .arg(&config)
            .output()
            .expect("serve");
        assert!(!out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(run().contains("No such file"));
    std::fs::write(&token, TOKEN).expect("write");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = run();
    assert!(
        err.contains("0644") && err.contains("group or others"),
        "{err}"
    );
    assert!(!err.contains(TOKEN), "{err}");
    std::fs::write(&token, "short").expect("write");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert!(run().contains("16 to 4096 bytes"));
}

/// A daemon that marks its private `TMPDIR`, for the tests below.
const TMPDIR_MARKER: &str = r#"
[[daemon]]
name = "marker"
program = "sh"
args = ["-c", "echo made > \"$TMPDIR/mark\"; while :; do sleep 0.2; done"]
env = { {MARK} }
restart = "always"
"#;

/// The sessions' private directories in `tmp` that their program marked.
fn marked_private_dirs(tmp: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(tmp)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.join("mark").exists())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn serve_private_tmpdirs_removed_at_exit_good() {
    // A plugin (the soak's guest, calling `true` again and again) and a
    // daemon: the plugin's session is still held by its thread when the
    // host ends, and its private TMPDIR goes with the host all the same.
    let plugin = format!(
        r#"
[[plugin]]
name = "caller"
component = "{}"
policy = "plugin-policy.toml"
args = ["20", "caller"]
"#,
        wasmproc_tests::guests::SOAK
    );
    let (mut s, _spare) = serve_with(
        "tmpdir-exit",
        "",
        &format!("{TMPDIR_MARKER}{plugin}"),
        |dir| {
            std::fs::write(
                dir.join("plugin-policy.toml"),
                wasmproc_tests::soak::config::PLUGIN_POLICY,
            )
            .unwrap();
        },
    );
    wait_serving(&mut s);
    let tmp = s.tmp();
    let entries = || {
        std::fs::read_dir(&tmp)
            .map(|d| d.flatten().count())
            .unwrap_or(0)
    };
    assert!(
        eventually(LIMIT, || marked_private_dirs(&tmp).len() == 1
            && entries() == 2),
        "the daemon and the plugin never made their TMPDIRs: {:?}",
        std::fs::read_dir(&tmp).map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
    );
    assert_eq!(s.terminate().code(), Some(0));
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn serve_killed_host_tmpdirs_removed_by_next_ugly() {
    // SIGKILL leaves no chance to clean up: the next host removes what a
    // host that no longer runs left, and only that.
    let (mut first, _spare) = serve("tmpdir-killed", TMPDIR_MARKER);
    wait_serving(&mut first);
    let left = {
        let tmp = first.tmp();
        assert!(eventually(LIMIT, || marked_private_dirs(&tmp).len() == 1));
        first.child.kill().expect("SIGKILL");
        first.child.wait().expect("reap");
        let left = marked_private_dirs(&tmp);
        assert_eq!(left.len(), 1, "a killed host cannot remove its own");
        left[0].clone()
    };
    let not_a_host = Path::new("wasmproc-tmp-someone-else");
    let (mut next, _spare) = serve_with("tmpdir-next", "", TMPDIR_MARKER, |dir| {
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(tmp.join(not_a_host)).unwrap();
        std::fs::rename(&left, tmp.join(left.file_name().unwrap())).unwrap();
    });
    wait_serving(&mut next);
    let tmp = next.tmp();
    let moved = tmp.join(left.file_name().unwrap());
    assert!(
        eventually(LIMIT, || !moved.exists()),
        "the dead host's TMPDIR is still there: {:?}",
        std::fs::read_dir(&tmp).map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
    );
    assert!(
        tmp.join(not_a_host).exists(),
        "a name without a pid is kept"
    );
    assert!(eventually(LIMIT, || marked_private_dirs(&tmp).len() == 1));
    assert_eq!(next.terminate().code(), Some(0));
}

#[test]
fn serve_plugin_daemon_access_from_its_entry_good() {
    // Two plugins call `stop` on one daemon: the one whose `[[plugin]]`
    // entry grants `control` of it stops it; the other, granted nothing,
    // is denied, and both decisions are audited under their names.
    let plugins = format!(
        r#"
[[daemon]]
name = "worker"
program = "sleep"
args = ["60"]

[[plugin]]
name = "nosy"
component = "{ctl}"
args = ["stop:worker"]

[[plugin]]
name = "owner"
component = "{ctl}"
args = ["stop:worker"]
daemons = {{ control = ["worker"] }}
"#,
        ctl = wasmproc_tests::guests::DAEMONCTL
    );
    let (mut s, _spare) = serve_with("plugin-access", "audit = \"audit.jsonl\"", &plugins, |_| {});
    wait_serving(&mut s);
    let audit = s.dir.path().join("audit.jsonl");
    let decision = |guest: &str| {
        std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|r| r["guest"] == guest && r["operation"] == "daemon-stop")
            .and_then(|r| r["decision"].as_str().map(str::to_owned))
    };
    assert!(
        eventually(LIMIT, || decision("nosy").is_some()
            && decision("owner").is_some()),
        "both plugins called: {}",
        std::fs::read_to_string(&audit).unwrap_or_default()
    );
    assert_eq!(decision("nosy").as_deref(), Some("denied"));
    assert_eq!(decision("owner").as_deref(), Some("allowed"));
    assert!(
        eventually(LIMIT, || s
            .cli(&["status", "worker"])
            .1
            .contains("\"stopped\"")),
        "the granted stop did not stop the daemon"
    );
    assert_eq!(s.terminate().code(), Some(0));
}
