//! PostgreSQL for item 9 (cron): the server at `127.0.0.1:5432` (trust auth), reached
//! through `psql`, and a database of the suite's own, dropped when its guard drops.

pub use inphms_test_support::pg::{server_args, HOST, PORT};

/// Runs `sql` with `psql` on `db` (the shared client of `inphms-test-support`); its stdout,
/// trimmed, or psql's error with the statement.
pub fn psql(db: &str, sql: &str) -> Result<String, String> {
    inphms_test_support::pg::try_psql(db, sql)
        .map_err(|e| format!("psql on {db} failed: {e}\nSQL: {sql}"))
}

/// A database name of this suite process (not created: the host's `-d ... -i` creates it),
/// dropped with its connections on drop.
pub struct Database {
    pub name: String,
}

impl Database {
    /// `inphms_bench_<pid>_<tag>`; an earlier database of that name is dropped.
    pub fn new(tag: &str) -> Result<Database, String> {
        psql("postgres", "SELECT 1")
            .map_err(|e| format!("PostgreSQL is not reachable at {HOST}:{PORT}: {e}"))?;
        let name = format!("inphms_bench_{}_{tag}", std::process::id());
        let db = Database { name };
        db.drop_it();
        Ok(db)
    }

    /// Runs `sql` on this database.
    pub fn sql(&self, sql: &str) -> Result<String, String> {
        psql(&self.name, sql)
    }

    fn drop_it(&self) {
        let _ = psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
        );
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        self.drop_it();
    }
}
