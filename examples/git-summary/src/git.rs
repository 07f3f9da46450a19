//! Running git through the process capability.

use std::fmt;

use wasmproc_guest::{Command, Error, ExitStatus};

/// Runs `git` subcommands in one repository.
pub struct Git {
    repository: Option<String>,
}

/// Why a git call gave no answer.
pub enum Failure {
    /// The policy refused to run the command.
    Denied { command: String, why: String },
    /// The host could not run the command.
    Host { command: String, error: Error },
    /// Git ran and failed.
    Git {
        command: String,
        status: ExitStatus,
        stderr: String,
    },
}

impl Git {
    /// Git in `repository`, or in the policy's working directory if `None`.
    pub fn new(repository: Option<String>) -> Self {
        Git { repository }
    }

    /// Runs `git <args>` and returns its stdout.
    pub fn run(&self, args: &[&str]) -> Result<String, Failure> {
        let mut command = Command::new("git");
        command.args(args);
        if let Some(repository) = &self.repository {
            command.current_dir(repository);
        }
        let shown = format!("git {}", args.join(" "));
        let output = command.output().map_err(|error| match error {
            Error::Denied(why) => Failure::Denied {
                command: shown.clone(),
                why,
            },
            error => Failure::Host {
                command: shown.clone(),
                error,
            },
        })?;
        if !output.status.success() {
            return Err(Failure::Git {
                command: shown,
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Denied { command, why } => write!(f, "`{command}` was denied: {why}"),
            Failure::Host { command, error } => write!(f, "`{command}` failed: {error}"),
            Failure::Git {
                command,
                status,
                stderr,
            } => {
                write!(f, "`{command}` failed with {status}")?;
                if !stderr.is_empty() {
                    write!(f, ": {stderr}")?;
                }
                Ok(())
            }
        }
    }
}
