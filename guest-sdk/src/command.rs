//! The process builder.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use crate::child::Pipes;
use crate::{Buffering, Child, Error, ExitStatus, Output, Stdio, host, wit};

/// A process builder, like [`std::process::Command`].
///
/// The program is checked against the guest's policy and resolved by the
/// host; no shell is involved. The process's environment starts empty: only
/// the variables set here (if the policy allows each) and the policy's
/// pass-through variables are set. The guest's own environment is never
/// inherited.
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
    /// Variables set (`Some`) or removed (`None`), by name.
    env: BTreeMap<String, Option<String>>,
    cwd: Option<String>,
    stdin_bytes: Option<Vec<u8>>,
    timeout: Option<Duration>,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
    buffering: Buffering,
    buffer_size: Option<u64>,
    /// Why the first value that cannot be passed to the host cannot, if
    /// any.
    unusable: Option<String>,
}

impl Command {
    /// A builder for running `program`: a name or absolute path, as granted
    /// by the policy.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        let mut command = Command {
            program: String::new(),
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            stdin_bytes: None,
            timeout: None,
            stdin: None,
            stdout: None,
            stderr: None,
            buffering: Buffering::default(),
            buffer_size: None,
            unusable: None,
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
        self.env.insert(key, Some(value));
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

    /// Removes a variable set with [`env`](Self::env), as
    /// [`std::process::Command::env_remove`] does. The guest's own
    /// environment is never inherited, so there is nothing else to remove;
    /// the policy's pass-through variables stay set.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        let key = self.text("an environment variable name", key.as_ref());
        self.env.insert(key, None);
        self
    }

    /// Forgets every variable set with [`env`](Self::env), as
    /// [`std::process::Command::env_clear`] does. Beyond that it changes
    /// nothing: the environment of a started program already starts empty,
    /// apart from the policy's pass-through variables, which stay set.
    pub fn env_clear(&mut self) -> &mut Self {
        self.env.clear();
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

    /// The program, as given to [`new`](Self::new).
    pub fn get_program(&self) -> &OsStr {
        OsStr::new(&self.program)
    }

    /// The arguments, without the program.
    pub fn get_args(&self) -> impl ExactSizeIterator<Item = &OsStr> {
        self.args.iter().map(OsStr::new)
    }

    /// The variables set (`Some`) or removed (`None`) on this builder, by
    /// name, as [`std::process::Command::get_envs`] gives them.
    pub fn get_envs(&self) -> impl ExactSizeIterator<Item = (&OsStr, Option<&OsStr>)> {
        self.env
            .iter()
            .map(|(key, value)| (OsStr::new(key), value.as_deref().map(OsStr::new)))
    }

    /// The working directory set with [`current_dir`](Self::current_dir).
    pub fn get_current_dir(&self) -> Option<&Path> {
        self.cwd.as_deref().map(Path::new)
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
        let stdin = self.stdin.unwrap_or_else(Stdio::null);
        let stdout = self.stdout.unwrap_or_else(Stdio::piped);
        let stderr = self.stderr.unwrap_or_else(Stdio::piped);
        let options = wit::StartOptions {
            stdin: stdin.0,
            stdout: stdout.0,
            stderr: stderr.0,
            buffering: self.buffering.into(),
            buffer_bytes: self.buffer_size,
        };
        let id = host::start(&command, options)?;
        let pipes = Pipes {
            stdin: stdin == Stdio::piped(),
            stdout: stdout == Stdio::piped(),
            stderr: stderr == Stdio::piped(),
        };
        Ok(Child::spawned(id, pipes))
    }

    /// Converts `value` to text, remembering the first value that is not
    /// valid Unicode or holds a NUL byte, so that running the command fails
    /// with [`Error::Invalid`] (as std fails with `InvalidInput`).
    fn text(&mut self, what: &str, value: &OsStr) -> String {
        let text = value.to_string_lossy().into_owned();
        let problem = if value.to_str().is_none() {
            Some("is not valid Unicode")
        } else if text.contains('\0') {
            Some("contains a NUL byte")
        } else {
            None
        };
        if let Some(problem) = problem {
            self.unusable
                .get_or_insert_with(|| format!("{what} {text:?} {problem}"));
        }
        text
    }

    /// The request the host receives.
    fn to_wit(&self) -> Result<wit::Command, Error> {
        if let Some(why) = &self.unusable {
            return Err(Error::Invalid(why.clone()));
        }
        let env = self
            .env
            .iter()
            .filter_map(|(key, value)| Some((key.clone(), value.clone()?)))
            .collect();
        Ok(wit::Command {
            program: self.program.clone(),
            args: self.args.clone(),
            env,
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

    #[test]
    fn command_nul_byte_anywhere_bad() {
        let program = Command::new("has-\0-inside").to_wit();
        assert!(matches!(program, Err(Error::Invalid(why)) if why.contains("NUL")));
        let arg = Command::new("echo").arg("a\0b").to_wit();
        assert!(matches!(arg, Err(Error::Invalid(why)) if why.contains("an argument")));
        let key = Command::new("env").env("K\0", "v").to_wit();
        assert!(matches!(key, Err(Error::Invalid(_))));
        let value = Command::new("env").env("K", "v\0").to_wit();
        assert!(matches!(value, Err(Error::Invalid(_))));
        let cwd = Command::new("pwd").current_dir("/a\0b").to_wit();
        assert!(matches!(cwd, Err(Error::Invalid(why)) if why.contains("working directory")));
    }

    #[test]
    fn command_getters_return_what_was_set_good() {
        let mut command = Command::new("git");
        assert_eq!(command.get_program(), "git");
        assert_eq!(command.get_args().len(), 0);
        assert_eq!(command.get_current_dir(), None);
        command
            .args(["log", "-n", "1"])
            .env("TZ", "UTC")
            .env("LANG", "C")
            .env_remove("LC_ALL")
            .current_dir("/work");
        let args: Vec<&OsStr> = command.get_args().collect();
        assert_eq!(args, ["log", "-n", "1"]);
        let envs: Vec<(&OsStr, Option<&OsStr>)> = command.get_envs().collect();
        assert_eq!(
            envs,
            [
                (OsStr::new("LANG"), Some(OsStr::new("C"))),
                (OsStr::new("LC_ALL"), None),
                (OsStr::new("TZ"), Some(OsStr::new("UTC"))),
            ]
        );
        assert_eq!(command.get_current_dir(), Some(Path::new("/work")));
    }

    #[test]
    fn command_env_remove_and_env_clear_good() {
        let mut command = Command::new("env");
        command.env("A", "1").env("B", "2").env_remove("A");
        let request = command.to_wit().expect("valid command");
        assert_eq!(request.env, [("B".to_owned(), "2".to_owned())]);
        command.env_clear().env("C", "3");
        assert_eq!(command.get_envs().len(), 1);
        let request = command.to_wit().expect("valid command");
        assert_eq!(request.env, [("C".to_owned(), "3".to_owned())]);
    }
}
