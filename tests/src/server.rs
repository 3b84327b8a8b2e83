//! Servers: [`ServerBuilder`] starts `inphms-host server` on a listening socket the harness
//! binds and hands over (socket activation, fd 3), its stdout and stderr captured to files;
//! [`Server`] waits until it answers HTTP, reads its logs ([`Server::wait_for_log`]), signals
//! and stops it, and kills it on drop.

use crate::cmd::Cmd;
use crate::dir::TestDir;
use crate::fd_limit;
use crate::http::{HttpConn, Response};
use crate::paths::host_bin;
use crate::sys::{send_signal, wait_until};
use inphms_test_support::listen::{bind_loopback, socket_activated};
use inphms_test_support::process::wait_for_log;
use std::ffi::{OsStr, OsString};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The backlog the host gives a socket it binds itself (`http::server::LISTEN_BACKLOG`), given
/// to the socket the harness binds for it too (as a systemd socket unit's `Backlog=`), so
/// that bursts of connections meet the same listen queue either way.
const HOST_LISTEN_BACKLOG: i32 = 1024;

/// How to start a [`Server`].
pub struct ServerBuilder {
    cmd: Cmd,
    log_dir: PathBuf,
    listener: TcpListener,
    port: u16,
    add_port: bool,
    wait_for_port: bool,
    start_timeout: Duration,
    nofile: Option<u64>,
}

impl ServerBuilder {
    pub(crate) fn new<I, S>(td: &TestDir, args: I) -> ServerBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all = vec![OsString::from("server")];
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        static SERVERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let listener = bind_loopback(HOST_LISTEN_BACKLOG).unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().expect("the bound address").port();
        ServerBuilder {
            cmd: td.cmd(all),
            log_dir: td.join(format!("server-{n}")),
            listener,
            port,
            add_port: true,
            wait_for_port: true,
            start_timeout: Duration::from_secs(60),
            nofile: None,
        }
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.cmd = self.cmd.env(key, value);
        self
    }

    /// Uses these arguments as the whole command line (no `server`, no port flags added);
    /// the listening socket is still handed over, and waited for on [`ServerBuilder::port`].
    pub fn raw_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        self.add_port = false;
        self
    }

    /// The port the server will listen on: the harness binds it when the builder is made and
    /// hands the socket over at [`ServerBuilder::start`], so it is known (e.g. for a config
    /// file) before the start and no other test can take it.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Do not wait for the port: [`ServerBuilder::start`] returns once the process runs.
    pub fn no_wait(mut self) -> Self {
        self.wait_for_port = false;
        self
    }

    /// How long to wait for the port (default 60 s).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Runs the server under a RLIMIT_NOFILE of `limit` (see [`fd_limit::under_nofile`]).
    pub fn nofile(mut self, limit: u64) -> Self {
        self.nofile = Some(limit);
        self
    }

    /// Starts the server on the builder's listening socket (socket activation, see
    /// [`socket_activated`]: the host takes the socket instead of binding
    /// `http_interface:http_port`, so the port can never be lost to another test;
    /// `--http-interface=127.0.0.1 --http-port=PORT` are added as well, unless
    /// [`ServerBuilder::raw_args`] was used, so that its configuration names the socket it
    /// serves) and waits until it answers HTTP requests. Panics, showing its output, if it
    /// exits first or does not answer in time.
    pub fn start(self) -> Server {
        let mut cmd = self.cmd;
        if self.add_port {
            cmd = cmd
                .arg("--http-interface=127.0.0.1")
                .arg(format!("--http-port={}", self.port));
        }
        std::fs::create_dir_all(&self.log_dir).expect("create the server log folder");
        let stdout_path = self.log_dir.join("stdout.log");
        let stderr_path = self.log_dir.join("stderr.log");
        let file = |p: &Path| std::fs::File::create(p).expect("create a server log file");
        let mut command = cmd.command();
        if let Some(limit) = self.nofile {
            command = fd_limit::under_nofile(&command, limit);
        }
        // Last: the other wrappers do not carry the `pre_exec` that places the socket.
        let child = socket_activated(&command, &self.listener)
            .stdin(Stdio::null())
            .stdout(file(&stdout_path))
            .stderr(file(&stderr_path))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", host_bin().display()));
        // The server holds the socket now: once it exits, connections are refused.
        drop(self.listener);
        let mut server = Server {
            child,
            port: self.port,
            stdout_path,
            stderr_path,
        };
        if self.wait_for_port {
            server.wait_for_port(self.start_timeout);
        }
        server
    }
}

/// Sends `raw` on a new connection to `port` and reads one response, waiting at most `wait`.
fn probe_once(port: u16, raw: &[u8], wait: Duration) -> std::io::Result<Response> {
    let mut conn = HttpConn::connect(port)?;
    conn.stream().set_read_timeout(Some(wait))?;
    conn.send(raw)?;
    conn.read_response(false)
}

/// A running `inphms-host`, killed (SIGKILL) on drop if still running.
pub struct Server {
    child: Child,
    port: u16,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

impl Server {
    /// Waits until the server answers HTTP: the listening socket accepts connections (into
    /// its backlog) from the moment the harness binds it, before the addons are loaded, so a
    /// connection alone proves nothing. A probe waits for its answer at most until `timeout`
    /// ends; it fails at once if the server exits (the socket closes with it).
    fn wait_for_port(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let probe = b"GET /web/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(100));
            if probe_once(self.port, probe, left).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the server exited ({status}) before listening on port {}\n--- stderr ---\n{}\n--- stdout ---\n{}",
                    self.port,
                    self.stderr(),
                    self.stdout()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "the server did not listen on port {} within {timeout:?}\n--- stderr ---\n{}",
                    self.port,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The HTTP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote to stderr so far (its log, unless `--logfile` is given).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// What the server wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Waits until stderr contains `needle`; returns whether it did within `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_for_log(&self.stderr_path, timeout, |log| log.contains(needle)).is_some()
    }

    /// Waits until the server has `request` (`"GET /test_swap/slow"`: method and path) in
    /// flight, for a handler that logs nothing when it starts: sends SIGQUIT, whose dump
    /// lists every request in flight (`in flight: METHOD PATH database ...`), one dump at a
    /// time, until a dump written after this call lists it. Whether it did within `timeout`.
    pub fn wait_in_flight(&self, request: &str, timeout: Duration) -> bool {
        let needle = format!("in flight: {request} ");
        let from = self.stderr().len();
        let mut asked = 0;
        wait_until(timeout, || {
            let log = self.stderr();
            let new = log.get(from..).unwrap_or("");
            if new.contains(&needle) {
                return true;
            }
            // The next signal once the previous dump is written (its first line is in).
            if new.matches("SIGQUIT: ").count() >= asked {
                asked += 1;
                self.signal("QUIT");
            }
            false
        })
    }

    /// Sends a signal (`"TERM"`, `"INT"`, `"HUP"`...).
    pub fn signal(&self, sig: &str) {
        send_signal(self.pid(), sig);
    }

    /// Waits up to `timeout` for the process to exit; its status if it did.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit; its status, or `None` if it
    /// had to be killed.
    pub fn stop(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        self.signal("TERM");
        let status = self.wait(timeout);
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
