//! The soak test's plugin, `soak PAUSE_MS NAME`: calls the host without
//! end, pausing PAUSE_MS between rounds. Each round runs a granted
//! program, asks for one the policy does not grant, and starts a granted
//! program, kills it, waits for it and removes it. Every call prints one
//! line: `soak-call NAME OP ok` or `soak-call NAME OP err KIND`.

use std::time::Duration;
use wasmproc_guest::{Command, Error};
use wasmproc_test_guests::error_kind;

/// The granted program `run` calls (exits 0).
const GRANTED_RUN: &str = "/usr/bin/true";
/// A program the policy does not grant.
const NOT_GRANTED: &str = "/usr/bin/false";
/// The granted program `start` calls, with its one granted argument.
const GRANTED_START: (&str, &str) = ("/usr/bin/sleep", "30");

fn report<T>(name: &str, op: &str, result: &Result<T, Error>) {
    match result {
        Ok(_) => println!("soak-call {name} {op} ok"),
        Err(e) => println!("soak-call {name} {op} err {}", error_kind(e)),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let pause_ms = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(500);
    let name = args.get(2).map_or("soak", String::as_str);
    loop {
        report(name, "run", &Command::new(GRANTED_RUN).output());
        report(name, "denied", &Command::new(NOT_GRANTED).output());
        let started = Command::new(GRANTED_START.0).arg(GRANTED_START.1).spawn();
        report(name, "start", &started);
        if let Ok(mut child) = started {
            report(name, "kill", &child.kill());
            report(name, "wait", &child.wait());
            report(name, "remove", &child.remove());
        }
        std::thread::sleep(Duration::from_millis(pause_ms));
    }
}
