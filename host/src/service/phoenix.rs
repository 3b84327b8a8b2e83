//! The phoenix re-exec (Odoo's `_reexec`), made so that no connection is refused: the
//! listening socket stays open while in-flight requests drain (new connections wait in the
//! kernel's backlog), then the same binary is exec'd with the socket handed over through
//! `LISTEN_FDS` (fd 3) and the same arguments less `-i`, `-u`, `-s` (as Odoo strips them).
//! If `execve` fails, the caller goes back to serving.

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The executable, resolved at start-up: `/proc/self/exe` reads `... (deleted)` once the
/// binary has been replaced by a rename.
pub fn resolve_exe() -> std::io::Result<PathBuf> {
    std::env::current_exe()
}

/// The arguments less the options that must not run twice: `-i`/`--init`, `-u`/`--update`
/// and `-s`/`--save`, in their `-iX`, `-i X`, `--init=X` and `--init X` forms.
pub fn stripped_args(args: &[OsString]) -> Vec<OsString> {
    const WITH_VALUE: [&str; 4] = ["-i", "--init", "-u", "--update"];
    const FLAGS: [&str; 2] = ["-s", "--save"];
    let mut out = Vec::with_capacity(args.len());
    let mut skip_next = false;
    for (i, arg) in args.iter().enumerate() {
        if skip_next {
            skip_next = false;
            continue;
        }
        let text = arg.to_string_lossy();
        if i > 0 && FLAGS.contains(&text.as_ref()) {
            continue;
        }
        if i > 0 && WITH_VALUE.contains(&text.as_ref()) {
            skip_next = true;
            continue;
        }
        let attached = (text.starts_with("-i") || text.starts_with("-u"))
            && !text.starts_with("--")
            || text.starts_with("--init=")
            || text.starts_with("--update=");
        if i > 0 && attached {
            continue;
        }
        out.push(arg.clone());
    }
    out
}

/// Replaces this process with `exe args`, handing `listener` over as fd 3. Returns only if
/// that failed (with the reason), in which case the process state is restored.
pub fn reexec(
    exe: &Path,
    args: &[OsString],
    listener: BorrowedFd<'_>,
    reexecs: u64,
) -> std::io::Error {
    let to_c = |s: &[u8]| CString::new(s).map_err(|_| std::io::Error::other("NUL in an argument"));
    let prog = match to_c(exe.as_os_str().as_bytes()) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let argv: Result<Vec<CString>, _> = args.iter().map(|a| to_c(a.as_bytes())).collect();
    let argv = match argv {
        Ok(a) => a,
        Err(e) => return e,
    };
    let pid = std::process::id().to_string();
    let mut env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| {
            !matches!(
                k.to_str(),
                Some(
                    "LISTEN_FDS"
                        | "LISTEN_PID"
                        | "LISTEN_FDNAMES"
                        | "LISTEN_FDS_FIRST_FD"
                        | crate::metrics::REEXECS_ENV
                )
            )
        })
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    env.push(CString::new("LISTEN_FDS=1").expect("no NUL"));
    env.push(CString::new(format!("LISTEN_PID={pid}")).expect("no NUL"));
    // The count of re-execs goes on in the new image (the metrics' `reexecs`).
    env.push(CString::new(format!("{}={reexecs}", crate::metrics::REEXECS_ENV)).expect("no NUL"));

    // Keep whatever is at fd 3 so that a failed exec can put it back.
    const FIRST_FD: i32 = 3;
    let fd = listener.as_fd().as_raw_fd();
    // SAFETY: plain fd syscalls on descriptors this process owns.
    let saved = if fd != FIRST_FD {
        unsafe { libc::dup(FIRST_FD) }
    } else {
        -1
    };
    if fd != FIRST_FD && unsafe { libc::dup2(fd, FIRST_FD) } < 0 {
        return std::io::Error::last_os_error();
    }
    // SAFETY: FIRST_FD is open (it was just set to the listener).
    let first = unsafe { BorrowedFd::borrow_raw(FIRST_FD) };
    if let Err(e) = fcntl(first, FcntlArg::F_SETFD(FdFlag::empty())) {
        restore(saved, FIRST_FD);
        return e.into();
    }
    // Block the handled signals: the mask survives execve, and the new image unblocks them
    // once its handlers are installed, so no signal kills the process in between.
    let mut old = nix::sys::signal::SigSet::empty();
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&super::signals::handled_set()),
        Some(&mut old),
    );
    crate::netsvc::flush();
    let err = match nix::unistd::execve(&prog, &argv, &env) {
        Err(e) => std::io::Error::from(e),
        Ok(never) => match never {},
    };
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&old),
        None,
    );
    restore(saved, FIRST_FD);
    err
}

fn restore(saved: i32, target: i32) {
    if saved >= 0 {
        // SAFETY: `saved` is a descriptor this process duplicated.
        unsafe {
            libc::dup2(saved, target);
            libc::close(saved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::stripped_args;
    use std::ffi::OsString;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn strips_like_odoo() {
        let args = os(&[
            "inphms-host",
            "-i",
            "a,b",
            "-ub",
            "--init=c",
            "--update",
            "d",
            "-s",
            "--save",
            "-p",
            "8069",
            "--db-filter",
            "x",
            "-d",
            "db",
        ]);
        assert_eq!(
            stripped_args(&args),
            os(&["inphms-host", "-p", "8069", "--db-filter", "x", "-d", "db"])
        );
    }
}
