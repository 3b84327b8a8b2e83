//! Servers that cannot lose their port: [`bind_loopback`] binds a listening socket on
//! 127.0.0.1 (port 0: the kernel picks a free one) and [`socket_activated`] hands it to a
//! server's process as systemd's socket activation does (`LISTEN_FDS`, fd 3), so that the
//! port is known before the start and no other process can take it between its choice and
//! the server's start. `inphms-host` (`http::server::listen`) and `bench-baseline` take such
//! a socket instead of binding their own.

use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The descriptor a socket-activated process finds its first socket on (`SD_LISTEN_FDS_START`).
pub const LISTEN_FD: i32 = 3;

/// A listening socket on 127.0.0.1 on a port the kernel picks, with a listen queue of
/// `backlog` (std listens with 128; as a systemd socket unit's `Backlog=`).
pub fn bind_loopback(backlog: i32) -> Result<TcpListener, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))?;
    // Listening again on Linux sets the backlog.
    // SAFETY: `listen` on a descriptor this function owns; it only changes the backlog.
    if unsafe { libc::listen(listener.as_raw_fd(), backlog) } != 0 {
        return Err(format!(
            "listen({backlog}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(listener)
}

/// `command` started with `listener` as its socket-activated listener, as systemd does it:
/// the socket at fd 3 (`dup2` in the child, which also clears close-on-exec), `LISTEN_FDS=1`
/// and `LISTEN_PID` the pid of the process that runs `command` (set by `sh -c 'export
/// LISTEN_PID=$$; exec PROGRAM ARGS...'`: `exec` keeps the pid, so the child's pid is the
/// server's, and a wrapper that runs its program in its own process, as valgrind does, keeps
/// it too). The same environment changes and working folder as `command`; its stdio
/// settings are not carried over (set them on the result).
pub fn socket_activated(command: &Command, listener: &TcpListener) -> Command {
    let script = "LISTEN_PID=$$; export LISTEN_PID; exec \"$0\" \"$@\"";
    let mut wrapped = crate::process::wrapped(command, "sh", ["-c", script]);
    wrapped.env("LISTEN_FDS", "1").env_remove("LISTEN_FDNAMES");
    let fd = listener.as_raw_fd();
    // SAFETY: between fork and exec the closure only makes async-signal-safe calls (dup2,
    // fcntl) on descriptors the child owns, and allocates nothing.
    unsafe {
        wrapped.pre_exec(move || {
            let done = if fd == LISTEN_FD {
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, LISTEN_FD)
            };
            if done < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    wrapped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_finds_the_socket_at_fd_3_with_its_own_pid() {
        let listener = bind_loopback(16).unwrap();
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "[ \"$LISTEN_PID\" = $$ ] && [ \"$LISTEN_FDS\" = 1 ] && [ -S /proc/self/fd/3 ] && echo ok",
        ]);
        let out = socket_activated(&cmd, &listener).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{out:?}");
    }
}
