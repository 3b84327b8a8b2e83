//! One-shot commands: [`Cmd`] runs `inphms-host ARGS...` with a clean environment
//! ([`CLEARED_ENV`] removed, a temporary `HOME`) and a timeout, and gives an [`Output`].

use crate::paths::host_bin;
use inphms_test_support::process::run_bounded;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Environment variables removed from every command the harness runs.
pub use inphms_test_support::process::CLEARED_ENV;

/// The default timeout of a one-shot command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What a finished command printed and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    /// The exit code; `None` when it was ended by a signal (or by the timeout).
    pub code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
    /// Whether it was killed for running past its timeout.
    pub timed_out: bool,
}

impl Output {
    /// The lines of stderr.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }
}

impl fmt::Display for Output {
    /// For assertion messages: the code and both streams.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit code {:?}{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            if self.timed_out { " (timed out)" } else { "" },
            self.stdout,
            self.stderr
        )
    }
}

/// A one-shot run of `inphms-host`: arguments, environment, folder and timeout.
#[derive(Debug, Clone)]
pub struct Cmd {
    pub(crate) args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    home: Option<PathBuf>,
    cwd: Option<PathBuf>,
    timeout: Duration,
}

impl Cmd {
    /// `inphms-host ARGS...`.
    pub fn new<I, S>(args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Cmd {
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            env: Vec::new(),
            home: None,
            cwd: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Cmd {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Sets `HOME` (default: a temporary folder made for the run).
    pub fn home(mut self, home: impl Into<PathBuf>) -> Cmd {
        self.home = Some(home.into());
        self
    }

    /// Sets the working folder.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Cmd {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets the timeout (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Cmd {
        self.timeout = timeout;
        self
    }

    /// The `std::process::Command`, environment applied, for a test that spawns it itself.
    /// `HOME` must have been set (or is left as inherited).
    pub fn command(&self) -> Command {
        let mut c = Command::new(host_bin());
        c.args(&self.args);
        for var in CLEARED_ENV {
            c.env_remove(var);
        }
        if let Some(home) = &self.home {
            c.env("HOME", home);
        }
        if let Some(dir) = &self.cwd {
            c.current_dir(dir);
        }
        for (k, v) in &self.env {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    }

    /// Runs the command to its end (or its timeout) with stdin closed.
    pub fn run(self) -> Output {
        let tmp_home = match self.home {
            None => Some(tempfile::tempdir().expect("temporary HOME")),
            Some(_) => None,
        };
        let cmd = match &tmp_home {
            Some(tmp) => self.home(tmp.path()),
            None => self,
        };
        let done = run_bounded(&mut cmd.command(), cmd.timeout)
            .unwrap_or_else(|e| panic!("spawn {}: {e}", host_bin().display()));
        Output {
            code: done.status.and_then(|s| s.code()),
            stdout: done.stdout,
            stderr: done.stderr,
            timed_out: done.timed_out,
        }
    }
}

/// Runs `inphms-host ARGS...` with the environment changes `env`, a temporary `HOME` and
/// the default timeout.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    env.iter()
        .fold(Cmd::new(args), |c, (k, v)| c.env(k, v))
        .run()
}
