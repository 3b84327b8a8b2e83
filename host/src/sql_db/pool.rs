//! The connection pools (Odoo's `ConnectionPool`): one deadpool-postgres pool per database,
//! all sharing one budget of `db_maxconn` connections ([`Pools`]); a full budget closes
//! idle connections of other databases, then waits at most [`POOL_WAIT`]; an unreachable
//! server puts its database in a reconnection backoff (250 ms up to 5 s, jittered).

use super::{ConnInfo, DbError, CONNECT_TIMEOUT};
use crate::config::Config;
use deadpool::managed::{self, Metrics, PoolError, RecycleError, RecycleResult, TimeoutType};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

const TARGET: &str = "inphms.sql_db";

/// How long a caller waits for a connection when `db_maxconn` are open.
pub const POOL_WAIT: Duration = Duration::from_secs(5);

/// A pooled connection: deadpool-postgres's client, holding one of the `db_maxconn` permits
/// for as long as it is open.
///
/// It remembers the session's `statement_timeout` that a [`Cursor`](crate::sql_db::Cursor)
/// set on it (a session-level setting, kept across transactions, rollbacks included), so
/// that a cursor sends `SET statement_timeout` only when its limit differs from the one
/// the connection has, instead of a `SET LOCAL` in every transaction. The other users of
/// pooled connections (registry signaling, the database list, the server status, `NOTIFY`)
/// run short statements that the last cursor's limit bounds too.
pub struct PgConn {
    client: deadpool_postgres::ClientWrapper,
    _permit: OwnedSemaphorePermit,
    /// The `statement_timeout` (milliseconds, 0: none) in effect on this connection, when
    /// a cursor set it; `None` until then (the server's default).
    statement_timeout_ms: Option<u128>,
    /// Addons' statements prepared on this connection, by their text, the most recently
    /// used kept ([`KEPT_STATEMENTS`]; one dropped is closed on the server).
    statements: std::sync::Mutex<lru::LruCache<Box<str>, tokio_postgres::Statement>>,
}

/// How many of addons' statements a connection keeps prepared: a statement run again on
/// it is then bound and executed at once, without PostgreSQL parsing and planning it again
/// (one round trip, sent with the transaction's `BEGIN`).
pub const KEPT_STATEMENTS: usize = 64;

/// The longest statement kept prepared (bytes of its text): a longer one (a long `IN`
/// list built from a request's values) is prepared for its run alone, so that what a
/// connection keeps stays within 64 × 8 KiB of text.
pub const KEPT_STATEMENT_LEN: usize = 8 * 1024;

impl std::ops::Deref for PgConn {
    type Target = tokio_postgres::Client;
    fn deref(&self) -> &tokio_postgres::Client {
        &self.client
    }
}

impl PgConn {
    /// The `statement_timeout` a cursor set on this connection, if any (milliseconds, 0:
    /// none).
    pub fn statement_timeout_ms(&self) -> Option<u128> {
        self.statement_timeout_ms
    }

    /// `sql` prepared on this connection: kept from an earlier run, or prepared now (one
    /// round trip) and kept. A kept statement whose result changed shape, or that is gone,
    /// fails with [`DbError::is_stale_statement`]: then [`PgConn::forget_statements`].
    pub async fn prepare_kept(
        &self,
        sql: &str,
    ) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
        if let Some(stmt) = self.kept().get(sql) {
            return Ok(stmt.clone());
        }
        let stmt = self.client.prepare(sql).await?;
        if sql.len() <= KEPT_STATEMENT_LEN {
            self.kept().put(sql.into(), stmt.clone());
        }
        Ok(stmt)
    }

    /// Drops the statements kept on this connection (closed on the server as they go).
    pub fn forget_statements(&self) {
        self.kept().clear();
    }

    fn kept(
        &self,
    ) -> std::sync::MutexGuard<'_, lru::LruCache<Box<str>, tokio_postgres::Statement>> {
        self.statements.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets the connection's `statement_timeout` (a `SET` of it about to be sent).
    pub fn forget_statement_timeout(&mut self) {
        self.statement_timeout_ms = None;
    }

    /// Records that `SET statement_timeout = ms` ran on this connection (outside a
    /// transaction, so that it lasts).
    pub fn set_statement_timeout_ms(&mut self, ms: u128) {
        self.statement_timeout_ms = Some(ms);
    }

    /// `sql` prepared once on this connection and kept (deadpool-postgres's statement
    /// cache): see [`Cursor::execute_cached`](crate::sql_db::Cursor::execute_cached).
    pub async fn prepare_cached(
        &self,
        sql: &str,
    ) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
        self.client.prepare_cached(sql).await
    }
}

/// The pool's manager: deadpool-postgres's, behind the shared connection budget.
pub struct PgManager {
    inner: deadpool_postgres::Manager,
    db: String,
    pools: std::sync::Weak<Pools>,
}

impl managed::Manager for PgManager {
    type Type = PgConn;
    type Error = DbError;

    async fn create(&self) -> Result<PgConn, DbError> {
        let pools = self
            .pools
            .upgrade()
            .ok_or_else(|| DbError::Other("the connection pools are closed".into()))?;
        let permit = pools.reserve(&self.db).await?;
        let client = managed::Manager::create(&self.inner)
            .await
            .map_err(|e| DbError::from_connect(&e))?;
        Ok(PgConn {
            client,
            _permit: permit,
            statement_timeout_ms: None,
            statements: std::sync::Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(KEPT_STATEMENTS).expect("not zero"),
            )),
        })
    }

    async fn recycle(&self, conn: &mut PgConn, metrics: &Metrics) -> RecycleResult<DbError> {
        managed::Manager::recycle(&self.inner, &mut conn.client, metrics)
            .await
            .map_err(|e| match e {
                RecycleError::Message(m) => RecycleError::Message(m),
                RecycleError::Backend(e) => RecycleError::Backend(DbError::from_pg(&e)),
            })
    }

    fn detach(&self, conn: &mut PgConn) {
        managed::Manager::detach(&self.inner, &mut conn.client)
    }
}

/// A pool of one database.
pub type Pool = managed::Pool<PgManager>;

/// A connection taken from a [`Pool`]; back in the pool when dropped.
pub type PooledConn = managed::Object<PgManager>;

/// Reconnection backoff of one database.
#[derive(Debug, Default)]
struct Health {
    failures: u32,
    retry_at: Option<Instant>,
    last_error: String,
}

struct DbPool {
    pool: Pool,
    health: Mutex<Health>,
}

/// Every pool of the process, sharing one budget of `db_maxconn` connections.
pub struct Pools {
    info: ConnInfo,
    maxconn: usize,
    budget: Arc<Semaphore>,
    pools: Mutex<HashMap<String, Arc<DbPool>, foldhash::fast::RandomState>>,
    me: std::sync::Weak<Pools>,
    cron_db: String,
    /// Connections asked for when none was free (the metrics' `db_pool_waits`).
    waits: AtomicU64,
    /// Of those, the ones given up at [`POOL_WAIT`] ("The Connection Pool Is Full").
    full: AtomicU64,
}

/// What the pools hold now, for the metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PoolStats {
    /// Per database: connections in use, connections idle.
    pub databases: Vec<(String, usize, usize)>,
    /// Connections asked for when none was free, since start.
    pub waits: u64,
    /// Of those, the ones that failed after [`POOL_WAIT`].
    pub full: u64,
}

impl fmt::Debug for Pools {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pools")
            .field("info", &self.info.describe())
            .field("maxconn", &self.maxconn)
            .finish()
    }
}

impl Pools {
    /// Pools for `info`, with at most `maxconn` connections open at once.
    pub fn new(info: ConnInfo, maxconn: usize) -> Arc<Pools> {
        Self::with_cron_db(info, maxconn, "")
    }

    /// Pools from the `db_*` options, whose cron wake-ups go to `cron_db`.
    pub fn from_config(config: &Config) -> Arc<Pools> {
        let info = ConnInfo::from_config(config);
        tracing::debug!(target: TARGET, "connection pools for {} ({} connections at most)", info.describe(), config.db_maxconn);
        Self::with_cron_db(info, config.db_maxconn as usize, &config.cron_db)
    }

    /// Pools for `info`, with at most `maxconn` connections open at once, whose cron
    /// wake-ups go to `cron_db` (`postgres` when empty).
    pub fn with_cron_db(info: ConnInfo, maxconn: usize, cron_db: &str) -> Arc<Pools> {
        let maxconn = maxconn.max(1);
        let cron_db = if cron_db.is_empty() {
            "postgres"
        } else {
            cron_db
        };
        Arc::new_cyclic(|me| Pools {
            info,
            maxconn,
            budget: Arc::new(Semaphore::new(maxconn)),
            pools: Mutex::new(HashMap::default()),
            me: me.clone(),
            cron_db: cron_db.to_owned(),
            waits: AtomicU64::new(0),
            full: AtomicU64::new(0),
        })
    }

    /// The database the cron workers LISTEN on (`cron_db`, else `postgres`).
    pub fn cron_db(&self) -> &str {
        &self.cron_db
    }

    /// The connection coordinates.
    pub fn info(&self) -> &ConnInfo {
        &self.info
    }

    /// Connections open now (idle or in use), over all databases.
    pub fn open_connections(&self) -> usize {
        self.maxconn - self.budget.available_permits()
    }

    /// The connections in use and idle per database, and the waits so far.
    pub fn stats(&self) -> PoolStats {
        let mut databases: Vec<(String, usize, usize)> = self
            .pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(db, p)| {
                let st = p.pool.status();
                (
                    db.clone(),
                    st.size.saturating_sub(st.available),
                    st.available,
                )
            })
            .collect();
        databases.sort();
        PoolStats {
            databases,
            waits: self.waits.load(Ordering::Relaxed),
            full: self.full.load(Ordering::Relaxed),
        }
    }

    fn pool(&self, db: &str) -> Arc<DbPool> {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pools.get(db) {
            return Arc::clone(p);
        }
        let manager = PgManager {
            inner: deadpool_postgres::Manager::from_config(
                self.info.pg_config(db),
                tokio_postgres::NoTls,
                deadpool_postgres::ManagerConfig {
                    recycling_method: deadpool_postgres::RecyclingMethod::Fast,
                },
            ),
            db: db.to_owned(),
            pools: self.me.clone(),
        };
        let pool = Pool::builder(manager)
            .max_size(self.maxconn)
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT + CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .expect("a runtime is set, so timeouts are allowed");
        let p = Arc::new(DbPool {
            pool,
            health: Mutex::new(Health::default()),
        });
        pools.insert(db.to_owned(), Arc::clone(&p));
        p
    }

    /// Takes one of the `db_maxconn` permits for a new connection to `db`: at once when one
    /// is free; else idle connections of other databases are closed, and the wait is bounded
    /// by [`POOL_WAIT`].
    async fn reserve(&self, db: &str) -> Result<OwnedSemaphorePermit, DbError> {
        if let Ok(p) = Arc::clone(&self.budget).try_acquire_owned() {
            return Ok(p);
        }
        let others: Vec<Arc<DbPool>> = {
            let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
            pools
                .iter()
                .filter(|(name, _)| name.as_str() != db)
                .map(|(_, p)| Arc::clone(p))
                .collect()
        };
        for p in others {
            let closed = p.pool.retain(|_, _| false).removed.len();
            if closed > 0 {
                tracing::debug!(target: TARGET, "closed {closed} idle connection(s) to make room for {db}");
            }
        }
        match tokio::time::timeout(POOL_WAIT, Arc::clone(&self.budget).acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => {
                self.full.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target: TARGET, "The Connection Pool Is Full ({} connections, db {db})", self.maxconn);
                Err(DbError::PoolFull { db: db.to_owned() })
            }
        }
    }

    /// A connection to `db`, from its pool. Fails fast while the server is in its
    /// reconnection backoff.
    pub async fn get(&self, db: &str) -> Result<PooledConn, DbError> {
        let p = self.pool(db);
        {
            let h = p.health.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(at) = h.retry_at {
                let now = Instant::now();
                if at > now {
                    return Err(DbError::Unavailable(format!(
                        "{} (next attempt in {:.1}s)",
                        h.last_error,
                        (at - now).as_secs_f64()
                    )));
                }
            }
        }
        // No idle connection and no room for a new one: this caller waits (counted; a
        // race with a connection coming back only makes the count approximate).
        let st = p.pool.status();
        if st.available == 0 && (st.size >= st.max_size || self.budget.available_permits() == 0) {
            self.waits.fetch_add(1, Ordering::Relaxed);
        }
        let result = p.pool.get().await.map_err(|e| match e {
            PoolError::Timeout(TimeoutType::Wait) => {
                self.full.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target: TARGET, "The Connection Pool Is Full (db {db})");
                DbError::PoolFull { db: db.to_owned() }
            }
            PoolError::Timeout(_) => DbError::Unavailable(format!(
                "PostgreSQL is unreachable at {}: timed out connecting",
                self.info.describe()
            )),
            PoolError::Backend(e) => e,
            other => DbError::Other(other.to_string()),
        });
        let mut h = p.health.lock().unwrap_or_else(|e| e.into_inner());
        match &result {
            Err(DbError::Unavailable(m)) => {
                h.failures += 1;
                let base = Duration::from_millis(250) * 2u32.saturating_pow(h.failures.min(5) - 1);
                let delay = base
                    .min(Duration::from_secs(5))
                    .mul_f64(0.5 + rand::random::<f64>() / 2.0);
                h.retry_at = Some(Instant::now() + delay);
                h.last_error = m.clone();
                if h.failures == 1 {
                    tracing::warn!(target: TARGET, "database {db}: {m}; retrying with backoff");
                }
            }
            // No such database (3D000, `invalid_catalog_name`): its pool, still empty, is
            // forgotten, so that names that are no database leave nothing behind (no entry,
            // no metrics series).
            Err(DbError::Sql { sqlstate, .. }) if sqlstate == "3D000" => {
                drop(h);
                self.forget_empty(db, &p);
            }
            Ok(_) if h.failures > 0 => {
                tracing::info!(target: TARGET, "database {db}: connected again after {} failed attempt(s)", h.failures);
                *h = Health::default();
            }
            _ => {}
        }
        result
    }

    /// Forgets the reconnection backoff of every database: the server was just seen
    /// accepting connections again (the cron workers' LISTEN connection came back), so the
    /// next attempts need not wait for their backoff to run out.
    pub fn server_is_back(&self) {
        let pools: Vec<Arc<DbPool>> = self
            .pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for p in pools {
            let mut h = p.health.lock().unwrap_or_else(|e| e.into_inner());
            h.retry_at = None;
        }
    }

    /// Forgets the pool `p` of `db` when it has no connection (its database does not exist).
    fn forget_empty(&self, db: &str, p: &Arc<DbPool>) {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        if pools.get(db).is_some_and(|cur| Arc::ptr_eq(cur, p)) && p.pool.status().size == 0 {
            pools.remove(db);
        }
    }

    /// Closes the idle connections to `db` and forgets its pool (before `DROP DATABASE`).
    pub fn close_db(&self, db: &str) {
        let removed = self
            .pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(db);
        if let Some(p) = removed {
            p.pool.close();
        }
    }
}
