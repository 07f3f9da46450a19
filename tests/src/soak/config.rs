//! The configuration the soak serves: [`PLUGINS`] plugins running the
//! `soak` guest and [`DAEMONS`] daemons that are restarted whenever they
//! end, with the audit file on the soak's tmpfs.

use std::path::{Path, PathBuf};

/// Plugins the host runs.
pub const PLUGINS: usize = 50;
/// Daemons the host keeps running.
pub const DAEMONS: usize = 20;
/// What each plugin pauses between its rounds of calls, in ms.
pub const PLUGIN_PAUSE_MS: u64 = 500;

/// The plugins' policy: `true` to run, `sleep 30` to start; the guest's
/// `false` is not granted.
pub const PLUGIN_POLICY: &str = r#"
[[program]]
name = "/usr/bin/true"
args = [[]]
operations = ["run"]

[[program]]
name = "/usr/bin/sleep"
args = [["30"]]
operations = ["start"]
"#;

/// The name of plugin `n`.
pub fn plugin_name(n: usize) -> String {
    format!("p{n}")
}

/// The name of daemon `n`.
pub fn daemon_name(n: usize) -> String {
    format!("d{n}")
}

/// Writes the configuration into `dir` (the plugins' policy beside it);
/// the audit file is `audit`. Returns the configuration's path.
pub fn write(dir: &Path, guest: &str, audit: &Path) -> std::io::Result<PathBuf> {
    let policy = dir.join("plugin-policy.toml");
    std::fs::write(&policy, PLUGIN_POLICY)?;
    let mut text = format!(
        r#"[serve]
name = "soak"
listen = "127.0.0.1:0"
pid_file = "run/host.pid"
registry_dir = "run/registry"
shutdown_grace = "10s"
audit = "{audit}"

[[policy.program]]
name = "/usr/bin/sleep"
args = [["3600"]]
operations = ["start"]
"#,
        audit = audit.display()
    );
    for n in 0..DAEMONS {
        text.push_str(&format!(
            r#"
[[daemon]]
name = "{name}"
program = "/usr/bin/sleep"
args = ["3600"]
restart = "always"
stop_grace = "1s"

[daemon.backoff]
initial = "100ms"
max = "1s"

[daemon.start_limit]
burst = 1000
interval = "1m"
"#,
            name = daemon_name(n)
        ));
    }
    for n in 0..PLUGINS {
        text.push_str(&format!(
            r#"
[[plugin]]
name = "{name}"
component = "{guest}"
policy = "{policy}"
args = ["{PLUGIN_PAUSE_MS}", "{name}"]
"#,
            name = plugin_name(n),
            policy = policy.display()
        ));
    }
    std::fs::create_dir_all(dir.join("run"))?;
    let path = dir.join("wasmproc.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}
