//! Reading the operands of a step.

use std::time::Duration;

use serde_json::Value;
use wasmproc_guest::{Buffering, Command, Signal, Stdio};

use crate::failure::Failure;

/// One step object of the script.
#[derive(Clone, Copy)]
pub struct Step<'a>(pub &'a Value);

impl<'a> Step<'a> {
    /// An operand; `None` if absent or `null`.
    fn field(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).filter(|value| !value.is_null())
    }

    /// A required text operand.
    pub fn text(&self, name: &str) -> Result<&'a str, Failure> {
        self.optional_text(name)?
            .ok_or_else(|| malformed(format!("missing `{name}`")))
    }

    /// An optional text operand.
    pub fn optional_text(&self, name: &str) -> Result<Option<&'a str>, Failure> {
        self.field(name)
            .map(|value| {
                value
                    .as_str()
                    .ok_or_else(|| malformed(format!("`{name}` must be a string")))
            })
            .transpose()
    }

    /// A required whole-number operand.
    pub fn number(&self, name: &str) -> Result<u64, Failure> {
        self.optional_number(name)?
            .ok_or_else(|| malformed(format!("missing `{name}`")))
    }

    /// An optional whole-number operand.
    pub fn optional_number(&self, name: &str) -> Result<Option<u64>, Failure> {
        self.field(name)
            .map(|value| {
                value
                    .as_u64()
                    .ok_or_else(|| malformed(format!("`{name}` must be a whole number")))
            })
            .transpose()
    }

    /// An optional boolean operand, `false` if absent.
    pub fn flag(&self, name: &str) -> Result<bool, Failure> {
        self.field(name)
            .map(|value| {
                value
                    .as_bool()
                    .ok_or_else(|| malformed(format!("`{name}` must be true or false")))
            })
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// The command fields, with the spawn options.
    pub fn command(&self) -> Result<Command, Failure> {
        let mut command = Command::new(self.text("program")?);
        command.args(self.strings("args")?);
        for pair in self.list("env")? {
            match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(key), Value::String(value)]) => command.env(key, value),
                _ => return Err(malformed("`env` entries must be [key, value] strings")),
            };
        }
        if let Some(cwd) = self.optional_text("cwd")? {
            command.current_dir(cwd);
        }
        if let Some(stdin) = self.optional_text("stdin")? {
            command.stdin_bytes(stdin.as_bytes());
        }
        if let Some(millis) = self.optional_number("timeout_ms")? {
            command.timeout(Duration::from_millis(millis));
        }
        if let Some(mode) = self.optional_text("stdin_mode")? {
            command.stdin(stdio(mode)?);
        }
        if let Some(mode) = self.optional_text("stdout_mode")? {
            command.stdout(stdio(mode)?);
        }
        if let Some(mode) = self.optional_text("stderr_mode")? {
            command.stderr(stdio(mode)?);
        }
        if let Some(buffering) = self.optional_text("buffering")? {
            command.buffering(match buffering {
                "lossless" => Buffering::Lossless,
                "ring" => Buffering::Ring,
                other => return Err(malformed(format!("unknown buffering `{other}`"))),
            });
        }
        if let Some(bytes) = self.optional_number("buffer_bytes")? {
            command.buffer_size(bytes);
        }
        Ok(command)
    }

    /// An optional array operand, empty if absent.
    fn list(&self, name: &str) -> Result<&'a [Value], Failure> {
        match self.field(name) {
            None => Ok(&[]),
            Some(value) => value
                .as_array()
                .map(Vec::as_slice)
                .ok_or_else(|| malformed(format!("`{name}` must be an array"))),
        }
    }

    /// An optional array-of-strings operand.
    fn strings(&self, name: &str) -> Result<Vec<&'a str>, Failure> {
        self.list(name)?
            .iter()
            .map(|value| {
                value
                    .as_str()
                    .ok_or_else(|| malformed(format!("`{name}` must hold strings")))
            })
            .collect()
    }
}

/// The signal named `name`.
pub fn signal(name: &str) -> Result<Signal, Failure> {
    Ok(match name {
        "terminate" => Signal::Terminate,
        "kill" => Signal::Kill,
        "interrupt" => Signal::Interrupt,
        "hangup" => Signal::Hangup,
        "quit" => Signal::Quit,
        "user1" => Signal::User1,
        "user2" => Signal::User2,
        other => return Err(malformed(format!("unknown signal `{other}`"))),
    })
}

/// The stdio mode named `name`.
fn stdio(name: &str) -> Result<Stdio, Failure> {
    Ok(match name {
        "null" => Stdio::null(),
        "piped" => Stdio::piped(),
        "inherit" => Stdio::inherit(),
        other => return Err(malformed(format!("unknown stdio mode `{other}`"))),
    })
}

/// A failure for a step the probe cannot understand.
pub fn malformed(why: impl Into<String>) -> Failure {
    Failure::Probe(why.into())
}
