//! Starting and stopping the servers under test, each in its own scratch folder, on a
//! loopback socket the suite binds and hands over (socket activation: no port race): the
//! host, the bare hyper baselines, nginx (the peer, [`crate::nginx`]), and the database
//! route's host and baseline on a database of the suite's own ([`TestDb`]).

use crate::{nginx, pg, procfs};
use inphms_test_support::http;
use inphms_test_support::listen::{bind_loopback, socket_activated};
use inphms_test_support::process::{self, run_bounded};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The addons the host can load in the suite; their release libraries are staged.
pub const STAGED_ADDONS: [&str; 3] = ["base", "web", "test_http"];

/// Where the binaries and the staged addons are.
#[derive(Debug)]
pub struct Env {
    /// `target/release` (holds `inphms-host`, `bench-baseline` and the addon libraries).
    pub bin_dir: PathBuf,
    /// The repository root (holds `addons/` and `tests/addons/`).
    pub root: PathBuf,
    /// The suite's scratch folder (removed at the end).
    pub work: PathBuf,
    /// The staged addons folder (`INPHMS_ADDONS_ROOT` of the host).
    pub addons: PathBuf,
    /// nginx (the peer) and its version, or why it cannot run.
    pub nginx: Result<(PathBuf, String), String>,
    /// The database of the database route item, made on first use ([`Env::test_db`]).
    test_db: OnceLock<Result<TestDb, String>>,
}

impl Env {
    /// Creates the scratch folder and stages the addons: each one's manifest, `static/` and
    /// release library, outside the source tree so that the host's library search (which
    /// takes the newest of `target/{release,debug}`) cannot pick a debug build.
    pub fn new(bin_dir: PathBuf, root: PathBuf) -> Result<Env, String> {
        for bin in ["inphms-host", "bench-baseline"] {
            if !bin_dir.join(bin).is_file() {
                return Err(format!(
                    "{} is missing: run `cargo build --release` (or `cargo xtask bench`)",
                    bin_dir.join(bin).display()
                ));
            }
        }
        let work = std::env::temp_dir().join(format!("inphms-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        let addons = work.join("addons");
        for name in STAGED_ADDONS {
            let built = bin_dir.join(format!("lib{name}.so"));
            stage_addon(&addon_source(&root, name), &built, &addons.join(name))?;
        }
        Ok(Env {
            bin_dir,
            root,
            work,
            addons,
            nginx: nginx::find(),
            test_db: OnceLock::new(),
        })
    }

    /// The database with `test_db` installed that the database route's servers use, made
    /// on the first call (a few seconds) and dropped with the `Env`; or why it could not be.
    pub fn test_db(&self) -> Result<&TestDb, String> {
        self.test_db
            .get_or_init(|| {
                let db = pg::database(ROUTE_DB)?;
                let dir = self.scratch("test-db")?;
                let addons = install_test_db(self, &dir, &db.name)?;
                Ok(TestDb { db, addons })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// A new, empty scratch folder under the suite's one.
    pub fn scratch(&self, name: &str) -> Result<PathBuf, String> {
        let dir = self.work.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(dir)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // The database first (its guard drops it), then the folders.
        drop(self.test_db.take());
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// A database of the suite's own with `test_db` installed, and the addons folder holding
/// `test_db` (the host's `--addons-path`).
pub struct TestDb {
    pub db: pg::Database,
    pub addons: PathBuf,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb")
            .field("db", &self.db.name)
            .field("addons", &self.addons)
            .finish()
    }
}

/// The tag of the suite's database with `test_db` installed ([`Env::test_db`]).
pub const ROUTE_DB: &str = "route";

/// Stages `test_db` in `dir/addons` and creates the database `db` with it installed
/// (`inphms-host server --stop-after-init -d DB -i test_db`, 120 s at most); returns the
/// addons folder.
pub fn install_test_db(env: &Env, dir: &Path, db: &str) -> Result<PathBuf, String> {
    let addons = dir.join("addons");
    stage_addon(
        &addon_source(&env.root, "test_db"),
        &env.bin_dir.join("libtest_db.so"),
        &addons.join("test_db"),
    )?;
    let mut init = host_command(env, dir);
    init.current_dir(dir)
        .args(["server", "--stop-after-init", "-D"])
        .arg(dir.join("data"))
        .args(pg::server_args())
        .arg("--addons-path")
        .arg(&addons)
        .args(["-d", db, "-i", "test_db"]);
    let done = run_bounded(&mut init, Duration::from_secs(120))?;
    if !done.success() {
        let how = if done.timed_out {
            " (killed after 120 s)"
        } else {
            ""
        };
        return Err(format!(
            "creating {db} with test_db failed{how}:\n{}",
            done.stderr
        ));
    }
    Ok(addons)
}

/// The source folder of the addon `name` in the repository at `root` (its manifest,
/// `static/`...): the one place the suite looks for addon sources: `tests/addons/<name>` for
/// a test addon (`test_*`, not shipped), else `addons/<name>`.
pub fn addon_source(root: &Path, name: &str) -> PathBuf {
    if name.starts_with("test_") {
        root.join("tests/addons").join(name)
    } else {
        root.join("addons").join(name)
    }
}

/// Stages an addon in `dest` as it ships: the files of its source folder `src` (manifest,
/// `static/`, `data/`...; not `src/` nor `Cargo.toml`) and the release library `lib`.
pub fn stage_addon(src: &Path, lib: &Path, dest: &Path) -> Result<(), String> {
    if !lib.is_file() {
        let name = src.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        return Err(format!(
            "{} is missing: run `cargo build --release -p {name}` (or `cargo xtask bench`)",
            lib.display()
        ));
    }
    let entries =
        std::fs::read_dir(src).map_err(|e| format!("cannot read {}: {e}", src.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if matches!(
            name.to_str(),
            Some("src" | "Cargo.toml" | "Cargo.lock" | "target")
        ) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            inphms_test_support::fs::copy_tree(&path, &dest.join(&name), &[])?;
        } else {
            copy(&path, &dest.join(&name))?;
        }
    }
    install_library(lib, dest)
}

/// Installs the library `lib` into the addon folder `dest` under its own file name,
/// atomically (a copy to a temporary name, then a rename): a library the host has mapped is
/// never overwritten in place. The copy keeps the build's modification time (as `cp -p`
/// and a package install do): the host waits once for libraries modified within the last
/// 2 s to settle (`modules::loader::Settled`), which a start or a swap right after the
/// staging would otherwise measure.
pub fn install_library(lib: &Path, dest: &Path) -> Result<(), String> {
    let file = lib
        .file_name()
        .ok_or_else(|| format!("{} has no file name", lib.display()))?;
    let tmp = dest.join(format!(".{}.tmp", file.to_string_lossy()));
    copy(lib, &tmp)?;
    let mtime = std::fs::metadata(lib)
        .and_then(|m| m.modified())
        .map_err(|e| format!("cannot read the time of {}: {e}", lib.display()))?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&tmp)
        .and_then(|f| f.set_modified(mtime))
        .map_err(|e| format!("cannot set the time of {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, dest.join(file)).map_err(|e| {
        format!(
            "cannot rename {} into {}: {e}",
            tmp.display(),
            dest.display()
        )
    })
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}

/// Which server, and how it is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `bench-baseline`; `mode` is empty (inline), `--spawn-blocking` or
    /// `--block-in-place`: where each response is built.
    Baseline { mode: &'static str },
    /// `inphms-host`; `load` is the `--load` list (empty: the default, base and web);
    /// `access_log: false` adds `--log-handler werkzeug:WARNING`.
    Host {
        load: &'static str,
        access_log: bool,
    },
    /// nginx with 2 workers answering as `/web/health` ([`crate::nginx`]), with or without
    /// its access log.
    Nginx { access_log: bool },
    /// `inphms-host` on the suite's `test_db` database (`-d`), for `/test_db/count`.
    HostDb,
    /// `inphms-host` as [`Kind::Host`] (access log on) with its sessions in PostgreSQL
    /// (`session_store = postgresql`, the table in the suite's database), serving no
    /// database itself (`--db-filter` matches none): the session store alone differs.
    HostPgSessions { load: &'static str },
    /// `bench-baseline-db` on the same database: the route's query in its read-only
    /// transaction, or in autocommit.
    BaselineDb { autocommit: bool },
}

impl Kind {
    pub const BASELINE: Kind = Kind::Baseline { mode: "" };
    pub const HOST: Kind = Kind::Host {
        load: "",
        access_log: true,
    };

    pub fn is_host(&self) -> bool {
        matches!(
            self,
            Kind::Host { .. } | Kind::HostDb | Kind::HostPgSessions { .. }
        )
    }

    /// A path answered 200 once the server is ready.
    pub fn ready_path(&self) -> &'static str {
        match self {
            Kind::Baseline { .. } | Kind::BaselineDb { .. } => "/",
            Kind::Host { .. } | Kind::HostDb | Kind::HostPgSessions { .. } | Kind::Nginx { .. } => {
                "/web/health"
            }
        }
    }

    /// The command line, for the report.
    pub fn describe(&self) -> String {
        match self {
            Kind::Baseline { mode } => format!("bench-baseline {mode}").trim_end().to_owned(),
            Kind::Host { load, access_log } => {
                let mut s = String::from("inphms-host");
                if !load.is_empty() {
                    s.push_str(&format!(" --load {load}"));
                }
                if !access_log {
                    s.push_str(" --log-handler werkzeug:WARNING");
                }
                s
            }
            Kind::Nginx { access_log } => format!(
                "nginx, {} workers, access log {}",
                nginx::WORKERS,
                if *access_log { "on" } else { "off" }
            ),
            Kind::HostDb => "inphms-host -d DB (test_db)".into(),
            Kind::HostPgSessions { load } => {
                format!("inphms-host --load {load} --session-store postgresql")
            }
            Kind::BaselineDb { autocommit } => {
                if *autocommit {
                    "bench-baseline-db --autocommit".into()
                } else {
                    "bench-baseline-db".into()
                }
            }
        }
    }
}

/// `inphms-host` in the scratch folder `dir`'s environment: the staged addons as its
/// built-in ones, `HOME` in `dir`, and no configuration or database settings inherited from
/// the caller's environment.
pub fn host_command(env: &Env, dir: &Path) -> Command {
    let mut c = Command::new(env.bin_dir.join("inphms-host"));
    let home = dir.join("home");
    let _ = std::fs::create_dir_all(&home);
    c.env("INPHMS_ADDONS_ROOT", &env.addons).env("HOME", home);
    for var in process::CLEARED_ENV.iter().chain(&["CARGO_TARGET_DIR"]) {
        c.env_remove(var);
    }
    c
}

/// The listen queue of the socket handed to a server: the host's own
/// (`http::server::LISTEN_BACKLOG`), whichever server it is.
const LISTEN_BACKLOG: i32 = 1024;

/// A running server, killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    pub pid: u32,
    pub kind: Kind,
    /// Its scratch folder (data dir, log).
    pub dir: PathBuf,
    /// From spawn to the first 200 on its ready path.
    pub startup: Duration,
}

impl Server {
    /// Starts `kind` in the scratch folder `dir` and waits (polling every millisecond, 30 s
    /// at most) for the first 200 on its ready path.
    pub fn start(env: &Env, kind: &Kind, dir: &Path) -> Result<Server, String> {
        Server::start_with(env, kind, dir, &[])
    }

    /// [`Server::start`] with `extra` arguments after the usual ones (the host's and
    /// `bench-baseline`'s only: `--file PATH` for item 16).
    pub fn start_with(
        env: &Env,
        kind: &Kind,
        dir: &Path,
        extra: &[String],
    ) -> Result<Server, String> {
        Server::start_wrapped(env, kind, dir, extra, &[])
    }

    /// [`Server::start_with`] under a `wrapper` command (`valgrind --tool=callgrind`...),
    /// which runs the server's command line, environment included, in its own process id.
    ///
    /// The suite binds the server's socket (127.0.0.1, a port the kernel picks) and hands
    /// it over as systemd's socket activation does (`LISTEN_FDS`, fd 3;
    /// [`socket_activated`]); the host and `bench-baseline` take it instead of binding
    /// `-p PORT`, which names the same port. The socket is the suite's from its bind on, so
    /// no other process can take the port before the server starts.
    pub fn start_wrapped(
        env: &Env,
        kind: &Kind,
        dir: &Path,
        extra: &[String],
        wrapper: &[String],
    ) -> Result<Server, String> {
        let listener = bind_loopback(LISTEN_BACKLOG)?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("the bound address: {e}"))?
            .port();
        let log = dir.join("server.log");
        let log_file =
            File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let mut cmd = match kind {
            Kind::Baseline { mode } => {
                let mut c = Command::new(env.bin_dir.join("bench-baseline"));
                c.arg("-p").arg(port.to_string());
                if !mode.is_empty() {
                    c.arg(mode);
                }
                c.args(extra);
                c
            }
            Kind::Host { load, access_log } => {
                let mut c = host_command(env, dir);
                c.arg("-p")
                    .arg(port.to_string())
                    .arg("-D")
                    .arg(dir.join("data"));
                if !load.is_empty() {
                    c.arg("--load").arg(load);
                }
                if !access_log {
                    c.args(["--log-handler", "werkzeug:WARNING"]);
                }
                c.args(extra);
                c
            }
            Kind::HostPgSessions { load } => {
                let t = env.test_db()?;
                let mut c = host_command(env, dir);
                c.arg("-p")
                    .arg(port.to_string())
                    .arg("-D")
                    .arg(dir.join("data"))
                    .args(pg::server_args())
                    .args(["--load", load, "--session-store", "postgresql"])
                    .args(["--session-db", &t.db.name, "--db-filter", "^$"])
                    .args(extra);
                c
            }
            Kind::Nginx { access_log } => {
                let (bin, _) = env.nginx.as_ref().map_err(Clone::clone)?;
                nginx::command(bin, dir, port, *access_log)?
            }
            Kind::HostDb => {
                let t = env.test_db()?;
                let mut c = host_command(env, dir);
                c.arg("-p")
                    .arg(port.to_string())
                    .arg("-D")
                    .arg(dir.join("data"))
                    .args(pg::server_args())
                    .arg("--addons-path")
                    .arg(&t.addons)
                    .args(["-d", &t.db.name])
                    .args(extra);
                c
            }
            Kind::BaselineDb { autocommit } => {
                let t = env.test_db()?;
                let mut c = Command::new(env.bin_dir.join("bench-baseline-db"));
                c.arg("-p")
                    .arg(port.to_string())
                    .args([
                        "--db",
                        &t.db.name,
                        "--host",
                        pg::HOST,
                        "--pg-port",
                        pg::PORT,
                    ])
                    .arg("--user")
                    .arg(current_user());
                if *autocommit {
                    c.arg("--autocommit");
                }
                c
            }
        };
        if let Some((program, args)) = wrapper.split_first() {
            cmd = process::wrapped(&cmd, program, args);
        }
        cmd.current_dir(dir);
        let mut cmd = socket_activated(&cmd, &listener);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file));
        let started = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
        // The server holds the socket now: once it exits, connections are refused.
        drop(listener);
        let pid = child.id();
        let mut server = Server {
            child,
            port,
            pid,
            kind: kind.clone(),
            dir: dir.to_owned(),
            startup: Duration::ZERO,
        };
        let path = kind.ready_path();
        loop {
            if let Ok(r) = http::send(port, "GET", path, &[], b"", Duration::from_millis(500)) {
                if r.status == 200 {
                    server.startup = started.elapsed();
                    return Ok(server);
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}) before answering:\n{}",
                    kind.describe(),
                    server.log_tail()
                ));
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err(format!(
                    "{} did not answer 200 on {path} within 30 s:\n{}",
                    kind.describe(),
                    server.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Its whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Waits (`timeout` at most) until `pred` holds for its log; the log then, or `None`
    /// on timeout.
    pub fn wait_for_log(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        process::wait_for_log(&self.dir.join("server.log"), timeout, pred)
    }

    /// Sends the signal `sig` (`HUP`, `TERM`...) with `kill`.
    pub fn signal(&self, sig: &str) -> Result<(), String> {
        process::signal(self.pid, sig)
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Stops it (SIGKILL: the suite measures serving, not shutting down).
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        // nginx's workers outlive a killed master: they are listed first and killed after
        // it (a dead master respawns none).
        let children = procfs::family(self.pid);
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in children.into_iter().skip(1) {
            let _ = process::signal(pid, "KILL");
        }
    }
}

/// The operating-system user (`id -un`), as whom the host connects to PostgreSQL.
fn current_user() -> String {
    Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres".into())
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
