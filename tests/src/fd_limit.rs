//! Limits of open files (RLIMIT_NOFILE) for tests that exhaust descriptors: a host started
//! under a lowered limit (through `prlimit`, which execs it, so the pid is the host's), and
//! the test process's own soft limit raised to hold many sockets.

use std::process::Command;

/// `command` run under a soft and hard RLIMIT_NOFILE of `limit` (`prlimit --nofile=N:N --
/// PROGRAM ARGS...`), with the same environment and working folder.
pub fn under_nofile(command: &Command, limit: u64) -> Command {
    let nofile = format!("--nofile={limit}:{limit}");
    inphms_test_support::process::wrapped(command, "prlimit", [nofile.as_str(), "--"])
}

/// This process's (soft, hard) RLIMIT_NOFILE, from `/proc/self/limits`.
pub fn own_nofile() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("read /proc/self/limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a 'Max open files' line in /proc/self/limits");
    let mut values = line["Max open files".len()..]
        .split_whitespace()
        .map(|v| v.parse::<u64>().unwrap_or(u64::MAX));
    let soft = values.next().expect("a soft limit");
    let hard = values.next().expect("a hard limit");
    (soft, hard)
}

/// Raises this process's soft RLIMIT_NOFILE to at least `wanted` (with `prlimit --pid`, up
/// to the hard limit, which needs no privilege); panics if the hard limit is lower.
pub fn raise_own_nofile(wanted: u64) {
    let (soft, hard) = own_nofile();
    if soft >= wanted {
        return;
    }
    assert!(
        hard >= wanted,
        "this test needs {wanted} open files; the hard limit is {hard} (raise it: ulimit -Hn)"
    );
    let status = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={wanted}:{hard}"))
        .status()
        .expect("run prlimit");
    assert!(status.success(), "prlimit --pid: {status}");
    assert!(own_nofile().0 >= wanted, "the soft limit was not raised");
}
