//! What the tests of requests waiting for PostgreSQL share (`async_db_checks.rs`,
//! `async_login_token.rs`): a table held locked by another connection (psql), the backends
//! of a database waiting for a lock, and the host's thread count, which a request waiting
//! on the blocking cursor (`block_in_place`) grows by one and an awaited one does not.

use inphms_tests::bodies::status_kib;
use inphms_tests::pg::{self, TestDb};
use inphms_tests::wait_until;
use std::time::Duration;

/// The threads of the process `pid`.
pub fn threads(pid: u32) -> u64 {
    status_kib(pid, "Threads").expect("Threads in /proc/PID/status")
}

/// Backends of `db` waiting for a lock, whose statement is `LIKE` `like` (`%`: any).
pub fn waiting_for_locks(db: &TestDb, like: &str) -> usize {
    pg::psql(
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND wait_event_type = 'Lock' AND query LIKE '{like}'",
            db.name
        ),
    )
    .parse()
    .expect("a count")
}

/// The locker's marker in its statement, to find (and end) its backend (of its database:
/// tests run at once, each on its own).
const LOCKER: &str = "inphms_tests_lock_wait_locker";

/// Another connection holding `table` of `db` locked (ACCESS EXCLUSIVE) until
/// [`Locker::release`]: every statement reading it waits.
pub struct Locker {
    db: String,
    held: std::thread::JoinHandle<Result<String, String>>,
}

impl Locker {
    pub fn hold(db: &str, table: &str) -> Locker {
        let (name, table) = (db.to_owned(), table.to_owned());
        let held = std::thread::spawn(move || {
            pg::try_psql(
                &name,
                &format!(
                    "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120), '{LOCKER}'; COMMIT;"
                ),
            )
        });
        let locker = Locker {
            db: db.to_owned(),
            held,
        };
        assert!(
            wait_until(Duration::from_secs(30), || {
                pg::psql(
                    "postgres",
                    &format!(
                        "SELECT count(*) FROM pg_stat_activity WHERE {} AND wait_event = 'PgSleep'",
                        locker.backend()
                    ),
                ) == "1"
            }),
            "the locker never held the lock"
        );
        locker
    }

    /// The condition on `pg_stat_activity` that finds the locker's backend.
    fn backend(&self) -> String {
        format!(
            "datname = '{}' AND query LIKE '%{LOCKER}''%' AND pid <> pg_backend_pid()",
            self.db
        )
    }

    pub fn release(self) {
        pg::psql(
            "postgres",
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {}",
                self.backend()
            ),
        );
        let _ = self.held.join();
    }
}

/// The session token's statement as `pg_stat_activity` shows it (it reads the database
/// secret, which no other statement of these tests reads).
#[allow(dead_code)] // Not every test binary including this module uses it.
pub const TOKEN_QUERY: &str = "%database.secret%";

/// A server on a new database with `test_http` loaded.
#[allow(dead_code)] // Not every test binary including this module uses it.
pub fn test_http_site(tag: &str) -> crate::support::Site {
    let tests = inphms_tests::test_addons_dir();
    crate::support::Site::start_default(
        tag,
        &[
            "--load",
            "base,web,test_http",
            "--addons-path",
            tests.to_str().expect("UTF-8"),
        ],
    )
}
