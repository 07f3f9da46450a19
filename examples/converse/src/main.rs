//! Holds a conversation with a long-running child: starts `sh` running a
//! small line-oriented calculator service, sends it one question per line, and
//! reads each answer as it arrives, the way a plugin talks to a language
//! server or a REPL.
//!
//! ```text
//! wasmproc run converse.wasm --allow sh
//! ```

use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;
use wasmproc_guest::{Command, Error, Stdio};

/// The service, a POSIX shell loop: reads `a op b` per line and answers
/// `= result` at once (the shell writes each line unbuffered); `quit` ends it.
const SERVICE: &str = r#"
while read -r a op b; do
  case "$a $op $b" in
    quit*) exit 0 ;;
  esac
  case "$op" in
    +|-|'*'|/|%) echo "= $((a $op b))" ;;
    *) echo "? cannot evaluate: $a $op $b" ;;
  esac
done
"#;

fn main() -> ExitCode {
    match converse() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Denied(reason)) => {
            eprintln!("converse: wasmproc denied starting sh: {reason}");
            eprintln!("converse needs sh: run with --allow sh");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("converse: {e}");
            ExitCode::FAILURE
        }
    }
}

fn converse() -> Result<(), Error> {
    let mut service = Command::new("sh")
        .args(["-c", SERVICE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut to_service = service.stdin.take().expect("stdin is piped");
    let mut answers = BufReader::new(service.stdout.take().expect("stdout is piped"));
    let questions = ["6 * 7", "1 + 2", "10 / 4", "2 ^ 8", "100 - 58"];
    for question in questions {
        writeln!(to_service, "{question}").map_err(|e| Error::Io(e.to_string()))?;
        let mut answer = String::new();
        answers
            .read_line(&mut answer)
            .map_err(|e| Error::Io(e.to_string()))?;
        println!("{question:>10}  {}", answer.trim_end());
    }
    writeln!(to_service, "quit").map_err(|e| Error::Io(e.to_string()))?;
    drop(to_service); // end-of-file, as a std `ChildStdin` gives
    let status = service.wait()?;
    println!("service ended: {status}");
    Ok(())
}
