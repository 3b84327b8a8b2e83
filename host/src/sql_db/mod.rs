//! PostgreSQL connections (Odoo's `odoo/sql_db.py`): the connection coordinates from the
//! `db_*` options and the `PG*` environment, one pool per database (deadpool-postgres over
//! tokio-postgres) with `db_maxconn` bounding the connections of all pools together, and the
//! [`Cursor`].
//!
//! - Every connection says `application_name = inphms-<pid>` (or `$INPHMS_PGAPPNAME` with
//!   `{pid}` replaced, cut to 63 bytes, as Odoo's `$ODOO_PGAPPNAME`).
//! - When all `db_maxconn` connections are open, a new one first closes idle connections of
//!   other databases (as Odoo's pool does), then waits at most [`POOL_WAIT`]; after that the
//!   caller gets [`DbError::PoolFull`] ("The Connection Pool Is Full"), never a hang.
//! - An unreachable server is [`DbError::Unavailable`] for whoever needs a connection; later
//!   attempts on that database are made with backoff (from 250 ms up to 5 s, jittered), and
//!   fail fast in between: the host keeps serving what needs no database and never dies of it.
//!
//! The files: [`error`] the classified [`DbError`], [`connect`] the coordinates and a
//! connection outside the pools, [`pool`] the pools, [`cursor`] the [`Cursor`], [`value`]
//! the SQL values. [`env`] exposes cursors to addons through the host API (handles, the
//! invocation's cursor, the blocking bridge onto the runtime) and runs a handler in a
//! transaction with Odoo's `retrying`. [`dblist`] lists the databases and chooses a
//! request's; [`notify`] sends what a commit queued (the cron wake-up, addons' NOTIFYs);
//! [`listen`] is the host's LISTEN connection for addons (the bus).
//!
//! [`Databases`] is this layer's state (the pools, the cached list of databases, the
//! cursor handles lent to addons, the LISTEN connection): built once by the composition root (`service::server`)
//! and handed down, never a process-wide static.

pub mod connect;
pub mod cursor;
pub mod dblist;
pub mod env;
pub mod env_async;
pub mod error;
pub mod listen;
pub mod notify;
pub mod pool;
pub mod value;

pub use connect::{application_name, connect_unpooled, ConnInfo, CONNECT_TIMEOUT};
pub use cursor::Cursor;
pub use error::{is_unavailable_sqlstate, DbError, RETRY_SQLSTATES};
pub use pool::{PgConn, PgManager, Pool, PooledConn, Pools, POOL_WAIT};

use crate::config::Config;
use std::sync::Arc;

/// The PostgreSQL side of one host: its pools (`db_maxconn` in all, cron wake-ups to
/// `cron_db`), the list of databases it read last, and the cursor handles lent to addons.
/// Built once by the composition root and shared by `Arc`.
#[derive(Debug)]
pub struct Databases {
    pools: Arc<Pools>,
    list: dblist::ListCache,
    cursors: env::Cursors,
    listeners: listen::Listeners,
}

impl Databases {
    /// From the `db_*` options; addons' queries run on `runtime` (else on the runtime of
    /// the thread asking, if any).
    pub fn new(config: &Config, runtime: Option<tokio::runtime::Handle>) -> Arc<Databases> {
        Self::with_pools(Pools::from_config(config), runtime)
    }

    /// Around pools built already (tests: other coordinates).
    pub fn with_pools(
        pools: Arc<Pools>,
        runtime: Option<tokio::runtime::Handle>,
    ) -> Arc<Databases> {
        let listeners =
            listen::Listeners::new(pools.info().clone(), pools.cron_db(), runtime.clone());
        Arc::new(Databases {
            pools,
            list: dblist::ListCache::default(),
            cursors: env::Cursors::new(runtime),
            listeners,
        })
    }

    /// The pools.
    pub fn pools(&self) -> &Arc<Pools> {
        &self.pools
    }

    /// The cached list of databases (see [`dblist`]).
    pub fn list(&self) -> &dblist::ListCache {
        &self.list
    }

    /// The cursor handles lent to addons (see [`env`]).
    pub fn cursors(&self) -> &env::Cursors {
        &self.cursors
    }

    /// The LISTEN connection addons wait on (see [`listen`]).
    pub fn listeners(&self) -> &listen::Listeners {
        &self.listeners
    }

    /// A cursor on `db` (Odoo's `db_connect(db).cursor()`); it connects on its first
    /// statement.
    pub fn cursor(&self, db: &str, readonly: bool) -> Cursor {
        Cursor::new(Arc::clone(&self.pools), db, readonly)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn only_shutdown_startup_and_connection_failures_are_unavailable() {
        for code in [
            "57P01", "57P02", "57P03", "08000", "08003", "08006", "08P01",
        ] {
            assert!(is_unavailable_sqlstate(code), "{code}");
        }
        // database_dropped, and errors that waiting does not cure.
        for code in [
            "57P04", "57014", "3D000", "28P01", "40001", "23505", "53300",
        ] {
            assert!(!is_unavailable_sqlstate(code), "{code}");
        }
    }

    /// Coordinates of the PostgreSQL the tests use: `127.0.0.1:5432` as the current user,
    /// unless `$PGHOST`/`$PGPORT` say otherwise.
    pub(crate) fn test_info() -> ConnInfo {
        let mut config = Config::defaults();
        config.db_host = Some(std::env::var("PGHOST").unwrap_or_else(|_| "127.0.0.1".into()));
        config.db_port = std::env::var("PGPORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .or(Some(5432));
        ConnInfo::from_config(&config)
    }

    /// A fresh database for one test, dropped by the returned guard.
    pub(crate) struct TestDb {
        pub name: String,
        info: ConnInfo,
    }

    impl TestDb {
        pub(crate) async fn create(tag: &str) -> TestDb {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let info = test_info();
            let name = format!(
                "inphms_test_{}_{tag}_{}",
                std::process::id(),
                N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            );
            let (client, conn) = connect_unpooled(&info, "postgres")
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is not reachable at {}:{}: {e}",
                        info.host, info.port
                    )
                });
            tokio::spawn(conn);
            client
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                .await
                .expect("drop a leftover test database");
            client
                .batch_execute(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create the test database");
            TestDb { name, info }
        }
    }

    impl Drop for TestDb {
        fn drop(&mut self) {
            let info = self.info.clone();
            let name = self.name.clone();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok((client, conn)) = connect_unpooled(&info, "postgres").await {
                        tokio::spawn(conn);
                        let _ = client
                            .batch_execute(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                    }
                })
            })
            .join();
        }
    }

    #[test]
    fn application_name_and_errors() {
        assert_eq!(application_name(), format!("inphms-{}", std::process::id()));
        let e = DbError::Sql {
            sqlstate: "40001".into(),
            message: "could not serialize access".into(),
            detail: None,
        };
        assert!(e.is_retryable());
        assert_eq!(
            DbError::PoolFull { db: "x".into() }.to_string(),
            "The Connection Pool Is Full"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pool_exhaustion_is_a_clear_error_not_a_hang() {
        let db = TestDb::create("pool").await;
        let pools = Pools::new(test_info(), 2);
        let a = pools.get(&db.name).await.unwrap();
        let b = pools.get(&db.name).await.unwrap();
        assert_eq!(pools.open_connections(), 2);
        let started = Instant::now();
        let e = pools.get(&db.name).await.err().unwrap();
        assert_eq!(
            e,
            DbError::PoolFull {
                db: db.name.clone()
            }
        );
        assert!(started.elapsed() < POOL_WAIT + Duration::from_secs(2));
        drop((a, b));
        // Idle connections of one database make room for another.
        let c = pools.get("postgres").await.unwrap();
        drop(c);
        pools.close_db(&db.name);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unreachable_server_is_an_error_with_backoff() {
        let mut info = test_info();
        info.port = 1; // nothing listens there
        let pools = Pools::new(info, 4);
        let e = pools.get("postgres").await.err().unwrap();
        assert!(e.is_unavailable(), "{e}");
        assert!(e.to_string().contains("PostgreSQL is unreachable"), "{e}");
        let e = pools.get("postgres").await.err().unwrap();
        assert!(e.to_string().contains("next attempt in"), "{e}");
    }
}
