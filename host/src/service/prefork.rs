//! Workers mode (Odoo's `PreforkServer`): the master process. It holds the listening socket
//! (bound, or taken from systemd/`LISTEN_FDS`), loads no addon and runs no addon code; it
//! starts `workers` HTTP worker processes and one cron worker process (running
//! `max_cron_threads` cron threads: the cron threads already share the registries and the
//! job locks of one process, and one process per thread would load the addons once per
//! thread), by executing its own binary again with the same arguments (less `-i`, `-u`,
//! `-s`), the listener at fd 3 (`LISTEN_FDS=1`) and a status pipe at fd 4
//! ([`super::worker`]). It never `fork()`s without an immediate `exec`.
//!
//! Then it waits for signals and for its workers: a worker that dies is replaced at once
//! and its pid and exit code or signal are logged (a worker that dies before it served is
//! started again after a backoff: 1 s, doubling up to 30 s); a worker that announces a
//! recycle (its limits: `limit_request`, `limit_memory_soft`, stuck handlers past
//! `limit_time_real`, the swap limit) gets its replacement at once while it finishes its
//! requests. Each worker applies its own limits; `limit_memory_hard` is its own RLIMIT_AS.
//!
//! Signals: SIGHUP is forwarded (each worker swaps its addons in place); SIGQUIT is
//! forwarded and the workers are listed; SIGUSR1 reopens the master's log file and is
//! forwarded (each worker reopens its own, after logrotate moved it); SIGTTIN/SIGTTOU add/remove an HTTP worker; SIGUSR2
//! restarts the HTTP workers one by one (a new binary), each replaced once the previous
//! replacement serves, so that at most one is missing; a first SIGINT/SIGTERM drains every
//! worker and the master exits when they have, a second one forwards the signal (the
//! workers exit at once) and exits.

use super::phoenix;
use super::requests_shm;
use super::worker::{Role, FD_VAR, ROLE_VAR, STATUS_FD};
use crate::config::Config;
use crate::http::server::{self as http_server, ListenerSource};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TARGET: &str = "inphms.service.workers";

/// The signals the master handles.
const MASTER_SIGNALS: [Signal; 9] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGUSR2,
    Signal::SIGCHLD,
];

/// The first backoff after a worker died before serving; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

// The writing end of the signal pipe (written once by `SelfPipe::install`, before the
// handlers are installed).
// global: a signal handler can reach nothing but a static.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    // SAFETY: `write` and errno access are async-signal-safe; the pipe is non-blocking.
    unsafe {
        let errno = *libc::__errno_location();
        let byte = sig as u8;
        let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
        if fd >= 0 {
            libc::write(fd, std::ptr::addr_of!(byte).cast(), 1);
        }
        *libc::__errno_location() = errno;
    }
}

/// The signals, as bytes on a pipe the main loop polls (the self-pipe trick: a signal may
/// be delivered to any thread of the process, the logging thread included).
struct SelfPipe {
    read: OwnedFd,
    _write: OwnedFd,
}

impl SelfPipe {
    fn install() -> std::io::Result<SelfPipe> {
        let (read, write) = pipe(libc::O_CLOEXEC | libc::O_NONBLOCK)?;
        SIGNAL_PIPE.store(write.as_raw_fd(), Ordering::Relaxed);
        let action = nix::sys::signal::SigAction::new(
            nix::sys::signal::SigHandler::Handler(on_signal),
            nix::sys::signal::SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        let mut set = SigSet::empty();
        for sig in MASTER_SIGNALS {
            // SAFETY: the handler only writes a byte to a pipe (async-signal-safe).
            unsafe { nix::sys::signal::sigaction(sig, &action) }?;
            set.add(sig);
        }
        nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_UNBLOCK,
            Some(&set),
            None,
        )?;
        Ok(SelfPipe {
            read,
            _write: write,
        })
    }

    /// The signals received since the last call, in order.
    fn drain(&self) -> Vec<Signal> {
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reading into a local buffer from a descriptor this process owns.
            let n =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return out;
            }
            let n = usize::try_from(n).unwrap_or(0);
            out.extend(
                buf[..n]
                    .iter()
                    .filter_map(|b| Signal::try_from(i32::from(*b)).ok()),
            );
        }
    }
}

fn pipe(flags: libc::c_int) -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `pipe2` fills the two descriptors, which are then owned here.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), flags) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: just created, owned by no one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A copy of `fd` at 10 or above (close-on-exec), so that placing descriptors at 3 and 4
/// in a worker never overwrites another source descriptor.
fn high_copy(fd: RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: duplicating a descriptor this process owns.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
    if copy < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: just created.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// One worker process.
#[derive(Debug)]
struct Worker {
    pid: Pid,
    role: Role,
    started: Instant,
    /// It said it serves.
    ready: bool,
    /// Why it is on its way out (it stops accepting, finishes its requests and exits);
    /// its replacement is started at once.
    retiring: Option<String>,
    /// It was sent SIGTERM (a second one would force its exit).
    terminated: bool,
    /// The requests it serves, mirrored by it ([`requests_shm`]).
    requests: Option<OwnedFd>,
}

/// The start backoff of a role: the workers that died before serving, in a row.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    until: Option<Instant>,
}

impl Backoff {
    fn allows(&self, now: Instant) -> bool {
        self.until.is_none_or(|t| now >= t)
    }

    fn failed(&mut self, now: Instant) -> Duration {
        self.failures += 1;
        let exp = self.failures.saturating_sub(1).min(5);
        let delay = (FIRST_BACKOFF * 2u32.pow(exp)).min(MAX_BACKOFF);
        self.until = Some(now + delay);
        delay
    }
}

/// The master's state.
struct Master {
    exe: PathBuf,
    args: Vec<OsString>,
    /// The listening socket (a high copy); dropped when the stop begins.
    listener: Option<OwnedFd>,
    status_write: OwnedFd,
    status_read: OwnedFd,
    /// The status bytes read but not yet a full line.
    partial: Vec<u8>,
    http_target: u32,
    cron_target: u32,
    workers: Vec<Worker>,
    http_backoff: Backoff,
    cron_backoff: Backoff,
    /// HTTP workers still to restart (SIGUSR2), one at a time.
    rolling: Vec<Pid>,
    stopping: bool,
}

/// Runs the master with `config` and returns the process exit code.
pub fn run(config: Arc<Config>) -> i32 {
    match Master::new(&config) {
        Ok(mut master) => master.run(&config),
        Err(e) => {
            tracing::error!(target: TARGET, "cannot start workers mode: {e}");
            1
        }
    }
}

impl Master {
    fn new(config: &Config) -> std::io::Result<Master> {
        let exe = phoenix::resolve_exe()?;
        let (listener, source) = http_server::listen(&config.http_interface, config.http_port)
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "cannot listen on {}:{}: {e}",
                        if config.http_interface.is_empty() {
                            "0.0.0.0"
                        } else {
                            &config.http_interface
                        },
                        config.http_port
                    ),
                )
            })?;
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(config.http_port);
        let listener = high_copy(listener.as_raw_fd())?;
        let (status_read, status_write) = pipe(libc::O_CLOEXEC)?;
        // SAFETY: setting O_NONBLOCK on a descriptor this process owns.
        unsafe {
            let flags = libc::fcntl(status_read.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(
                status_read.as_raw_fd(),
                libc::F_SETFL,
                flags | libc::O_NONBLOCK,
            );
        }
        let status_write = high_copy(status_write.as_raw_fd())?;
        tracing::info!(
            target: TARGET,
            "workers mode: master {} with {} HTTP worker(s) and {} cron worker(s) ({} cron thread(s)) on {}",
            std::process::id(),
            config.workers,
            u32::from(config.max_cron_threads > 0),
            config.max_cron_threads,
            match source {
                ListenerSource::Activated => "a socket-activated listener".to_owned(),
                ListenerSource::Bound => format!("port {port}"),
            }
        );
        let all: Vec<OsString> = std::env::args_os().collect();
        let args = phoenix::stripped_args(&all).into_iter().skip(1).collect();
        Ok(Master {
            exe,
            args,
            listener: Some(listener),
            status_write,
            status_read,
            partial: Vec::new(),
            http_target: config.workers,
            cron_target: u32::from(config.max_cron_threads > 0),
            workers: Vec::new(),
            http_backoff: Backoff::default(),
            cron_backoff: Backoff::default(),
            rolling: Vec::new(),
            stopping: false,
        })
    }

    fn run(&mut self, config: &Config) -> i32 {
        if !(config.init.is_empty() && config.update.is_empty()) {
            if let Err(e) = self.initialise() {
                tracing::error!(target: TARGET, "{e}; the workers are not started");
                return 1;
            }
        }
        let signals = match SelfPipe::install() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(target: TARGET, "cannot install the signal handlers: {e}");
                return 1;
            }
        };
        loop {
            self.reap();
            if self.stopping && self.workers.is_empty() {
                tracing::info!(target: TARGET, "all workers exited; master stops");
                return 0;
            }
            self.reconcile(Instant::now());
            self.wait(&signals);
            for sig in signals.drain() {
                if let Some(code) = self.on_signal(sig) {
                    return code;
                }
            }
            self.read_status();
        }
    }

    /// Runs `-i`/`-u` once, in a process of its own (the master runs no addon code), with
    /// every argument and `--stop-after-init`, before any worker starts (Odoo's prefork
    /// master preloads the registries before it forks).
    fn initialise(&self) -> std::io::Result<()> {
        let status = Command::new(&self.exe)
            .args(std::env::args_os().skip(1))
            .arg("--stop-after-init")
            .env(ROLE_VAR, Role::Init.as_str())
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .stdin(Stdio::null())
            .status()?;
        tracing::info!(target: TARGET, "databases initialised (-i/-u) before starting the workers: {status}");
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "the initialisation of the databases (-i/-u) failed: {status}"
            )))
        }
    }

    /// Polls the signal and status pipes until one is readable or a backoff ends.
    fn wait(&self, signals: &SelfPipe) {
        let now = Instant::now();
        let timeout = [&self.http_backoff, &self.cron_backoff]
            .iter()
            .filter_map(|b| b.until)
            .filter(|t| *t > now)
            .map(|t| t - now)
            .min()
            .map_or(1000, |d| d.as_millis().clamp(1, 1000) as libc::c_int);
        let mut fds = [
            libc::pollfd {
                fd: signals.read.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.status_read.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfd for the length given.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
    }

    /// Starts the workers missing, retires the ones too many, and the next of a rolling
    /// restart.
    fn reconcile(&mut self, now: Instant) {
        if self.stopping {
            return;
        }
        for role in [Role::Http, Role::Cron] {
            let target = match role {
                Role::Http => self.http_target,
                _ => self.cron_target,
            } as usize;
            let mut active = self.active(role).count();
            while active < target {
                let backoff = match role {
                    Role::Http => &self.http_backoff,
                    _ => &self.cron_backoff,
                };
                if !backoff.allows(now) {
                    break;
                }
                if let Err(e) = self.spawn(role) {
                    tracing::error!(target: TARGET, "cannot start a {} worker: {e}", role.as_str());
                    let delay = match role {
                        Role::Http => self.http_backoff.failed(now),
                        _ => self.cron_backoff.failed(now),
                    };
                    tracing::info!(target: TARGET, "next start in {delay:?}");
                    break;
                }
                active += 1;
            }
            while active > target {
                let Some(pid) = self.active(role).map(|w| w.pid).last() else {
                    break;
                };
                self.retire(pid, "SIGTTOU: one worker less");
                active -= 1;
            }
        }
        // A rolling restart: the next worker once every active one serves.
        let all_ready = self.active(Role::Http).all(|w| w.ready)
            && self.active(Role::Http).count() >= self.http_target as usize;
        if all_ready {
            while let Some(pid) = self.rolling.pop() {
                if self.active(Role::Http).any(|w| w.pid == pid) {
                    self.retire(pid, "rolling restart (SIGUSR2)");
                    // Its replacement starts at the next pass.
                    break;
                }
            }
        }
    }

    fn active(&self, role: Role) -> impl Iterator<Item = &Worker> {
        self.workers
            .iter()
            .filter(move |w| w.role == role && w.retiring.is_none())
    }

    /// Asks a worker to finish its requests and exit (SIGTERM).
    fn retire(&mut self, pid: Pid, why: &str) {
        if let Some(w) = self.workers.iter_mut().find(|w| w.pid == pid) {
            tracing::info!(target: TARGET, "worker {pid} ({}) retiring: {why}", w.role.as_str());
            w.retiring = Some(why.to_owned());
            w.terminated = true;
            let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
        }
    }

    fn spawn(&mut self, role: Role) -> std::io::Result<()> {
        let mut cmd = Command::new(&self.exe);
        cmd.args(&self.args)
            .env(ROLE_VAR, role.as_str())
            .env(FD_VAR, STATUS_FD.to_string())
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDNAMES")
            .env_remove("LISTEN_FDS_FIRST_FD")
            .stdin(Stdio::null())
            // Its own process group: a terminal's Ctrl-C reaches the master alone, which
            // stops the workers.
            .process_group(0);
        let listener = match role {
            Role::Http => {
                cmd.env("LISTEN_FDS", "1");
                match &self.listener {
                    Some(l) => Some(l.as_raw_fd()),
                    None => return Err(std::io::Error::other("the listener is closed")),
                }
            }
            _ => {
                cmd.env_remove("LISTEN_FDS");
                None
            }
        };
        let status = self.status_write.as_raw_fd();
        // Where an HTTP worker mirrors the requests it serves (logged if it dies).
        let requests = match role {
            Role::Http => match requests_shm::create().and_then(|fd| high_copy(fd.as_raw_fd())) {
                Ok(fd) => Some(fd),
                Err(e) => {
                    tracing::warn!(target: TARGET, "no shared memory for the worker's requests: {e}");
                    None
                }
            },
            _ => None,
        };
        let requests_fd = requests.as_ref().map(|fd| fd.as_raw_fd());
        if requests_fd.is_some() {
            cmd.env(requests_shm::FD_VAR, requests_shm::FD.to_string());
        } else {
            cmd.env_remove(requests_shm::FD_VAR);
        }
        // The server's handled signals wait blocked until the worker installs its handlers.
        // SAFETY: sigset operations on a local set.
        let blocked = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in super::signals::HANDLED {
                libc::sigaddset(&mut set, sig as libc::c_int);
            }
            set
        };
        // SAFETY: between fork and exec only async-signal-safe calls (dup2, fcntl, prctl,
        // sigprocmask) on descriptors and values prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let place = |from: RawFd, to: RawFd| -> std::io::Result<()> {
                    if libc::dup2(from, to) < 0 || libc::fcntl(to, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                };
                if let Some(l) = listener {
                    place(l, 3)?;
                }
                place(status, STATUS_FD)?;
                if let Some(fd) = requests_fd {
                    place(fd, requests_shm::FD)?;
                }
                // The worker follows the master: SIGTERM (a drain) if the master dies.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                libc::sigprocmask(libc::SIG_BLOCK, &blocked, std::ptr::null_mut());
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        // Reaped by `reap` (waitpid), not through the handle.
        drop(child);
        tracing::info!(target: TARGET, "worker {pid} ({}) started", role.as_str());
        self.workers.push(Worker {
            pid,
            role,
            started: Instant::now(),
            ready: false,
            retiring: None,
            terminated: false,
            requests,
        });
        Ok(())
    }

    /// Collects the workers that exited, and logs how.
    fn reap(&mut self) {
        loop {
            let status = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(s) => s,
            };
            let (pid, how, clean) = match status {
                WaitStatus::Exited(pid, code) => (pid, format!("exit code {code}"), code == 0),
                WaitStatus::Signaled(pid, sig, core) => (
                    pid,
                    format!(
                        "signal {}{}",
                        sig.as_str(),
                        if core { " (core dumped)" } else { "" }
                    ),
                    false,
                ),
                _ => continue,
            };
            let Some(i) = self.workers.iter().position(|w| w.pid == pid) else {
                continue;
            };
            let w = self.workers.swap_remove(i);
            let uptime = w.started.elapsed().as_secs_f64();
            let role = w.role.as_str();
            if let Some(why) = &w.retiring {
                tracing::info!(target: TARGET, "worker {pid} ({role}) exited ({how}) after {uptime:.1}s: {why}");
            } else if self.stopping {
                tracing::info!(target: TARGET, "worker {pid} ({role}) exited ({how})");
            } else {
                let cut = w
                    .requests
                    .as_ref()
                    .map(requests_shm::read)
                    .unwrap_or_default();
                let serving = if !w.ready {
                    "it had not started serving".to_owned()
                } else if cut.is_empty() {
                    "it was serving no request".to_owned()
                } else {
                    format!("it was serving: {}", cut.join(", "))
                };
                let log_line = format!(
                    "worker {pid} ({role}) died ({how}) after {uptime:.1}s; {serving}; replacing it"
                );
                if clean {
                    tracing::warn!(target: TARGET, "{log_line}");
                } else {
                    tracing::error!(target: TARGET, "{log_line}");
                }
                if !w.ready {
                    let now = Instant::now();
                    let backoff = match w.role {
                        Role::Http => &mut self.http_backoff,
                        _ => &mut self.cron_backoff,
                    };
                    let delay = backoff.failed(now);
                    tracing::warn!(
                        target: TARGET,
                        "{} {role} worker(s) in a row died before serving: next start in {delay:?}",
                        backoff.failures
                    );
                }
            }
        }
    }

    /// Reads the workers' status lines.
    fn read_status(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reading into a local buffer from a descriptor this process owns.
            let n = unsafe {
                libc::read(
                    self.status_read.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n <= 0 {
                break;
            }
            self.partial
                .extend_from_slice(&buf[..usize::try_from(n).unwrap_or(0)]);
        }
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]).into_owned();
            self.on_status(&line);
        }
        // A worker cut mid-line (killed): bounded.
        if self.partial.len() > 64 * 1024 {
            self.partial.clear();
        }
    }

    fn on_status(&mut self, line: &str) {
        let mut parts = line.splitn(3, ' ');
        let pid = parts.next().and_then(|p| p.parse::<i32>().ok());
        let word = parts.next().unwrap_or("");
        let detail = parts.next().unwrap_or("").trim();
        let Some(w) = pid.and_then(|p| self.workers.iter_mut().find(|w| w.pid.as_raw() == p))
        else {
            return;
        };
        let role = w.role.as_str();
        match word {
            "ready" => {
                w.ready = true;
                tracing::info!(target: TARGET, "worker {} ({role}) ready after {:.3}s", w.pid, w.started.elapsed().as_secs_f64());
                match w.role {
                    Role::Http => self.http_backoff = Backoff::default(),
                    _ => self.cron_backoff = Backoff::default(),
                }
            }
            "recycle" => {
                tracing::info!(target: TARGET, "worker {} ({role}) recycling: {detail}; starting its replacement", w.pid);
                w.retiring = Some(detail.to_owned());
            }
            _ => tracing::debug!(target: TARGET, "worker status line not understood: {line:?}"),
        }
    }

    /// Reacts to a signal; the exit code when the master must exit now.
    fn on_signal(&mut self, sig: Signal) -> Option<i32> {
        match sig {
            Signal::SIGCHLD => {}
            Signal::SIGINT | Signal::SIGTERM => {
                if self.stopping {
                    eprintln!("Forced shutdown.");
                    self.signal_all(sig);
                    crate::netsvc::flush();
                    return Some(0);
                }
                tracing::info!(target: TARGET, "Initiating shutdown");
                tracing::info!(target: TARGET, "Hit CTRL-C again or send a second signal to force the shutdown.");
                self.stopping = true;
                // The workers hold their own copies: the socket closes with the last one.
                self.listener = None;
                for w in self.workers.iter_mut().filter(|w| !w.terminated) {
                    w.terminated = true;
                    let _ = nix::sys::signal::kill(w.pid, Signal::SIGTERM);
                }
            }
            Signal::SIGHUP => {
                tracing::info!(target: TARGET, "SIGHUP: {} worker(s) swap their addons", self.workers.len());
                self.signal_all(Signal::SIGHUP);
            }
            Signal::SIGQUIT => {
                for w in &self.workers {
                    tracing::info!(
                        target: TARGET,
                        "worker {} ({}) up {:.1}s{}{}",
                        w.pid,
                        w.role.as_str(),
                        w.started.elapsed().as_secs_f64(),
                        if w.ready { "" } else { ", starting" },
                        w.retiring.as_deref().map(|r| format!(", retiring: {r}")).unwrap_or_default()
                    );
                }
                self.signal_all(Signal::SIGQUIT);
            }
            Signal::SIGUSR1 => {
                crate::netsvc::reopen();
                self.signal_all(Signal::SIGUSR1);
            }
            Signal::SIGTTIN => {
                self.http_target += 1;
                tracing::info!(target: TARGET, "SIGTTIN: {} HTTP worker(s)", self.http_target);
            }
            Signal::SIGTTOU => {
                if self.http_target > 1 {
                    self.http_target -= 1;
                }
                tracing::info!(target: TARGET, "SIGTTOU: {} HTTP worker(s)", self.http_target);
            }
            Signal::SIGUSR2 => {
                self.rolling = self.active(Role::Http).map(|w| w.pid).collect();
                self.rolling.reverse();
                tracing::info!(target: TARGET, "SIGUSR2: restarting {} HTTP worker(s) one by one", self.rolling.len());
            }
            _ => {}
        }
        None
    }

    fn signal_all(&self, sig: Signal) {
        for w in &self.workers {
            let _ = nix::sys::signal::kill(w.pid, sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;
    use std::time::{Duration, Instant};

    #[test]
    fn the_start_backoff_doubles_up_to_thirty_seconds() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert!(b.allows(t0));
        let delays: Vec<Duration> = (0..8).map(|_| b.failed(t0)).collect();
        let secs: Vec<u64> = delays.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert!(!b.allows(t0 + Duration::from_secs(29)));
        assert!(b.allows(t0 + Duration::from_secs(30)));
    }
}
