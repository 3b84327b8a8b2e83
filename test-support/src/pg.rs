//! PostgreSQL for the integration tests and the benchmarks: the server at `127.0.0.1:5432`
//! (trust auth), used as the current user through `psql`. Each test makes its own
//! databases, named `inphms_test_<pid>_<n>` (the benchmarks name theirs,
//! [`TestDb::try_named`]), dropped when their [`TestDb`] guard drops. Without PostgreSQL
//! the tests fail with "PostgreSQL is not reachable at 127.0.0.1:5432: ...", never skip.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The host the tests connect to.
pub const HOST: &str = "127.0.0.1";
/// The port.
pub const PORT: &str = "5432";

/// The server options that point `inphms-host` at the test PostgreSQL.
pub fn server_args() -> Vec<String> {
    vec![format!("--db_host={HOST}"), format!("--db_port={PORT}")]
}

/// Runs `sql` with `psql` on `db` (unaligned, tuples only); stdout, trimmed. Panics with
/// psql's error when it fails.
pub fn psql(db: &str, sql: &str) -> String {
    try_psql(db, sql).unwrap_or_else(|e| panic!("psql on {db} failed: {e}\nSQL: {sql}"))
}

/// [`psql`], returning the error instead of panicking.
pub fn try_psql(db: &str, sql: &str) -> Result<String, String> {
    psql_at(HOST, PORT, None, db, sql)
}

/// Runs `sql` with `psql` on `db` of the server at `host`:`port`, as `user` (the current
/// user when `None`), unaligned and tuples only, stopping at the first error: stdout
/// trimmed, or psql's error. The `PG*` variables that would pick another role, database or
/// server are ignored.
pub fn psql_at(
    host: &str,
    port: &str,
    user: Option<&str>,
    db: &str,
    sql: &str,
) -> Result<String, String> {
    let mut cmd = Command::new("psql");
    cmd.args(["-h", host, "-p", port]);
    if let Some(user) = user {
        cmd.args(["-U", user]);
    }
    let out = cmd
        .args([
            "-d",
            db,
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .env_remove("PGUSER")
        .env_remove("PGDATABASE")
        .env_remove("PGHOST")
        .env_remove("PGPORT")
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// Panics with a clear message when PostgreSQL cannot be reached.
pub fn require() {
    if let Err(e) = reachable() {
        panic!("{e}");
    }
}

/// Whether PostgreSQL can be reached: the error says where it was looked for and why not.
pub fn reachable() -> Result<(), String> {
    try_psql("postgres", "SELECT 1")
        .map(drop)
        .map_err(|e| format!("PostgreSQL is not reachable at {HOST}:{PORT}: {e}"))
}

/// A database name unique to this test process.
pub fn unique_name(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "inphms_test_{}_{}_{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A database of one test, dropped (with its connections) on drop. Not created: the
/// server's `-d` creates it, or [`TestDb::create`].
pub struct TestDb {
    /// Its name.
    pub name: String,
}

impl TestDb {
    /// A new name (the database does not exist yet).
    pub fn new(tag: &str) -> TestDb {
        TestDb::try_named(unique_name(tag)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The guard of the database `name` (not created; an earlier one of that name is
    /// dropped), or why PostgreSQL cannot be reached.
    pub fn try_named(name: impl Into<String>) -> Result<TestDb, String> {
        reachable()?;
        let db = TestDb { name: name.into() };
        let _ = try_psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", db.name),
        );
        Ok(db)
    }

    /// A new, empty database.
    pub fn create(tag: &str) -> TestDb {
        let db = TestDb::new(tag);
        psql("postgres", &format!("CREATE DATABASE \"{}\"", db.name));
        db
    }

    /// [`psql`] on this database.
    pub fn sql(&self, sql: &str) -> String {
        psql(&self.name, sql)
    }

    /// [`try_psql`] on this database, the error naming the database and the statement.
    pub fn try_sql(&self, sql: &str) -> Result<String, String> {
        try_psql(&self.name, sql)
            .map_err(|e| format!("psql on {} failed: {e}\nSQL: {sql}", self.name))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = try_psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
        );
    }
}
