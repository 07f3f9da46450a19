//! Drives the `wasmproc:process/daemon` interface through the SDK's
//! `daemon` module. Each argument is one step, `OP` or `OP:NAME` (`list`,
//! `status`, `start`, `stop`, `restart`, `output`); each prints one line:
//! `OP NAME ok DETAIL` or `OP NAME err KIND`.

use wasmproc_guest::{Error, daemon};
use wasmproc_test_guests::error_kind;

fn done<T>(result: Result<T, Error>, detail: impl FnOnce(T) -> String) -> String {
    match result {
        Ok(v) => format!("ok {}", detail(v)),
        Err(e) => format!("err {}", error_kind(&e)),
    }
}

fn main() {
    for step in std::env::args().skip(1) {
        let (op, name) = step.split_once(':').unwrap_or((step.as_str(), ""));
        let outcome = match op {
            "list" => format!("ok {}", daemon::list().join(",")),
            "status" => done(daemon::status(name), |s| {
                format!(
                    "DaemonState::{:?} ready={} pid={}",
                    s.state,
                    s.ready,
                    s.pid.is_some()
                )
            }),
            "start" => done(daemon::start(name), |()| String::new()),
            "stop" => done(daemon::stop(name), |()| String::new()),
            "restart" => done(daemon::restart(name), |()| String::new()),
            "output" => done(daemon::recent_output(name, 1024), |o| {
                String::from_utf8_lossy(&o.stdout).trim().to_string()
            }),
            _ => "err unknown-step".to_string(),
        };
        println!("{op} {name} {}", outcome.trim_end());
    }
}
