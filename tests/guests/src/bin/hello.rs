//! Prints a greeting and exits with the code given as the first argument
//! (default 0). Does not use the process capability.

use std::process::ExitCode;

fn main() -> ExitCode {
    println!("hello from guest");
    let code = std::env::args()
        .nth(1)
        .map(|arg| arg.parse::<u8>().expect("the exit code must be 0..=255"))
        .unwrap_or(0);
    ExitCode::from(code)
}
