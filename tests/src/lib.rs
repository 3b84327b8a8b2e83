//! # inphms-tests: the harness of the integration tests
//!
//! Integration tests run the real `inphms-host` binary. This crate gives them:
//!
//! - [`host_bin`]: the binary under test (`$INPHMS_HOST_BIN`, else `target/<profile>/inphms-host`
//!   beside the test executable; it must be built first: `cargo build -p inphms-host`, which
//!   `cargo xtask test` does).
//! - [`TestDir`]: a temporary folder (removed on drop) with helpers to write files, config
//!   files and addons folders. Its `home/` is the `HOME` of the commands it runs.
//! - [`Cmd`] and [`run`]: a one-shot command with a clean environment and a timeout, giving an
//!   [`Output`].
//! - [`Server`]: `inphms-host server` on a free port, its stdout and stderr captured to files,
//!   waited for until the port accepts connections, killed on drop.
//! - [`http_get`], [`request`] and [`HttpConn`]: a small blocking HTTP/1.1 client (Content-Length
//!   and chunked bodies) giving a [`Response`].
//!
//! Commands get a clean environment: `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
//! `PGDATABASE`, `INPHMS_RC` and `XDG_DATA_HOME` are removed and `HOME` is a temporary folder,
//! so that nothing of the machine running the tests leaks in. Set what a test needs with
//! [`Cmd::env`] / [`ServerBuilder::env`].
//!
//! ```no_run
//! use inphms_tests::{TestDir, http_get};
//! let td = TestDir::new();
//! let addons = td.dummy_addons();
//! let out = td.cmd(["server", "--stop-after-init", &format!("--addons-path={}", addons.display())]).run();
//! assert_eq!(out.code, Some(0), "{out}");
//! let server = td.server(["--addons-path", addons.to_str().unwrap()]).start();
//! let resp = http_get(server.port(), "/", &[]);
//! assert_eq!(resp.status, 404);
//! ```

pub mod bodies;
pub mod fd_limit;
pub mod pg;
pub mod pg_instance;
pub mod swap;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// Environment variables removed from every command the harness runs.
pub const CLEARED_ENV: [&str; 7] = [
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "INPHMS_RC",
    "XDG_DATA_HOME",
];

/// The default timeout of a one-shot command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The root of the repository.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// The `inphms-host` binary: `$INPHMS_HOST_BIN`, else `inphms-host` in the target folder of
/// the running test (`target/debug/deps/X` → `target/debug/inphms-host`).
///
/// Panics when it is missing, or older than the sources of `host/` or `sdk/` (so that a test
/// never runs a stale binary): build it with `cargo build -p inphms-host`.
pub fn host_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("INPHMS_HOST_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable in target/<profile>/deps");
    let bin = profile_dir.join("inphms-host");
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is missing: build it with `cargo build -p inphms-host` (or run `cargo xtask test`)",
                bin.display()
            )
        });
    let root = repo_root();
    for dir in ["host/src", "host/Cargo.toml", "sdk/src", "sdk/Cargo.toml"] {
        if let Some((newest, path)) = newest_file(&root.join(dir)) {
            assert!(
                newest <= built,
                "{} is older than {}: rebuild it with `cargo build -p inphms-host` (or run `cargo xtask test`)",
                bin.display(),
                path.display()
            );
        }
    }
    bin
}

/// The most recently modified file under `path` (or `path` itself).
fn newest_file(path: &Path) -> Option<(SystemTime, PathBuf)> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return Some((meta.modified().ok()?, path.to_owned()));
    }
    std::fs::read_dir(path)
        .ok()?
        .flatten()
        .filter_map(|e| newest_file(&e.path()))
        .max_by_key(|(t, _)| *t)
}

/// The workspace's target folder: `$CARGO_TARGET_DIR` (relative to the repository root
/// when relative), else `target/` at the root.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => repo_root().join(dir),
        None => repo_root().join("target"),
    }
}

/// The debug build of the addon library `lib<name>.so` in the workspace's target folder
/// (`cargo build --workspace` makes it).
pub fn built_lib(name: &str) -> PathBuf {
    let lib = target_dir().join(format!("debug/lib{name}.so"));
    assert!(
        lib.is_file(),
        "{} is missing: run `cargo build --workspace`",
        lib.display()
    );
    lib
}

/// The folder of the test addons (`test_http`, `test_db`, `test_swap`, `test_panic_abort`,
/// `test_abi_break`): `tests/addons/`. The host does not search it by default (its built-in
/// addons folder is the repository's `addons/`, which holds only what ships), so a test that
/// loads a test addon names it in `--addons-path` ([`with_test_addons`]) or copies the addon
/// ([`TestDir::copy_addon`] of [`test_addon_src`]).
pub fn test_addons_dir() -> PathBuf {
    repo_root().join("tests/addons")
}

/// The source folder of the test addon `name` (its manifest, `Cargo.toml`, `src/`).
pub fn test_addon_src(name: &str) -> PathBuf {
    test_addons_dir().join(name)
}

/// The `--addons-path` value of a test that loads test addons: the folders `first` (searched
/// first, so their addons shadow those of the same name), then [`test_addons_dir`].
pub fn with_test_addons(first: &[&Path]) -> String {
    let mut dirs: Vec<String> = first.iter().map(|d| d.display().to_string()).collect();
    dirs.push(test_addons_dir().display().to_string());
    dirs.join(",")
}

/// A port that was free a moment ago (bound on 127.0.0.1:0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

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

// ---------------------------------------------------------------------------------------------
// Test folders

/// A temporary folder for one test, removed on drop.
pub struct TestDir {
    tmp: tempfile::TempDir,
}

impl Default for TestDir {
    fn default() -> Self {
        TestDir::new()
    }
}

impl TestDir {
    /// A new empty folder, with an empty `home/`.
    pub fn new() -> TestDir {
        let tmp = tempfile::Builder::new()
            .prefix("inphms-test-")
            .tempdir()
            .expect("create a temporary folder");
        std::fs::create_dir_all(tmp.path().join("home")).expect("create home/");
        TestDir { tmp }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// `rel` inside the folder.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path().join(rel)
    }

    /// The `HOME` of the commands run from this folder.
    pub fn home(&self) -> PathBuf {
        self.join("home")
    }

    /// Writes `contents` to `rel` (parent folders created); returns its absolute path.
    pub fn write(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent folders");
        }
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Writes a config file (TOML) to `rel`; returns its absolute path.
    pub fn config(&self, rel: impl AsRef<Path>, toml: &str) -> PathBuf {
        self.write(rel, toml)
    }

    /// The text of `rel` (panics if it cannot be read).
    pub fn read(&self, rel: impl AsRef<Path>) -> String {
        let path = self.join(rel);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// Creates the addon `name` in the addons folder `addons_dir` (relative), with
    /// `manifest` as its `__manifest__.toml`; returns the addons folder.
    pub fn addon(&self, addons_dir: &str, name: &str, manifest: &str) -> PathBuf {
        self.write(format!("{addons_dir}/{name}/__manifest__.toml"), manifest);
        self.join(addons_dir)
    }

    /// An addons folder `addons/` holding one addon without a library, `dummy`
    /// (`name = "Dummy"`): the smallest valid `--addons-path`. Returns the folder.
    pub fn dummy_addons(&self) -> PathBuf {
        self.addon("addons", "dummy", "name = \"Dummy\"\n")
    }

    /// Copies the addon folder `src` (without its `target/`) into the addons folder
    /// `addons_dir` (relative); returns the copy.
    pub fn copy_addon(&self, src: &Path, addons_dir: &str) -> PathBuf {
        let name = src.file_name().expect("an addon folder has a name");
        let dest = self.join(addons_dir).join(name);
        copy_tree(src, &dest);
        dest
    }

    /// A command run from this folder, with `HOME` set to [`TestDir::home`].
    pub fn cmd<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Cmd::new(args).home(self.home()).current_dir(self.path())
    }

    /// A server run from this folder; `args` follow `inphms-host server`.
    pub fn server<I, S>(&self, args: I) -> ServerBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        ServerBuilder::new(self, args)
    }
}

/// Copies `src` into `dest` recursively, skipping `target/` folders.
fn copy_tree(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).expect("create the copy");
    for entry in std::fs::read_dir(src)
        .expect("read the addon folder")
        .flatten()
    {
        let from = entry.path();
        let to = dest.join(entry.file_name());
        if from.is_dir() {
            if entry.file_name() != "target" {
                copy_tree(&from, &to);
            }
        } else {
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One-shot commands

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
    args: Vec<OsString>,
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
        let mut child = cmd
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", host_bin().display()));
        let stdout = drain(child.stdout.take().expect("piped stdout"));
        let stderr = drain(child.stderr.take().expect("piped stderr"));
        let (status, timed_out) = wait_timeout(&mut child, cmd.timeout);
        Output {
            code: status.and_then(|s| s.code()),
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
            timed_out,
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

/// Reads a stream to its end in a thread.
fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Waits for `child` up to `timeout`, then kills it. Returns the status (if it exited) and
/// whether it timed out.
fn wait_timeout(child: &mut Child, timeout: Duration) -> (Option<ExitStatus>, bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return (Some(status), false);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let status = child.wait().ok();
            return (status, true);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------
// Servers

/// How to start a [`Server`].
pub struct ServerBuilder {
    cmd: Cmd,
    log_dir: PathBuf,
    port: u16,
    add_port: bool,
    wait_for_port: bool,
    start_timeout: Duration,
    nofile: Option<u64>,
}

impl ServerBuilder {
    fn new<I, S>(td: &TestDir, args: I) -> ServerBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all = vec![OsString::from("server")];
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        static SERVERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ServerBuilder {
            cmd: td.cmd(all),
            log_dir: td.join(format!("server-{n}")),
            port: free_port(),
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
    /// the server is still waited for on [`ServerBuilder::port`].
    pub fn raw_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        self.add_port = false;
        self
    }

    /// The port the server will listen on (free when the builder was made).
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

    /// Starts the server (with `--http-interface=127.0.0.1 --http-port=PORT` added unless
    /// [`ServerBuilder::raw_args`] was used) and waits until it answers HTTP requests.
    /// Panics, showing its output, if it exits first or does not listen in time.
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
        let child = command
            .stdin(Stdio::null())
            .stdout(file(&stdout_path))
            .stderr(file(&stderr_path))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", host_bin().display()));
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

/// A running `inphms-host`, killed (SIGKILL) on drop if still running.
pub struct Server {
    child: Child,
    port: u16,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

impl Server {
    /// Waits until the server answers HTTP: the listening socket accepts connections (into
    /// its backlog) before the addons are loaded, so a connection alone proves nothing.
    fn wait_for_port(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let probe = b"GET /web/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
            if try_request(self.port, probe).is_ok() {
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
        wait_until(timeout, || self.stderr().contains(needle))
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

// ---------------------------------------------------------------------------------------------
// HTTP client

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The headers, in order, names as received.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A connection to 127.0.0.1:`port` that can carry several requests (keep-alive).
pub struct HttpConn {
    reader: BufReader<TcpStream>,
}

impl HttpConn {
    /// Connects, with 30 s read and write timeouts.
    pub fn connect(port: u16) -> std::io::Result<HttpConn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
        Ok(HttpConn {
            reader: BufReader::new(stream),
        })
    }

    /// The socket, e.g. to set another timeout.
    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Sends raw bytes.
    pub fn send(&mut self, raw: &[u8]) -> std::io::Result<()> {
        self.reader.get_mut().write_all(raw)
    }

    /// Closes the writing half (the server sees end of input).
    pub fn shutdown_write(&self) -> std::io::Result<()> {
        self.stream().shutdown(Shutdown::Write)
    }

    /// Reads one response; `head` says it answers a HEAD request (no body).
    pub fn read_response(&mut self, head: bool) -> std::io::Result<Response> {
        read_response(&mut self.reader, head)
    }
}

/// Sends `raw` (a whole request) to 127.0.0.1:`port` and reads one response.
pub fn try_request(port: u16, raw: &[u8]) -> std::io::Result<Response> {
    let mut conn = HttpConn::connect(port)?;
    conn.send(raw)?;
    conn.read_response(raw.starts_with(b"HEAD "))
}

/// [`try_request`], panicking on an I/O error.
pub fn request(port: u16, raw: &[u8]) -> Response {
    try_request(port, raw).unwrap_or_else(|e| panic!("HTTP request to port {port}: {e}"))
}

/// `GET path` with `headers` (plus `Host` and `Connection: close`) on 127.0.0.1:`port`.
pub fn http_get(port: u16, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut raw = format!("GET {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        raw.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (n, v) in headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("connection"))
    {
        raw.push_str("Connection: close\r\n");
    }
    raw.push_str("\r\n");
    request(port, raw.as_bytes())
}

fn bad(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

/// One line without its CRLF; an error at end of input.
fn read_line(r: &mut impl BufRead) -> std::io::Result<String> {
    let mut buf = Vec::new();
    if r.read_until(b'\n', &mut buf)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed before a full response",
        ));
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| bad("response head is not UTF-8"))
}

/// Reads a response: status line, headers, then a body by `Transfer-Encoding: chunked`,
/// `Content-Length` or the end of the connection. 1xx responses are skipped.
fn read_response(r: &mut impl BufRead, head: bool) -> std::io::Result<Response> {
    loop {
        let status_line = read_line(r)?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if !version.starts_with("HTTP/") {
            return Err(bad(format!("not an HTTP status line: {status_line:?}")));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad status line: {status_line:?}")))?;
        let reason = parts.next().unwrap_or("").to_owned();
        let mut headers = Vec::new();
        loop {
            let line = read_line(r)?;
            if line.is_empty() {
                break;
            }
            let (n, v) = line
                .split_once(':')
                .ok_or_else(|| bad(format!("bad header line: {line:?}")))?;
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
        if (100..200).contains(&status) {
            continue;
        }
        let mut resp = Response {
            status,
            reason,
            headers,
            body: Vec::new(),
        };
        if head || status == 204 || status == 304 {
            return Ok(resp);
        }
        let chunked = resp
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        if chunked {
            resp.body = read_chunked(r)?;
        } else if let Some(len) = resp.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| bad(format!("bad Content-Length: {len:?}")))?;
            resp.body = vec![0; len];
            r.read_exact(&mut resp.body)?;
        } else {
            r.read_to_end(&mut resp.body)?;
        }
        return Ok(resp);
    }
}

/// A chunked body, trailers skipped.
fn read_chunked(r: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r)?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| bad(format!("bad chunk size: {line:?}")))?;
        if size == 0 {
            while !read_line(r)?.is_empty() {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        read_line(r)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunked_and_length_bodies() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nT: x\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabcrest";
        let mut r = BufReader::new(&raw[..]);
        let a = read_response(&mut r, false).unwrap();
        assert_eq!((a.status, a.text().as_str()), (200, "hello!"));
        assert_eq!(a.header("x-a"), Some("1"));
        let b = read_response(&mut r, false).unwrap();
        assert_eq!(
            (b.status, b.reason.as_str(), b.text().as_str()),
            (404, "Not Found", "abc")
        );
        let c = read_response(
            &mut BufReader::new(&b"HTTP/1.0 200 OK\r\n\r\nto the end"[..]),
            false,
        )
        .unwrap();
        assert_eq!(c.text(), "to the end");
    }
}

// ---------------------------------------------------------------------------------------------
// Websockets

/// A blocking websocket client (tungstenite) for the tests.
pub mod ws {
    use std::net::TcpStream;
    use std::time::Duration;
    use tungstenite::client::IntoClientRequest;
    use tungstenite::{Message, WebSocket};

    /// Opens `ws://127.0.0.1:port/path` (with the session cookie `sid`), asserting the 101;
    /// reads time out after 15 s.
    pub fn ws_connect(port: u16, path: &str, sid: Option<&str>) -> WebSocket<TcpStream> {
        let mut req = format!("ws://127.0.0.1:{port}{path}")
            .into_client_request()
            .expect("a websocket URL");
        if let Some(sid) = sid {
            let cookie = format!("session_id={sid}").parse().expect("a header value");
            req.headers_mut().insert("cookie", cookie);
        }
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .expect("set the read timeout");
        let (ws, resp) = tungstenite::client::client(req, stream).expect("websocket handshake");
        assert_eq!(resp.status(), 101);
        ws
    }

    /// The next data or close message (pings and pongs skipped; a read interrupted by a
    /// signal is retried).
    pub fn ws_next(ws: &mut WebSocket<TcpStream>) -> Message {
        loop {
            match ws.read() {
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Ok(m) => return m,
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::Interrupted => {
                    continue
                }
                Err(e) => panic!("read a websocket message: {e:?}"),
            }
        }
    }

    /// The code of a Close message.
    pub fn close_code(m: &Message) -> Option<u16> {
        match m {
            Message::Close(Some(frame)) => Some(u16::from(frame.code)),
            _ => None,
        }
    }
}
