//! Small process-level helpers: whether the tests run as root, waiting for a condition
//! (bounded in time) and sending a signal to a process.

use std::process::Command;
use std::time::{Duration, Instant};

/// Whether the tests run as root (they do in CI).
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

/// Sends the signal `sig` (`"TERM"`, `"INT"`, `"HUP"`, `"KILL"`...) to the process `pid`.
pub fn send_signal(pid: u32, sig: &str) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -s {sig} {pid}"))
        .status()
        .expect("run sh -c kill");
    assert!(status.success(), "kill -s {sig} {pid} failed");
}
