//! A guest that carries a manifest through the SDK's `manifest!` macro:
//! runs `PROGRAM ARGS...` from its arguments and prints the output, or
//! `error: <error>` (exit 1).

use std::process::ExitCode;
use wasmproc_guest::Command;

wasmproc_guest::manifest!(
    r#"
version = 1

[[program]]
name = "echo"
args = [["from", "*"]]
operations = ["run"]
reason = "prints where it runs from"
"#
);

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(program) = args.next() else {
        println!("error: usage: declared PROGRAM [ARG...]");
        return ExitCode::FAILURE;
    };
    match Command::new(program).args(args).output() {
        Ok(out) => {
            print!("{}", String::from_utf8_lossy(&out.stdout));
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
