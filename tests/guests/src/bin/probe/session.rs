//! Running steps, remembering their results and the processes they started.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{Value, json};
use wasmproc_guest::Child;

use crate::digest::StreamDigest;
use crate::failure::Failure;
use crate::step::{Step, malformed, signal};
use crate::{raw, report};

/// How many ids `repeat_start` reports.
const REPORTED_IDS: usize = 10;

/// The state of one probe run.
#[derive(Default)]
pub struct Session {
    /// The ok value of each step so far, `None` for failed steps.
    results: Vec<Option<Value>>,
    /// Every process the host returned an id for, by id.
    children: HashMap<String, Child>,
}

/// The process a step names.
enum Target<'a> {
    /// One the host gave this probe, used through the SDK.
    Held(&'a mut Child),
    /// Any other id, sent to the host as it is.
    Foreign(String),
}

impl Session {
    /// Records the ok value of the step just run, for `$N` ids.
    pub fn remember(&mut self, result: Option<Value>) {
        self.results.push(result);
    }

    /// Runs one step.
    pub fn run(&mut self, value: &Value) -> Result<Value, Failure> {
        let step = Step(value);
        match step.text("op")? {
            "run" => Ok(report::output(&step.command()?.output()?)),
            "start" => {
                let child = step.command()?.spawn()?;
                Ok(Value::String(self.hold(child)))
            }
            "kill" => match self.target(step)? {
                Target::Held(child) => {
                    child.kill()?;
                    Ok(Value::Null)
                }
                Target::Foreign(id) => raw::kill(&id),
            },
            "list" => {
                let ids = wasmproc_guest::list()
                    .into_iter()
                    .map(|child| Value::String(self.hold(child)))
                    .collect();
                Ok(Value::Array(ids))
            }
            "get" => match self.target(step)? {
                Target::Held(child) => Ok(report::info(&child.info()?)),
                Target::Foreign(id) => raw::get(&id),
            },
            "wait" => {
                let timeout_ms = step.optional_number("timeout_ms")?;
                match (self.target(step)?, timeout_ms) {
                    (Target::Held(child), None) => Ok(report::status(child.wait()?)),
                    (Target::Held(child), Some(millis)) => Ok(child
                        .wait_timeout(Duration::from_millis(millis))?
                        .map_or(Value::Null, report::status)),
                    (Target::Foreign(id), timeout_ms) => raw::wait(&id, timeout_ms),
                }
            }
            "signal" => {
                let signal = signal(step.text("sig")?)?;
                match self.target(step)? {
                    Target::Held(child) => {
                        child.signal(signal)?;
                        Ok(Value::Null)
                    }
                    Target::Foreign(id) => raw::signal(&id, signal),
                }
            }
            "read_all" => {
                let stderr = match step.text("stream")? {
                    "stdout" => false,
                    "stderr" => true,
                    other => return Err(malformed(format!("unknown stream `{other}`"))),
                };
                // A stream that is not piped has no SDK reader: the host
                // call shows how the host refuses it.
                match self.target(step)? {
                    Target::Held(Child {
                        stderr: Some(reader),
                        ..
                    }) if stderr => read_all(reader, |r| r.dropped()),
                    Target::Held(Child {
                        stdout: Some(reader),
                        ..
                    }) if !stderr => read_all(reader, |r| r.dropped()),
                    Target::Held(child) => raw::read_all(child.id(), stderr),
                    Target::Foreign(id) => raw::read_all(&id, stderr),
                }
            }
            "write" => {
                let data = step.text("data")?.as_bytes();
                let repeat = step.optional_number("repeat")?.unwrap_or(1);
                let data = data.repeat(usize::try_from(repeat).map_err(malformed_repeat)?);
                match self.target(step)? {
                    Target::Held(Child {
                        stdin: Some(writer),
                        ..
                    }) => {
                        writer.write_all(&data)?;
                        Ok(Value::Null)
                    }
                    Target::Held(child) => raw::write(child.id(), &data),
                    Target::Foreign(id) => raw::write(&id, &data),
                }
            }
            "close_stdin" => match self.target(step)? {
                Target::Held(Child {
                    stdin: Some(writer),
                    ..
                }) => {
                    writer.close()?;
                    Ok(Value::Null)
                }
                Target::Held(child) => raw::close_stdin(child.id()),
                Target::Foreign(id) => raw::close_stdin(&id),
            },
            "remove" => match self.target(step)? {
                Target::Held(child) => {
                    child.remove()?;
                    Ok(Value::Null)
                }
                Target::Foreign(id) => raw::remove(&id),
            },
            "repeat_start" => self.repeat_start(step),
            "repeat_start_kill" => repeat_start_kill(step),
            "sleep_ms" => {
                std::thread::sleep(Duration::from_millis(step.number("ms")?));
                Ok(Value::Null)
            }
            other => Err(malformed(format!("unknown op `{other}`"))),
        }
    }

    /// Starts `count` processes, stopping at the first error.
    fn repeat_start(&mut self, step: Step<'_>) -> Result<Value, Failure> {
        let count = step.number("count")?;
        let mut command = step.command()?;
        let mut ids = Vec::new();
        let mut started = 0_u64;
        let mut error = Value::Null;
        while started < count {
            match command.spawn() {
                Ok(child) => {
                    let id = self.hold(child);
                    if ids.len() < REPORTED_IDS {
                        ids.push(id);
                    }
                    started += 1;
                }
                Err(e) => {
                    error = Failure::Host(e).to_json();
                    break;
                }
            }
        }
        Ok(json!({ "started": started, "error": error, "ids": ids }))
    }

    /// Keeps `child` for later steps and returns its id.
    fn hold(&mut self, child: Child) -> String {
        let id = child.id().to_owned();
        self.children.entry(id.clone()).or_insert(child);
        id
    }

    /// The process named by the step's `id`.
    fn target(&mut self, step: Step<'_>) -> Result<Target<'_>, Failure> {
        let id = self.resolve(step.text("id")?)?;
        Ok(match self.children.get_mut(&id) {
            Some(child) => Target::Held(child),
            None => Target::Foreign(id),
        })
    }

    /// Expands `$N` and `$N.K` references to earlier results.
    fn resolve(&self, id: &str) -> Result<String, Failure> {
        let Some(reference) = id.strip_prefix('$') else {
            return Ok(id.to_owned());
        };
        let (step, index) = match reference.split_once('.') {
            Some((step, index)) => (step, Some(index)),
            None => (reference, None),
        };
        let Ok(step) = step.parse::<usize>() else {
            return Ok(id.to_owned());
        };
        let result = self
            .results
            .get(step)
            .and_then(Option::as_ref)
            .ok_or_else(|| malformed(format!("`{id}`: step {step} has no result")))?;
        let value = match index {
            None => result,
            Some(index) => {
                let index: usize = index
                    .parse()
                    .map_err(|_| malformed(format!("`{id}`: bad index")))?;
                let ids = result.get("ids").unwrap_or(result);
                ids.get(index)
                    .ok_or_else(|| malformed(format!("`{id}`: no id at {index}")))?
            }
        };
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| malformed(format!("`{id}` is not an id")))
    }
}

/// Runs `count` cycles of start then kill (then remove, if asked), stopping
/// at the first error.
fn repeat_start_kill(step: Step<'_>) -> Result<Value, Failure> {
    let count = step.number("count")?;
    let remove = step.flag("remove")?;
    let mut command = step.command()?;
    let mut cycles = 0_u64;
    let mut cycle = || -> Result<(), wasmproc_guest::Error> {
        let mut child = command.spawn()?;
        child.kill()?;
        if remove {
            child.remove()?;
        }
        Ok(())
    };
    let mut error = Value::Null;
    while cycles < count {
        if let Err(e) = cycle() {
            error = Failure::Host(e).to_json();
            break;
        }
        cycles += 1;
    }
    Ok(json!({ "cycles": cycles, "error": error }))
}

/// Reads `reader` to the end and summarizes what it read.
fn read_all<R: Read>(mut reader: R, dropped: impl Fn(&R) -> u64) -> Result<Value, Failure> {
    let mut digest = StreamDigest::new();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let count = reader.read(&mut buffer)?;
        if count == 0 {
            return Ok(digest.to_json(dropped(&reader)));
        }
        digest.update(&buffer[..count]);
    }
}

fn malformed_repeat(_: std::num::TryFromIntError) -> Failure {
    malformed("`repeat` is too large")
}
