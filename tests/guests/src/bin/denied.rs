//! Tries to run `/bin/echo x` and reports the error. Exits 0 if the policy
//! denied it, 1 otherwise.

use std::process::ExitCode;

use wasmproc_guest::{Command, Error};
use wasmproc_test_guests::error_kind;

fn main() -> ExitCode {
    match Command::new("/bin/echo").arg("x").output() {
        Ok(output) => {
            println!("unexpectedly allowed: {}", output.status);
            ExitCode::FAILURE
        }
        Err(error) => {
            println!("error: {error}");
            println!("kind: {}", error_kind(&error));
            if matches!(error, Error::Denied(_)) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
