//! Kernel confinement of granted programs, attacked as a hostile guest or
//! a wide grant would: files outside the roots, the host's `/proc`, the
//! network, signals, escapees, setuid; and the grants that widen it.

use serde_json::json;
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmproc_host::Policy;
use wasmproc_host::ProcessCtx;
use wasmproc_host::ProcessManager;
use wasmproc_host::process::Exit;
use wasmproc_host::process::block_on;
use wasmproc_host::session::CommandSpec;
use wasmproc_tests::harness::{err_detail, err_kind, ok, probe, session, shared_runtime};
use wasmproc_tests::os::eventually;

/// A granted root (with a file in it) and a directory beside it that is
/// not granted (with a secret in it).
struct Dirs {
    _base: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

const SECRET: &str = "the-secret-outside-the-roots";

fn dirs() -> Dirs {
    let base = tempfile::tempdir().expect("temp dir");
    let root = base.path().join("root").canonicalize_or_make();
    let outside = base.path().join("outside").canonicalize_or_make();
    std::fs::write(root.join("inside.txt"), "inside\n").unwrap();
    std::fs::write(outside.join("secret.txt"), SECRET).unwrap();
    Dirs {
        _base: base,
        root,
        outside,
    }
}

trait MakeDir {
    fn canonicalize_or_make(self) -> PathBuf;
}

impl MakeDir for PathBuf {
    fn canonicalize_or_make(self) -> PathBuf {
        std::fs::create_dir_all(&self).unwrap();
        self.canonicalize().unwrap()
    }
}

/// A policy file in `dir` with `body`, loaded.
fn policy_file(dir: &Path, body: &str) -> Arc<Policy> {
    let path = dir.join("policy.toml");
    std::fs::write(&path, body).unwrap();
    Arc::new(Policy::from_file(&path).unwrap_or_else(|e| panic!("policy: {e}\n{body}")))
}

/// A policy granting `programs` (any arguments) and `root`.
fn granting(programs: &[&str], root: &Path) -> Arc<Policy> {
    let mut b = Policy::builder().allow_dir(&root.to_string_lossy());
    for p in programs {
        b = b.allow_program(p);
    }
    Arc::new(b.build().expect("policy"))
}

fn run(ctx: &mut ProcessCtx, program: &str, args: &[&str]) -> wasmproc_host::process::Output {
    let spec = CommandSpec::new(program)
        .args(args.iter().copied())
        .timeout_ms(20_000);
    block_on(ctx.run(spec)).unwrap_or_else(|e| panic!("{program} {args:?}: {e}"))
}

/// A child's `env` output without the `TMPDIR` line the confinement adds
/// (checked to name a session's private directory).
pub(crate) fn env_without_tmpdir(output: &serde_json::Value) -> String {
    let text = output.as_str().expect("env output");
    let (tmpdir, rest): (Vec<&str>, Vec<&str>) =
        text.lines().partition(|l| l.starts_with("TMPDIR="));
    assert_eq!(tmpdir.len(), 1, "one TMPDIR in {text:?}");
    assert!(tmpdir[0].contains("/wasmproc-tmp-"), "{text:?}");
    rest.iter().map(|l| format!("{l}\n")).collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn denied(out: &wasmproc_host::process::Output) -> bool {
    out.exit != Some(Exit::Code(0))
        && text(&out.stderr).contains("ermission denied")
        && !text(&out.stdout).contains(SECRET)
}

#[test]
fn confine_read_outside_roots_denied_ugly() {
    let d = dirs();
    let (_m, mut ctx) = session(granting(&["cat", "ls"], &d.root));
    let secret = d.outside.join("secret.txt");
    let out = run(&mut ctx, "cat", &[secret.to_str().unwrap()]);
    assert!(denied(&out), "cat read outside the roots: {out:?}");
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let out = run(&mut ctx, "ls", &[&home]);
    assert!(denied(&out), "ls listed the home directory: {out:?}");
    // Inside the roots, and the system directories, are readable.
    let inside = run(
        &mut ctx,
        "cat",
        &[d.root.join("inside.txt").to_str().unwrap()],
    );
    assert_eq!(text(&inside.stdout), "inside\n", "{inside:?}");
    let system = run(&mut ctx, "cat", &["/etc/passwd"]);
    assert_eq!(system.exit, Some(Exit::Code(0)), "{system:?}");
}

#[test]
fn confine_owner_only_system_file_denied_ugly() {
    // The host runs as root here, as CI does: a child as uid 0 owns
    // /etc/shadow, so its mode keeps nothing out. The domain grants of /etc
    // only what any user may read.
    let shadow = Path::new("/etc/shadow");
    let mode = std::fs::metadata(shadow)
        .expect("this test needs /etc/shadow")
        .permissions()
        .mode();
    assert_eq!(mode & 0o004, 0, "/etc/shadow is readable by anyone here");
    assert!(
        std::fs::read(shadow).is_ok(),
        "the attack needs a host that can read /etc/shadow (root)"
    );
    let d = dirs();
    let (_m, mut ctx) = session(granting(&["cat", "ls"], &d.root));
    let out = run(&mut ctx, "cat", &["/etc/shadow"]);
    // Only the exit and stderr are shown: stdout would be the secret.
    assert!(
        out.exit != Some(Exit::Code(0)) && text(&out.stderr).contains("ermission denied"),
        "cat read /etc/shadow ({} bytes): exit {:?}, stderr {:?}",
        out.stdout.len(),
        out.exit,
        text(&out.stderr)
    );
    // What any user may read stays readable, and /etc can be listed.
    let passwd = run(&mut ctx, "cat", &["/etc/passwd"]);
    assert!(text(&passwd.stdout).contains("root:"), "{passwd:?}");
    let listing = run(&mut ctx, "ls", &["/etc"]);
    assert!(text(&listing.stdout).contains("passwd"), "{listing:?}");
}

#[test]
fn confine_host_proc_denied_ugly() {
    // The attack: start a process, learn the host's pid from its
    // /proc/<pid>/stat, then read the host's environ, maps and memory.
    let host = std::process::id();
    let r = probe(
        shared_runtime(),
        wasmproc_tests::harness::policy(&["sleep", "cat"]),
        json!([
            {"op": "run", "program": "cat", "args": ["/proc/self/stat"]},
            {"op": "start", "program": "sleep", "args": ["30"]},
            {"op": "run", "program": "cat", "args": [format!("/proc/{host}/environ")]},
            {"op": "run", "program": "cat", "args": [format!("/proc/{host}/maps")]},
            {"op": "run", "program": "cat", "args": [format!("/proc/{host}/mem")]},
            {"op": "run", "program": "cat", "args": ["/proc/self/status"]},
        ]),
    );
    // What the attacker learns first, and still can: the host's pid, as
    // the parent in its child's stat.
    let stat = ok(&r[0])["stdout"].as_str().unwrap().to_string();
    let ppid = stat
        .rsplit(')')
        .next()
        .and_then(|f| f.split_whitespace().nth(1));
    assert_eq!(ppid, Some(host.to_string().as_str()), "{stat}");
    for (step, what) in [(2, "environ"), (3, "maps"), (4, "mem")] {
        let out = ok(&r[step]);
        assert_ne!(
            out["status"],
            json!({"exited": 0}),
            "{what} was read: {out}"
        );
        assert_eq!(out["stdout_len"], 0, "{what} leaked: {out}");
        assert!(
            out["stderr"].as_str().unwrap().contains("ermission denied"),
            "{what}: {out}"
        );
    }
    // Its own entries stay readable.
    let own = ok(&r[5]);
    assert_eq!(own["status"], json!({"exited": 0}), "{own}");
    let status = own["stdout"].as_str().unwrap();
    assert!(status.contains("NoNewPrivs:\t1"), "{own}");
    // No capability either (CAP_PERFMON alone reads any environ), though
    // `cat` was started by `execve` as root: under no_new_privs that grants
    // nothing beyond the empty permitted set.
    for set in ["CapInh", "CapEff", "CapPrm", "CapAmb"] {
        assert!(
            status.contains(&format!("{set}:\t0000000000000000")),
            "{set}: {status}"
        );
    }
}

#[test]
fn confine_write_outside_roots_denied_ugly() {
    let d = dirs();
    let (_m, mut ctx) = session(granting(&["git", "sh"], &d.root));
    std::fs::write(d.root.join("a"), "one\n").unwrap();
    std::fs::write(d.root.join("b"), "two\n").unwrap();
    let target = d.outside.join("written-by-git");
    let output = format!("--output={}", target.display());
    let a = d.root.join("a");
    let b = d.root.join("b");
    let out = run(
        &mut ctx,
        "git",
        &[
            "diff",
            "--no-index",
            &output,
            a.to_str().unwrap(),
            b.to_str().unwrap(),
        ],
    );
    assert!(!target.exists(), "git wrote outside the roots: {out:?}");
    assert!(text(&out.stderr).contains("ermission denied"), "{out:?}");
    let bashrc = d.outside.join(".bashrc");
    let script = format!("echo pwned >> {}", bashrc.display());
    let out = run(&mut ctx, "sh", &["-c", &script]);
    assert!(!bashrc.exists(), "sh wrote outside the roots: {out:?}");
    // The same write inside the roots works.
    let inside = d.root.join("diff");
    let output = format!("--output={}", inside.display());
    run(
        &mut ctx,
        "git",
        &[
            "diff",
            "--no-index",
            &output,
            a.to_str().unwrap(),
            b.to_str().unwrap(),
        ],
    );
    assert!(
        std::fs::read_to_string(&inside).unwrap().contains("+two"),
        "git could not write inside the roots"
    );
}

/// Runs bash's `/dev/tcp` or `/dev/udp` redirection to a port.
fn bash_send(ctx: &mut ProcessCtx, proto: &str, port: u16) -> wasmproc_host::process::Output {
    let script = format!("echo hello > /dev/{proto}/127.0.0.1/{port}");
    run(ctx, "bash", &["-c", &script])
}

/// Whether a connection reaches `listener` within a short wait.
fn accepted(listener: &TcpListener) -> Option<String> {
    listener.set_nonblocking(true).unwrap();
    let mut got = None;
    eventually(Duration::from_millis(500), || match listener.accept() {
        Ok((mut s, _)) => {
            s.set_nonblocking(false).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut text = String::new();
            let _ = s.read_to_string(&mut text);
            got = Some(text);
            true
        }
        Err(_) => false,
    });
    got
}

#[test]
fn confine_network_denied_ugly() {
    let d = dirs();
    let (_m, mut ctx) = session(granting(&["bash"], &d.root));
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let out = bash_send(&mut ctx, "tcp", tcp.local_addr().unwrap().port());
    assert_ne!(
        out.exit,
        Some(Exit::Code(0)),
        "TCP connect succeeded: {out:?}"
    );
    assert!(accepted(&tcp).is_none(), "the listener got a connection");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let out = bash_send(&mut ctx, "udp", udp.local_addr().unwrap().port());
    assert_ne!(out.exit, Some(Exit::Code(0)), "UDP socket made: {out:?}");
    let mut buf = [0u8; 64];
    assert!(udp.recv(&mut buf).is_err(), "a UDP datagram arrived");
}

#[test]
fn confine_network_granted_port_good() {
    let d = dirs();
    let granted = TcpListener::bind("127.0.0.1:0").unwrap();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = granted.local_addr().unwrap().port();
    let policy = policy_file(
        &d.root,
        &format!(
            "[[program]]\nname = \"bash\"\nnet.connect = [{port}]\n[dirs]\nroots = [\"{}\"]\n",
            d.root.display()
        ),
    );
    let (_m, mut ctx) = session(policy);
    let out = bash_send(&mut ctx, "tcp", port);
    assert_eq!(out.exit, Some(Exit::Code(0)), "{out:?}");
    assert_eq!(accepted(&granted).as_deref(), Some("hello\n"));
    let out = bash_send(&mut ctx, "tcp", other.local_addr().unwrap().port());
    assert_ne!(
        out.exit,
        Some(Exit::Code(0)),
        "an ungranted port was reached: {out:?}"
    );
    assert!(accepted(&other).is_none());
    // A grant of ports keeps UDP refused.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let out = bash_send(&mut ctx, "udp", udp.local_addr().unwrap().port());
    assert_ne!(out.exit, Some(Exit::Code(0)), "UDP socket made: {out:?}");
}

#[test]
fn confine_signal_outside_denied_ugly() {
    let d = dirs();
    let policy = granting(&["sh", "sleep"], &d.root);
    let runtime = shared_runtime();
    let (mut other, canary) =
        wasmproc_tests::harness::start_in_other_session(runtime, &policy, "sleep", &["30"]);
    let canary_pid = other.get(&canary).unwrap().facts.pid;
    let (_m, mut ctx) = session(policy);
    let host = std::process::id();
    let script = format!(
        "kill -0 {host} && echo host-reached; kill -TERM {canary_pid} && echo canary-reached; \
         sleep 30 & kill -TERM $! && echo own-reached"
    );
    let out = run(&mut ctx, "sh", &["-c", &script]);
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("host-reached"), "{out:?}");
    assert!(!stdout.contains("canary-reached"), "{out:?}");
    assert!(stdout.contains("own-reached"), "its own child: {out:?}");
    assert!(
        wasmproc_tests::os::alive(canary_pid as i32),
        "the other guest's process was signalled"
    );
    block_on(other.kill(&canary)).unwrap();
}

#[test]
fn confine_escapee_inherits_ugly() {
    let d = dirs();
    let (_m, mut ctx) = session(granting(&["sh"], &d.root));
    let report = d.root.join("report");
    let script = format!(
        "setsid -w sh -c 'cat {}/secret.txt > {r}.out 2> {r}.err; echo done > {r}.done'",
        d.outside.display(),
        r = report.display()
    );
    let out = run(&mut ctx, "sh", &["-c", &script]);
    assert_eq!(out.exit, Some(Exit::Code(0)), "{out:?}");
    let done = report.with_extension("done");
    assert!(eventually(Duration::from_secs(10), || done.exists()));
    let read = std::fs::read_to_string(report.with_extension("out")).unwrap();
    let err = std::fs::read_to_string(report.with_extension("err")).unwrap();
    assert!(!read.contains(SECRET), "the escapee read the secret");
    assert!(err.contains("ermission denied"), "{err}");
}

#[test]
fn confine_tmpdir_private_good() {
    let d = dirs();
    let policy = granting(&["sh", "ls"], &d.root);
    let (_m, mut first) = session(Arc::clone(&policy));
    let out = run(
        &mut first,
        "sh",
        &["-c", "echo $TMPDIR; echo x > $TMPDIR/f && echo wrote"],
    );
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    let tmpdir = PathBuf::from(lines.next().unwrap());
    assert_eq!(lines.next(), Some("wrote"), "{out:?}");
    assert!(tmpdir.is_dir());
    assert_eq!(
        std::fs::metadata(&tmpdir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    // Another session's program cannot look into it, and has its own.
    let (_m2, mut second) = session(policy);
    let out = run(&mut second, "ls", &[tmpdir.to_str().unwrap()]);
    assert!(denied(&out), "another session listed the TMPDIR: {out:?}");
    let theirs = run(&mut second, "sh", &["-c", "echo $TMPDIR"]);
    assert_ne!(text(&theirs.stdout).trim(), tmpdir.to_str().unwrap());
    drop(first);
    assert!(!tmpdir.exists(), "the TMPDIR outlived its session");
}

#[test]
fn confine_setuid_no_gain_good() {
    // A setgid copy of `id` of the group nogroup: without no_new_privs its
    // effective gid would be nogroup's; under confinement the bit is
    // ignored, as a setuid-root binary's is for a user.
    let d = dirs();
    let bin = d.root.join("bin").canonicalize_or_make();
    let id = bin.join("id");
    std::fs::copy("/usr/bin/id", &id).unwrap();
    let nogroup = 65534;
    std::os::unix::fs::chown(&id, Some(0), Some(nogroup)).unwrap();
    std::fs::set_permissions(&id, std::fs::Permissions::from_mode(0o2755)).unwrap();
    let policy = granting(&[id.to_str().unwrap()], &d.root);
    let (_m, mut ctx) = session(policy);
    let out = run(&mut ctx, id.to_str().unwrap(), &["-g"]);
    assert_eq!(out.exit, Some(Exit::Code(0)), "{out:?}");
    assert_eq!(
        text(&out.stdout).trim(),
        effective_gid().to_string(),
        "the setgid bit changed the effective gid"
    );
}

#[test]
fn confine_socket_families_refused_ugly() {
    // Every way to a socket the filter knows of, tried from a confined
    // python3 in the real kernel: only unix sockets open.
    let script = r#"
import ctypes, errno, socket
res = {}
def sock(name, family, kind):
    try:
        socket.socket(family, kind).close()
        res[name] = "ok"
    except OSError as e:
        res[name] = errno.errorcode.get(e.errno, str(e.errno))
def call(name, *args):
    libc = ctypes.CDLL(None, use_errno=True)
    r = libc.syscall(*args)
    res[name] = "ok" if r >= 0 else errno.errorcode.get(ctypes.get_errno())
sock("unix", socket.AF_UNIX, socket.SOCK_STREAM)
sock("netlink", socket.AF_NETLINK, socket.SOCK_RAW)
sock("packet", socket.AF_PACKET, socket.SOCK_DGRAM)
sock("udp", socket.AF_INET, socket.SOCK_DGRAM)
sock("tcp6", socket.AF_INET6, socket.SOCK_STREAM)
call("io_uring", 425, 8, ctypes.create_string_buffer(256))
call("x32_socket", 0x40000000 | 41, 2, 2, 0)
print(" ".join(f"{k}={v}" for k, v in sorted(res.items())))
"#;
    let d = dirs();
    // The system's python3 (a version manager's shim on PATH would need
    // its home directory).
    let (_m, mut ctx) = session(granting(&["/usr/bin/python3"], &d.root));
    let out = run(&mut ctx, "/usr/bin/python3", &["-c", script]);
    assert_eq!(out.exit, Some(Exit::Code(0)), "{out:?}");
    assert_eq!(
        text(&out.stdout).trim(),
        "io_uring=EAFNOSUPPORT netlink=EAFNOSUPPORT packet=EAFNOSUPPORT tcp6=EAFNOSUPPORT \
         udp=EAFNOSUPPORT unix=ok x32_socket=ENOSYS",
        "{out:?}"
    );
}

#[test]
fn confine_file_capabilities_no_gain_ugly() {
    // A copy of `cat` given CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH as
    // file capabilities (effective), started as root: it must run with no
    // capability, and a file only its owner (nobody) may read stays shut.
    let d = dirs();
    let bin = d.root.join("bin").canonicalize_or_make();
    let cat = bin.join("cat");
    std::fs::copy("/usr/bin/cat", &cat).unwrap();
    set_file_capabilities(&cat, (1 << 1) | (1 << 2));
    let private = d.root.join("private.txt");
    std::fs::write(&private, SECRET).unwrap();
    std::os::unix::fs::chown(&private, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (_m, mut ctx) = session(granting(&[cat.to_str().unwrap()], &d.root));
    let status = run(&mut ctx, cat.to_str().unwrap(), &["/proc/self/status"]);
    assert_eq!(status.exit, Some(Exit::Code(0)), "{status:?}");
    let status = text(&status.stdout);
    for set in ["CapInh", "CapEff", "CapPrm", "CapAmb"] {
        assert!(
            status.contains(&format!("{set}:\t0000000000000000")),
            "{set} after a file-capability exec: {status}"
        );
    }
    let out = run(
        &mut ctx,
        cat.to_str().unwrap(),
        &[private.to_str().unwrap()],
    );
    assert!(
        !text(&out.stdout).contains(SECRET),
        "read with a file capability: {out:?}"
    );
    assert!(text(&out.stderr).contains("ermission denied"), "{out:?}");
}

/// Gives `file` the capabilities `permitted` (bits of capability numbers),
/// effective at exec: a `security.capability` attribute, revision 2.
fn set_file_capabilities(file: &Path, permitted: u32) {
    const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
    const VFS_CAP_FLAGS_EFFECTIVE: u32 = 1;
    let words = [
        VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE,
        permitted,
        0,
        0,
        0,
    ];
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let path = std::ffi::CString::new(file.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path, a name, and a buffer of `bytes.len()`.
    let rc = unsafe {
        libc::setxattr(
            path.as_ptr(),
            c"security.capability".as_ptr(),
            bytes.as_ptr().cast(),
            bytes.len(),
            0,
        )
    };
    assert_eq!(
        rc,
        0,
        "cannot set file capabilities on {}: {}",
        file.display(),
        std::io::Error::last_os_error()
    );
}

/// This process's effective gid, read from /proc.
fn effective_gid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Gid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn confine_daemon_good() {
    use wasmproc_supervisor::{HostConfig, Supervisor, SupervisorOptions};
    let d = dirs();
    let r = d.root.join("daemon");
    let text = format!(
        r#"
[policy.dirs]
roots = ["{root}"]
[[policy.program]]
name = "sh"
[[daemon]]
name = "reader"
program = "sh"
args = ["-c", "cat {outside}/secret.txt > {r}.out 2> {r}.err; echo $TMPDIR > {r}.tmp; sleep 30"]
"#,
        root = d.root.display(),
        outside = d.outside.display(),
        r = r.display()
    );
    let config = HostConfig::parse(&text, &d.root).expect("config");
    let supervisor = Supervisor::new(
        &config,
        ProcessManager::builder()
            .grace(Duration::from_secs(2))
            .host_effects(wasmproc_host::process::HostEffects::ALL)
            .build(),
        SupervisorOptions::default(),
    )
    .expect("supervisor");
    supervisor.start("reader").expect("start");
    let tmp = r.with_extension("tmp");
    assert!(eventually(Duration::from_secs(10), || {
        std::fs::read_to_string(&tmp).is_ok_and(|t| t.ends_with('\n'))
    }));
    let err = std::fs::read_to_string(r.with_extension("err")).unwrap();
    let out = std::fs::read_to_string(r.with_extension("out")).unwrap();
    supervisor.shutdown();
    assert!(!out.contains(SECRET), "the daemon read the secret");
    assert!(err.contains("ermission denied"), "{err}");
    let tmpdir = std::fs::read_to_string(&tmp).unwrap();
    assert!(tmpdir.contains("wasmproc-tmp-"), "TMPDIR {tmpdir:?}");
}

#[test]
fn confine_unavailable_reported_good() {
    // With confinement switched off, `run`'s notice and `/health` say so,
    // and `require_confinement` refuses.
    let d = dirs();
    let policy = d.root.join("policy.toml");
    std::fs::write(
        &policy,
        "require_confinement = true\n[[program]]\nname = \"true\"\n",
    )
    .unwrap();
    let steps = json!([{"op": "run", "program": "true", "args": []}]);
    let cli = wasmproc_tests::harness::cli_path();
    let out = std::process::Command::new(&cli)
        .args(["run", wasmproc_tests::guests::PROBE, "--policy"])
        .arg(&policy)
        .arg("--")
        .arg(steps.to_string())
        .env(wasmproc_host::os::confine::OFF_VAR, "1")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .contains("programs run less confined than granted: not enforced: nothing is confined"),
        "{stderr}"
    );
    let line = text(&out.stdout);
    let result: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert_eq!(err_kind(&result), "denied", "{result}");
    assert!(
        err_detail(&result).contains("require_confinement"),
        "{result}"
    );
    // Without the switch, the same policy runs the program.
    let out = std::process::Command::new(&cli)
        .args(["run", wasmproc_tests::guests::PROBE, "--policy"])
        .arg(&policy)
        .arg("--")
        .arg(steps.to_string())
        .output()
        .unwrap();
    let line = text(&out.stdout);
    let result: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert_eq!(ok(&result)["status"], json!({"exited": 0}), "{result}");

    // `serve`'s /health.
    let config = d.root.join("host.toml");
    std::fs::write(
        &config,
        format!(
            "[serve]\nlisten = \"127.0.0.1:0\"\nregistry_dir = \"{}\"\n",
            d.root.join("registry").display()
        ),
    )
    .unwrap();
    let mut serve = std::process::Command::new(&cli)
        .args(["serve", "--config"])
        .arg(&config)
        .env(wasmproc_host::os::confine::OFF_VAR, "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = serve.stderr.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 512];
    let addr = loop {
        let n = stderr.read(&mut buf).unwrap();
        assert!(n > 0, "serve ended: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if let Some(rest) = seen.split("serving http://").nth(1)
            && let Some(addr) = rest.split("/health").next()
            && seen
                .split("confinement:")
                .nth(1)
                .is_some_and(|line| line.contains('\n'))
        {
            break addr.to_string();
        }
    };
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.write_all(
        format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut health = String::new();
    conn.read_to_string(&mut health).unwrap();
    // SAFETY: SIGTERM to the child this test started.
    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    let _ = serve.wait();
    assert!(
        health.contains("confinement: not enforced: nothing is confined"),
        "{health}"
    );
    assert!(seen.contains("confinement: not enforced"), "{seen}");
}

#[test]
fn confine_manifest_intersection_good() {
    // The policy grants two ports and two readable directories; the
    // manifest declares one of each: only those are open.
    let d = dirs();
    let declared = TcpListener::bind("127.0.0.1:0").unwrap();
    let undeclared = TcpListener::bind("127.0.0.1:0").unwrap();
    let (p1, p2) = (
        declared.local_addr().unwrap().port(),
        undeclared.local_addr().unwrap().port(),
    );
    let extra = d
        .root
        .parent()
        .unwrap()
        .join("extra")
        .canonicalize_or_make();
    std::fs::write(extra.join("f"), "extra\n").unwrap();
    let policy = policy_file(
        &d.root,
        &format!(
            "[[program]]\nname = \"bash\"\nnet.connect = [{p1}, {p2}]\nfs.read = [\"{}\", \"{}\"]\n",
            extra.display(),
            d.outside.display()
        ),
    );
    let manifest = wasmproc_host::manifest::Manifest::parse(
        "test",
        &format!(
            "version = 1\n[[program]]\nname = \"bash\"\nreason = \"talks to one port\"\n\
             net.connect = [{p1}]\nfs.read = [\"{}\"]\n",
            extra.display()
        ),
    )
    .expect("manifest");
    let table = wasmproc_host::manifest::inspect_table(&manifest, Some(&policy));
    assert!(table.contains(&format!("net.connect={p1}")), "{table}");
    let admission = wasmproc_host::Admission::new(
        Arc::clone(&policy),
        Some(Arc::new(manifest)),
        std::path::Path::new("the test's manifest"),
        false,
        || unreachable!("the policy is not pinned to a component"),
    )
    .expect("admitted");
    let manager = ProcessManager::builder()
        .grace(Duration::from_secs(2))
        .host_effects(wasmproc_host::process::HostEffects::ALL)
        .build();
    let mut ctx = ProcessCtx::builder(Arc::new(admission), Arc::clone(&manager))
        .guest("m")
        .build();
    let out = bash_send(&mut ctx, "tcp", p1);
    assert_eq!(out.exit, Some(Exit::Code(0)), "{out:?}");
    assert_eq!(accepted(&declared).as_deref(), Some("hello\n"));
    let out = bash_send(&mut ctx, "tcp", p2);
    assert_ne!(out.exit, Some(Exit::Code(0)), "{out:?}");
    assert!(accepted(&undeclared).is_none());
    let script = format!(
        "cat {}/f; cat {}/secret.txt",
        extra.display(),
        d.outside.display()
    );
    let out = run(&mut ctx, "bash", &["-c", &script]);
    assert_eq!(text(&out.stdout), "extra\n", "{out:?}");
    assert!(text(&out.stderr).contains("ermission denied"), "{out:?}");
}

/// One message framed as the Language Server Protocol frames it.
fn lsp_frame(message: serde_json::Value) -> String {
    let body = message.to_string();
    format!("Content-Length: {}\r\n\r\n{body}", body.len())
}

#[test]
fn confine_language_server_session_good() {
    // A real language server (python-lsp-server, made by
    // scripts/lsp-venv.sh) holds a session under the default rules. Its
    // grant adds the reading of its own environment (`fs.read`) and names
    // the variable through which the guest puts its cache (jedi's parse
    // cache, which it cannot work without) in the session's root rather
    // than the host's home.
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/lsp-venv")
        .canonicalize()
        .expect("this test needs target/lsp-venv: run scripts/lsp-venv.sh");
    let pylsp = venv.join("bin/pylsp");
    let d = dirs();
    std::fs::write(d.root.join("hello.py"), "import os\nos.getcwd()\n").unwrap();
    let uri = format!("file://{}", d.root.join("hello.py").display());
    let session_input = [
        lsp_frame(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "processId": null, "rootUri": format!("file://{}", d.root.display()), "capabilities": {}}})),
        lsp_frame(json!({"jsonrpc": "2.0", "method": "initialized", "params": {}})),
        lsp_frame(json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": uri, "languageId": "python", "version": 1,
                             "text": "import os\nos.getcwd()\n"}}})),
        lsp_frame(json!({"jsonrpc": "2.0", "id": 2, "method": "textDocument/hover", "params": {
            "textDocument": {"uri": uri}, "position": {"line": 1, "character": 4}}})),
        lsp_frame(json!({"jsonrpc": "2.0", "id": 3, "method": "shutdown"})),
        lsp_frame(json!({"jsonrpc": "2.0", "method": "exit"})),
    ]
    .concat();
    let policy = policy_file(
        &d.root,
        &format!(
            "[[program]]\nname = \"{}\"\nenv = [\"XDG_CACHE_HOME\"]\nfs.read = [\"{}\"]\n\
             [dirs]\nroots = [\"{}\"]\n",
            pylsp.display(),
            venv.display(),
            d.root.display()
        ),
    );
    let (_m, mut ctx) = session(policy);
    let spec = CommandSpec::new(pylsp.display().to_string())
        .env(
            "XDG_CACHE_HOME",
            d.root.join(".cache").display().to_string(),
        )
        .cwd(d.root.display().to_string())
        .stdin(session_input)
        .timeout_ms(60_000);
    let out = block_on(ctx.run(spec)).expect("pylsp runs");
    let stdout = text(&out.stdout);
    assert_eq!(
        out.exit,
        Some(Exit::Code(0)),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains(r#""id": 1"#) || stdout.contains(r#""id":1"#),
        "{stdout}"
    );
    assert!(
        stdout.contains("hoverProvider"),
        "initialize answered: {stdout}"
    );
    assert!(
        stdout.contains("getcwd"),
        "hover answered from the standard library: {stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains(r#""id": 3"#) || stdout.contains(r#""id":3"#),
        "shutdown answered: {stdout}"
    );
}
