//! The side of a worker process in workers mode (Odoo's `Worker`): which role the master
//! started this process in (`INPHMS_WORKER`), and the status line it writes to the master
//! through the pipe the master handed over (`INPHMS_WORKER_FD`): `PID ready` once it
//! serves, `PID recycle REASON` when it begins a recycle (the master starts its replacement
//! at once). A line is one `write` shorter than `PIPE_BUF`, so lines of several workers on
//! the one pipe never interleave.

use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, RawFd};

/// The variable naming the role of a worker process.
pub const ROLE_VAR: &str = "INPHMS_WORKER";
/// The variable naming the descriptor of the status pipe.
pub const FD_VAR: &str = "INPHMS_WORKER_FD";
/// The descriptor the master places the status pipe at.
pub const STATUS_FD: RawFd = 4;

/// What this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The server itself: threaded (`workers = 0`) or the master of workers.
    Server,
    /// An HTTP worker: serves the inherited listener, runs no cron.
    Http,
    /// The cron worker: runs the cron threads, serves no HTTP.
    Cron,
    /// The one-shot process the master runs `-i`/`-u` in (with `--stop-after-init`)
    /// before it starts the workers.
    Init,
}

impl Role {
    /// The role from the environment the master set.
    pub fn from_env() -> Role {
        match std::env::var(ROLE_VAR).as_deref() {
            Ok("http") => Role::Http,
            Ok("cron") => Role::Cron,
            Ok("init") => Role::Init,
            _ => Role::Server,
        }
    }

    /// The value of [`ROLE_VAR`] for this role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Http => "http",
            Role::Cron => "cron",
            Role::Init => "init",
        }
    }
}

/// The writing end of the status pipe to the master, when this process is a worker.
#[derive(Debug)]
pub struct Link {
    /// The role of this process.
    pub role: Role,
    pipe: Option<File>,
}

impl Link {
    /// The link of this process: a worker's role and pipe from the environment. Call once:
    /// the pipe is owned by the link.
    pub fn from_env() -> Link {
        let role = Role::from_env();
        let fd = std::env::var(FD_VAR)
            .ok()
            .and_then(|v| v.parse::<RawFd>().ok());
        let pipe = match (role, fd) {
            (Role::Server, _) | (_, None) => None,
            // SAFETY: the master placed the pipe at this descriptor for this process alone,
            // and nothing else in this process refers to it.
            (_, Some(fd)) if fd == STATUS_FD => Some(unsafe { File::from_raw_fd(fd) }),
            (_, Some(_)) => None,
        };
        Link { role, pipe }
    }

    /// Whether this process is a worker of a master.
    pub fn is_worker(&self) -> bool {
        self.role != Role::Server
    }

    /// Tells the master `PID WORD DETAIL`; ignored when there is no master (or it is gone).
    pub fn tell(&self, word: &str, detail: &str) {
        let Some(mut pipe) = self.pipe.as_ref() else {
            return;
        };
        let mut line = format!("{} {word} {detail}", std::process::id());
        // One write below PIPE_BUF (4096) is atomic: keep the line well under it.
        line.truncate(line.floor_char_boundary_compat(500));
        line.push('\n');
        let _ = pipe.write_all(line.as_bytes());
    }
}

/// `str::floor_char_boundary`, which is not stable yet.
trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, index: usize) -> usize;
}

impl FloorCharBoundary for String {
    fn floor_char_boundary_compat(&self, index: usize) -> usize {
        if index >= self.len() {
            return self.len();
        }
        (0..=index)
            .rev()
            .find(|i| self.is_char_boundary(*i))
            .unwrap_or(0)
    }
}
