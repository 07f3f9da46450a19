//! Calls each operation of the process capability once through the SDK and
//! prints `<operation> ok` for each; on the first failure prints why and
//! exits 1.

use std::process::ExitCode;

use wasmproc_guest::{Command, State};

fn main() -> ExitCode {
    match exercise() {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            println!("caps failed: {why}");
            ExitCode::FAILURE
        }
    }
}

fn exercise() -> Result<(), String> {
    let output = Command::new("echo")
        .arg("caps")
        .output()
        .map_err(|e| format!("run: {e}"))?;
    check(output.status.success(), || {
        format!("run: {}", output.status)
    })?;
    check(output.stdout == b"caps\n", || {
        format!("run: stdout {:?}", String::from_utf8_lossy(&output.stdout))
    })?;
    println!("run ok");

    let mut child = Command::new("sleep")
        .arg("30")
        .spawn()
        .map_err(|e| format!("start: {e}"))?;
    check(!child.id().is_empty(), || "start: empty id".to_owned())?;
    println!("start ok");

    let listed = wasmproc_guest::list();
    check(listed.iter().any(|c| c.id() == child.id()), || {
        format!("list: {} missing", child.id())
    })?;
    println!("list ok");

    let info = child.info().map_err(|e| format!("get: {e}"))?;
    check(info.id == child.id(), || format!("get: id {}", info.id))?;
    check(info.pid > 0, || "get: pid 0".to_owned())?;
    check(info.program.ends_with("sleep"), || {
        format!("get: program {}", info.program)
    })?;
    check(info.args == ["30"], || format!("get: args {:?}", info.args))?;
    check(info.state == State::Running, || {
        format!("get: state {:?}", info.state)
    })?;
    println!("get ok");

    child.kill().map_err(|e| format!("kill: {e}"))?;
    let info = child.info().map_err(|e| format!("kill: {e}"))?;
    check(info.state == State::Killed, || {
        format!("kill: state {:?}", info.state)
    })?;
    check(info.exit.is_some(), || "kill: no exit status".to_owned())?;
    println!("kill ok");
    Ok(())
}

/// `Ok` if `condition` holds, else the message `why` builds.
fn check(condition: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(why()) }
}
