//! Starting and stopping the servers under test, each in its own scratch folder.

use crate::client;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The addons the host can load in the suite; their release libraries are staged.
pub const STAGED_ADDONS: [&str; 3] = ["base", "web", "test_http"];

/// Where the binaries and the staged addons are.
#[derive(Debug, Clone)]
pub struct Env {
    /// `target/release` (holds `inphms-host`, `bench-baseline` and the addon libraries).
    pub bin_dir: PathBuf,
    /// The repository root (holds `addons/`).
    pub root: PathBuf,
    /// The suite's scratch folder (removed at the end).
    pub work: PathBuf,
    /// The staged addons folder (`INPHMS_ADDONS_ROOT` of the host).
    pub addons: PathBuf,
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
            let src = root.join("addons").join(name);
            let dest = addons.join(name);
            copy_tree(&src.join("static"), &dest.join("static"))?;
            copy(
                &src.join("__manifest__.toml"),
                &dest.join("__manifest__.toml"),
            )?;
            let lib = format!("lib{name}.so");
            let built = bin_dir.join(&lib);
            if !built.is_file() {
                return Err(format!(
                    "{} is missing: run `cargo build --release -p {name}` (or `cargo xtask bench`)",
                    built.display()
                ));
            }
            copy(&built, &dest.join(&lib))?;
        }
        Ok(Env {
            bin_dir,
            root,
            work,
            addons,
        })
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
        let _ = std::fs::remove_dir_all(&self.work);
    }
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

fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    let Ok(entries) = std::fs::read_dir(from) else {
        return Ok(());
    };
    std::fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(entry.file_name()))?;
        } else {
            copy(&path, &to.join(entry.file_name()))?;
        }
    }
    Ok(())
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
}

impl Kind {
    pub const BASELINE: Kind = Kind::Baseline { mode: "" };
    pub const HOST: Kind = Kind::Host {
        load: "",
        access_log: true,
    };

    pub fn is_host(&self) -> bool {
        matches!(self, Kind::Host { .. })
    }

    /// A path answered 200 once the server is ready.
    pub fn ready_path(&self) -> &'static str {
        match self {
            Kind::Baseline { .. } => "/",
            Kind::Host { .. } => "/web/health",
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
        }
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

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
        let port = free_port()?;
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
                c
            }
            Kind::Host { load, access_log } => {
                let mut c = Command::new(env.bin_dir.join("inphms-host"));
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
                let home = dir.join("home");
                let _ = std::fs::create_dir_all(&home);
                c.env("INPHMS_ADDONS_ROOT", &env.addons).env("HOME", home);
                for var in [
                    "INPHMS_RC",
                    "CARGO_TARGET_DIR",
                    "XDG_DATA_HOME",
                    "PGHOST",
                    "PGPORT",
                    "PGUSER",
                    "PGPASSWORD",
                    "PGDATABASE",
                ] {
                    c.env_remove(var);
                }
                c
            }
        };
        cmd.current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file));
        let started = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
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
            if let Ok(r) = client::request(port, "GET", path, &[], None, Duration::from_millis(500))
            {
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
