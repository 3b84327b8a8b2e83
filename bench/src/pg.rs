//! PostgreSQL for item 9 (cron): the server at `127.0.0.1:5432` (trust auth), reached
//! through `psql`, and a database of the suite's own, dropped when its guard drops (the
//! helpers of `inphms-test-support`).

pub use inphms_test_support::pg::{server_args, TestDb as Database, HOST, PORT};

/// The database `inphms_bench_<pid>_<tag>` of this suite process (not created: the host's
/// `-d ... -i` creates it; an earlier one of that name is dropped), dropped with its
/// connections when the guard drops; or why PostgreSQL cannot be reached.
pub fn database(tag: &str) -> Result<Database, String> {
    Database::try_named(database_name(tag))
}

/// The name [`database`] gives the database of `tag` (a load naming it in its body, as
/// item 12's `execute_kw` does).
pub fn database_name(tag: &str) -> String {
    format!("inphms_bench_{}_{tag}", std::process::id())
}
