//! Process helpers, each giving a `Result` (or a plain answer) rather than panicking:
//! whether we run as root, waiting for a condition ([`wait_until`]) or for a log file to
//! hold something ([`wait_for_log`]), both bounded in time, sending a signal ([`signal`]),
//! and running a command to its end or its time limit with its output captured
//! ([`run_bounded`]), possibly under a wrapper ([`wrapped`]).

use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Environment variables removed from every server or command the tests and the benchmarks
/// run, so that nothing of the machine running them (a PostgreSQL to use, a configuration
/// file, a data folder) leaks in.
pub const CLEARED_ENV: [&str; 8] = [
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "INPHMS_RC",
    "ODOO_RC",
    "XDG_DATA_HOME",
];

/// Whether this process runs as root (the tests do in CI).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Calls `f` every 20 ms until it returns true or `timeout` passes; returns its last answer.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads the file `log` (empty while it cannot be read) every 20 ms until `pred` holds for
/// its text or `timeout` passes: the text then, or `None` on timeout.
pub fn wait_for_log(log: &Path, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
    let mut found = None;
    wait_until(timeout, || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let holds = pred(&text);
        if holds {
            found = Some(text);
        }
        holds
    });
    found
}

/// Sends the signal `sig` (`"TERM"`, `"INT"`, `"HUP"`, `"KILL"`...) to the process `pid`
/// with `kill -s`.
pub fn signal(pid: u32, sig: &str) -> Result<(), String> {
    let out = Command::new("kill")
        .args(["-s", sig])
        .arg(pid.to_string())
        .output()
        .map_err(|e| format!("cannot run kill: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "kill -s {sig} {pid} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `program ARGS... COMMAND_PROGRAM COMMAND_ARGS...`: `command` run under a wrapper
/// (`prlimit`, `valgrind`, `sh -c`...) that execs it, with the same environment changes and
/// working folder as `command` (its stdio settings are not carried over).
pub fn wrapped<I, S>(command: &Command, program: impl AsRef<OsStr>, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut wrapped = Command::new(program);
    wrapped
        .args(args)
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(v) => wrapped.env(key, v),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped
}

/// How a command run by [`run_bounded`] ended and what it printed.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status; `None` only if it could not be read after a kill.
    pub status: Option<ExitStatus>,
    /// Everything written to stdout (lossy UTF-8).
    pub stdout: String,
    /// Everything written to stderr (lossy UTF-8).
    pub stderr: String,
    /// Whether it was killed for running past its time limit.
    pub timed_out: bool,
}

impl Finished {
    /// Whether it exited with status 0 within its time limit.
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }
}

/// Runs `cmd` with stdin closed and stdout and stderr captured, to its end or until `limit`
/// passes (then it is killed, and [`Finished::timed_out`] says so). An error only when it
/// cannot be started.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<Finished, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let deadline = Instant::now() + limit;
    let (status, timed_out) = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break (Some(status), false);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            break (child.wait().ok(), true);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let joined = |h: Option<std::thread::JoinHandle<String>>| {
        h.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    Ok(Finished {
        status,
        stdout: joined(stdout),
        stderr: joined(stderr),
        timed_out,
    })
}

/// Reads a stream to its end in a thread.
fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_run_captures_its_output_or_is_killed_at_its_limit() {
        let done = run_bounded(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(
            (done.stdout.as_str(), done.stderr.as_str(), done.timed_out),
            ("out\n", "err\n", false)
        );
        assert_eq!(done.status.and_then(|s| s.code()), Some(3));
        assert!(!done.success());
        let started = Instant::now();
        let slow =
            run_bounded(Command::new("sleep").arg("30"), Duration::from_millis(200)).unwrap();
        assert!(slow.timed_out && !slow.success());
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(run_bounded(&mut Command::new("/nonexistent/x"), Duration::from_secs(1)).is_err());
    }

    #[test]
    fn a_wrapped_command_keeps_its_arguments_environment_and_folder() {
        let dir = tempfile::tempdir().unwrap();
        let mut inner = Command::new("sh");
        inner
            .args(["-c", "echo \"$0 $X $(pwd)\"", "arg"])
            .env("X", "x")
            .current_dir(dir.path());
        let done = run_bounded(
            &mut wrapped(&inner, "env", ["Y=y"]),
            Duration::from_secs(10),
        )
        .unwrap();
        let pwd = dir.path().canonicalize().unwrap();
        assert_eq!(done.stdout, format!("arg x {}\n", pwd.display()));
    }

    #[test]
    fn a_log_is_waited_for_until_it_holds_the_text() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        assert_eq!(
            wait_for_log(&log, Duration::from_millis(50), |l| l.contains("x")),
            None
        );
        std::fs::write(&log, "a x b").unwrap();
        assert_eq!(
            wait_for_log(&log, Duration::from_secs(5), |l| l.contains("x")).as_deref(),
            Some("a x b")
        );
    }

    #[test]
    fn signalling_a_missing_process_is_an_error() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let err = signal(pid, "TERM").unwrap_err();
        assert!(err.contains(&format!("kill -s TERM {pid}")), "{err}");
    }
}
