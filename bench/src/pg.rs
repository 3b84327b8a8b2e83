//! PostgreSQL for item 9 (cron): the server at `127.0.0.1:5432` (trust auth), reached
//! through `psql`, and a database of the suite's own, dropped when its guard drops.

use std::process::Command;

/// Where the suite's PostgreSQL is.
pub const HOST: &str = "127.0.0.1";
pub const PORT: &str = "5432";

/// The host's options that point it at that server.
pub fn server_args() -> Vec<String> {
    vec![format!("--db_host={HOST}"), format!("--db_port={PORT}")]
}

/// Runs `sql` with `psql` on `db` (unaligned, tuples only, stop at the first error); its
/// stdout, trimmed.
pub fn psql(db: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args([
            "-h",
            HOST,
            "-p",
            PORT,
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
        Err(format!(
            "psql on {db} failed: {}\nSQL: {sql}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
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
