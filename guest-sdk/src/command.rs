//! The process builder.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use crate::{Buffering, Child, Error, ExitStatus, Output, Stdio, host, wit};

/// A process builder, like [`std::process::Command`].
///
/// The program is checked against the guest's policy and resolved by the
/// host; no shell is involved. The process's environment starts empty: only
/// the variables set here (if the policy allows each) and the policy's
/// pass-through variables are set.
///
/// ```no_run
/// use std::time::Duration;
/// use wasmproc_guest::Command;
///
/// let output = Command::new("git")
///     .args(["status", "--porcelain"])
///     .current_dir("/work/repo")
///     .timeout(Duration::from_secs(10))
///     .output()?;
/// println!("{} changed files", output.stdout.split(|b| *b == b'\n').count() - 1);
/// # Ok::<(), wasmproc_guest::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Command {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<String>,
    stdin_bytes: Option<Vec<u8>>,
    timeout: Option<Duration>,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
    buffering: Buffering,
    buffer_size: Option<u64>,
    /// The first value that could not be passed to the host, if any.
    not_unicode: Option<String>,
}

impl Command {
    /// A builder for running `program`: a name or absolute path, as granted
    /// by the policy.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        let mut command = Command {
            program: String::new(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            stdin_bytes: None,
            timeout: None,
            stdin: None,
            stdout: None,
            stderr: None,
            buffering: Buffering::default(),
            buffer_size: None,
            not_unicode: None,
        };
        command.program = command.text("the program", program.as_ref());
        command
    }

    /// Adds one argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        let arg = self.text("an argument", arg.as_ref());
        self.args.push(arg);
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for arg in args {
            self.arg(arg);
        }
        self
    }

    /// Sets an environment variable of the process.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        let key = self.text("an environment variable name", key.as_ref());
        let value = self.text("an environment variable value", value.as_ref());
        self.env.push((key, value));
        self
    }

    /// Sets several environment variables of the process.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (key, value) in vars {
            self.env(key, value);
        }
        self
    }

    /// Sets the working directory, which must lie under a root the policy
    /// grants. Without it the policy's default directory is used.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        let dir = self.text("the working directory", dir.as_ref().as_os_str());
        self.cwd = Some(dir);
        self
    }

    /// Bytes to write to the process's stdin. Stdin is then closed, unless
    /// it is [`Stdio::piped`], which keeps it open for more writes.
    pub fn stdin_bytes(&mut self, bytes: impl Into<Vec<u8>>) -> &mut Self {
        self.stdin_bytes = Some(bytes.into());
        self
    }

    /// Kills the process, with its group, after this long. Without it the
    /// policy's default applies; a timeout past the policy's maximum is
    /// refused with [`Error::Invalid`].
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.timeout = Some(timeout);
        self
    }

    /// Where stdin of a spawned process comes from. Defaults to
    /// [`Stdio::null`] (after any [`stdin_bytes`](Self::stdin_bytes)).
    pub fn stdin(&mut self, stdio: Stdio) -> &mut Self {
        self.stdin = Some(stdio);
        self
    }

    /// Where stdout of a spawned process goes. Defaults to [`Stdio::piped`].
    pub fn stdout(&mut self, stdio: Stdio) -> &mut Self {
        self.stdout = Some(stdio);
        self
    }

    /// Where stderr of a spawned process goes. Defaults to [`Stdio::piped`].
    pub fn stderr(&mut self, stdio: Stdio) -> &mut Self {
        self.stderr = Some(stdio);
        self
    }

    /// How the host keeps the piped output of a spawned process. Defaults to
    /// [`Buffering::Lossless`].
    pub fn buffering(&mut self, buffering: Buffering) -> &mut Self {
        self.buffering = buffering;
        self
    }

    /// The host's buffer size per piped output stream of a spawned process,
    /// in bytes. Without it the policy's default applies.
    pub fn buffer_size(&mut self, bytes: u64) -> &mut Self {
        self.buffer_size = Some(bytes);
        self
    }

    /// Runs the process to completion and returns its captured output.
    ///
    /// Stdout and stderr are always captured, up to the policy's capture
    /// limit; the [`Stdio`] and [`Buffering`] settings apply only to
    /// [`spawn`](Self::spawn). A process that runs past its timeout is
    /// killed and [`Error::TimedOut`] returned.
    pub fn output(&mut self) -> Result<Output, Error> {
        let command = self.to_wit()?;
        Ok(host::run(&command)?.into())
    }

    /// Runs the process to completion and returns how it ended, discarding
    /// its output.
    pub fn status(&mut self) -> Result<ExitStatus, Error> {
        Ok(self.output()?.status)
    }

    /// Starts the process in the background.
    ///
    /// Dropping the returned [`Child`] does not stop the process.
    pub fn spawn(&mut self) -> Result<Child, Error> {
        let command = self.to_wit()?;
        let options = wit::StartOptions {
            stdin: self.stdin.unwrap_or_else(Stdio::null).0,
            stdout: self.stdout.unwrap_or_else(Stdio::piped).0,
            stderr: self.stderr.unwrap_or_else(Stdio::piped).0,
            buffering: self.buffering.into(),
            buffer_bytes: self.buffer_size,
        };
        let id = host::start(&command, options)?;
        Ok(Child::from_id(id))
    }

    /// Converts `value` to text, remembering the first value that is not
    /// valid Unicode so that running the command fails with
    /// [`Error::Invalid`].
    fn text(&mut self, what: &str, value: &OsStr) -> String {
        match value.to_str() {
            Some(text) => text.to_owned(),
            None => {
                let lossy = value.to_string_lossy().into_owned();
                self.not_unicode
                    .get_or_insert_with(|| format!("{what} `{lossy}` is not valid Unicode"));
                lossy
            }
        }
    }

    /// The request the host receives.
    fn to_wit(&self) -> Result<wit::Command, Error> {
        if let Some(why) = &self.not_unicode {
            return Err(Error::Invalid(why.clone()));
        }
        Ok(wit::Command {
            program: self.program.clone(),
            args: self.args.clone(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            stdin: self.stdin_bytes.clone(),
            timeout_ms: self.timeout.map(whole_milliseconds),
        })
    }
}

/// `duration` in milliseconds, rounded up so that a short timeout never
/// becomes zero.
fn whole_milliseconds(duration: Duration) -> u64 {
    let millis = duration.as_nanos().div_ceil(1_000_000);
    u64::try_from(millis).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_host_request() {
        let mut command = Command::new("git");
        command
            .arg("log")
            .args(["--oneline", "-n", "5"])
            .env("LANG", "C")
            .envs([("TZ", "UTC")])
            .current_dir("/work/repo")
            .stdin_bytes(b"input".to_vec())
            .timeout(Duration::from_micros(1500));
        let request = command.to_wit().expect("valid command");
        assert_eq!(request.program, "git");
        assert_eq!(request.args, ["log", "--oneline", "-n", "5"]);
        assert_eq!(
            request.env,
            [
                ("LANG".to_owned(), "C".to_owned()),
                ("TZ".to_owned(), "UTC".to_owned())
            ]
        );
        assert_eq!(request.cwd.as_deref(), Some("/work/repo"));
        assert_eq!(request.stdin.as_deref(), Some(&b"input"[..]));
        assert_eq!(request.timeout_ms, Some(2));
    }

    #[test]
    fn rounds_timeouts_up_to_whole_milliseconds() {
        assert_eq!(whole_milliseconds(Duration::ZERO), 0);
        assert_eq!(whole_milliseconds(Duration::from_nanos(1)), 1);
        assert_eq!(whole_milliseconds(Duration::from_secs(3)), 3000);
        assert_eq!(whole_milliseconds(Duration::MAX), u64::MAX);
    }

    #[cfg(unix)]
    #[test]
    fn refuses_arguments_that_are_not_unicode() {
        use std::os::unix::ffi::OsStrExt;

        let mut command = Command::new("echo");
        command.arg(OsStr::from_bytes(b"\xff"));
        assert!(matches!(command.to_wit(), Err(Error::Invalid(_))));
    }
}
