//! `soak --minutes M [--seed N] [--wasmproc PATH]`: runs `wasmproc serve`
//! under faults for M minutes and prints a table of what the host held at
//! the start and the end, the calls made and the audit records; exits 1,
//! saying why, if the host stopped serving, something grew past its bound
//! or an audit record was lost uncounted. Runs as root (it mounts a tmpfs).
//! See the README's "Reliability" section.

use std::path::PathBuf;
use std::process::ExitCode;
use wasmproc_tests::soak::{self, Options};

const USAGE: &str = "usage: soak --minutes M [--seed N] [--wasmproc PATH]";

fn parse() -> Result<Options, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let mut options = Options {
        minutes: 1.0,
        wasmproc: exe.with_file_name("wasmproc"),
        guest: PathBuf::from(wasmproc_tests::guests::SOAK),
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--minutes" => {
                options.minutes = value
                    .parse()
                    .ok()
                    .filter(|m: &f64| m.is_finite() && *m > 0.0)
                    .ok_or_else(|| format!("--minutes {value}: not a positive number"))?
            }
            "--seed" => {
                options.seed = value
                    .parse()
                    .map_err(|_| format!("--seed {value}: not a number"))?
            }
            "--wasmproc" => options.wasmproc = PathBuf::from(value),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    if !options.wasmproc.is_file() {
        return Err(format!(
            "{} not found: build it first (cargo build -p wasmproc, with --release for a release soak), or name it with --wasmproc",
            options.wasmproc.display()
        ));
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    let figures = match soak::run(&options) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("soak: FAILED: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{figures}");
    let problems = figures.problems();
    if problems.is_empty() {
        println!("soak: passed");
        ExitCode::SUCCESS
    } else {
        for problem in &problems {
            eprintln!("soak: FAILED: {problem}");
        }
        ExitCode::FAILURE
    }
}
