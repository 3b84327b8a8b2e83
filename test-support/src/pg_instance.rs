//! A private PostgreSQL server for one test: `initdb` into a temporary folder, trust
//! authentication, listening on `127.0.0.1` only on a port of its own, its unix socket in
//! that folder. It is the only PostgreSQL a test may stop or restart ([`PgInstance::stop_fast`],
//! [`PgInstance::start`]); the shared one at `127.0.0.1:5432` is never touched. Dropped, it
//! is stopped and its folder removed.
//!
//! PostgreSQL refuses to run as root, and the tests run as root: the binaries (found under
//! `/usr/lib/postgresql/<version>/bin`) run as the `postgres` user (`runuser`) on a folder it
//! owns. The superuser is named after the user running the tests, so that `psql` and
//! `inphms-host` connect as themselves, as they do to the shared server.
//!
//! The port is chosen below the kernel's ephemeral range (where `bind(0)` of other tests
//! never lands, so it stays ours across a restart), free when checked, and a start that
//! fails because the port was taken meanwhile is retried on another port.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Ports are picked in this range, below Linux's default ephemeral range (32768-60999).
const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// How many ports a start tries before giving up.
const PORT_TRIES: usize = 8;

/// A private PostgreSQL server (see the [module docs](self)).
pub struct PgInstance {
    /// Owned by `postgres`; holds `data/`, the socket and `server.log`.
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    user: String,
}

impl PgInstance {
    /// Creates a cluster (`initdb`) and starts it on a free port. Panics with the tools'
    /// output when that fails.
    pub fn start_new() -> PgInstance {
        let bin = pg_bin();
        let dir = tempfile::Builder::new()
            .prefix("inphms-pg-")
            .tempdir()
            .expect("create the PostgreSQL folder");
        let (uid, gid) = postgres_ids();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
            .expect("give the PostgreSQL folder to the postgres user");
        let user = current_user();
        let data = dir.path().join("data");
        let out = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "-U"])
            .arg(&user)
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb failed: {}", show(&out));
        let mut instance = PgInstance {
            dir,
            bin,
            port: 0,
            user,
        };
        for attempt in 1..=PORT_TRIES {
            instance.port = pick_port();
            match instance.try_start() {
                Ok(()) => return instance,
                Err(e) if e.contains("Address already in use") && attempt < PORT_TRIES => continue,
                Err(e) => panic!("cannot start the private PostgreSQL: {e}"),
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The role the tests connect as (its superuser).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Its folder (data, socket, `server.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server options that point `inphms-host` at this server.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--db_host=127.0.0.1".into(),
            format!("--db_port={}", self.port),
        ]
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("server.log")).unwrap_or_default()
    }

    /// `pg_ctl start` on its port, waiting until it accepts connections (30 s at most).
    /// Panics with the server's log when it fails.
    pub fn start(&self) {
        if let Err(e) = self.try_start() {
            panic!("cannot start the private PostgreSQL again: {e}");
        }
    }

    fn try_start(&self) -> Result<(), String> {
        let sock = self.dir().to_string_lossy().into_owned();
        let out = self
            .pg_ctl()
            .args(["-w", "-t", "30", "-l"])
            .arg(self.dir().join("server.log"))
            .arg("-o")
            .arg(format!(
                "-p {} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off",
                self.port
            ))
            .arg("start")
            .output()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}\n--- server.log ---\n{}",
                show(&out),
                self.log()
            ))
        }
    }

    /// `pg_ctl stop -m fast`: every session is ended (their transactions rolled back) and
    /// the server stops; waits for it (30 s at most). Panics when it fails.
    pub fn stop_fast(&self) {
        let out = self
            .pg_ctl()
            .args(["-w", "-t", "30", "-m", "fast", "stop"])
            .output()
            .expect("run pg_ctl stop");
        assert!(out.status.success(), "pg_ctl stop failed: {}", show(&out));
    }

    fn pg_ctl(&self) -> Command {
        let mut c = as_postgres(&self.bin.join("pg_ctl"));
        c.arg("-D").arg(self.dir().join("data"));
        c
    }

    /// Runs `sql` with `psql` on `db` (unaligned, tuples only); stdout, trimmed. Panics with
    /// psql's error when it fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql)
            .unwrap_or_else(|e| panic!("psql on {db} (port {}) failed: {e}\nSQL: {sql}", self.port))
    }

    /// [`PgInstance::psql`], returning the error instead of panicking.
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        crate::pg::psql_at(
            "127.0.0.1",
            &self.port.to_string(),
            Some(&self.user),
            db,
            sql,
        )
    }

    /// Waits until the server answers a query (at most `timeout`).
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        crate::process::wait_until(timeout, || self.try_psql("postgres", "SELECT 1").is_ok())
    }
}

impl Drop for PgInstance {
    fn drop(&mut self) {
        // Fast first (sessions end cleanly), immediate if that is slow; the folder goes
        // with the TempDir.
        let stopped = self
            .pg_ctl()
            .args(["-w", "-t", "10", "-m", "fast", "stop"])
            .output()
            .map(|o| o.status.success() || !self.dir().join("data/postmaster.pid").exists());
        if !matches!(stopped, Ok(true)) {
            let _ = self
                .pg_ctl()
                .args(["-w", "-t", "10", "-m", "immediate", "stop"])
                .output();
        }
    }
}

/// `/usr/lib/postgresql/<version>/bin` of the newest version installed.
fn pg_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's binaries under /usr/lib/postgresql")
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .expect("initdb under /usr/lib/postgresql/<version>/bin")
}

/// `program` run as the `postgres` user when the tests run as root, else as ourselves.
fn as_postgres(program: &Path) -> Command {
    if crate::process::is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// The uid and gid of `postgres` (ours when not root).
fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let mut c = Command::new("id");
        c.arg(flag);
        if crate::process::is_root() {
            c.arg("postgres");
        }
        let out = c.output().expect("run id");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("id {flag}: {}", show(&out)))
    };
    (id("-u"), id("-g"))
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A port of [`PORTS`] that nothing listens on now.
fn pick_port() -> u16 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().rotate_left(16);
    let span = (PORTS.end - PORTS.start) as u32;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut n = seed;
    loop {
        // A small LCG over the range: different tests and processes start apart.
        n = n.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let port = PORTS.start + (n % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
        assert!(Instant::now() < deadline, "no free port in {PORTS:?}");
    }
}

fn show(out: &Output) -> String {
    format!(
        "{}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
