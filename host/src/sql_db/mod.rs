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
//! [`env`] exposes cursors to addons through the host API (handles, the invocation's cursor,
//! the blocking bridge onto the runtime) and runs a handler in a transaction with Odoo's
//! `retrying`. [`dblist`] lists the databases and chooses a request's; [`notify`] wakes
//! the cron workers after a commit that added a trigger.

pub mod cursor;
pub mod dblist;
pub mod env;
pub mod notify;
pub mod value;

pub use cursor::Cursor;

use crate::config::Config;
use deadpool::managed::{self, Metrics, PoolError, RecycleError, RecycleResult, TimeoutType};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

const TARGET: &str = "inphms.sql_db";

/// How long a caller waits for a connection when `db_maxconn` are open.
pub const POOL_WAIT: Duration = Duration::from_secs(5);

/// How long connecting to the server may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQLSTATEs after which Odoo's `retrying` runs the transaction again: serialization
/// failure, deadlock detected, lock not available.
pub const RETRY_SQLSTATES: [&str; 3] = ["40001", "40P01", "55P03"];

/// A database error, classified for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbError {
    /// The server cannot be reached, or the connection was lost.
    Unavailable(String),
    /// Every connection is taken and none was freed in time.
    PoolFull {
        /// The database asked for.
        db: String,
    },
    /// An error reported by PostgreSQL.
    Sql {
        /// The SQLSTATE, e.g. `40001`.
        sqlstate: String,
        /// PostgreSQL's message.
        message: String,
        /// PostgreSQL's detail and hint, when given.
        detail: Option<String>,
    },
    /// Anything else (a value that cannot be converted, a closed cursor...).
    Other(String),
}

impl DbError {
    /// The SQLSTATE of a [`DbError::Sql`].
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            DbError::Sql { sqlstate, .. } => Some(sqlstate),
            _ => None,
        }
    }

    /// Whether Odoo's `retrying` would run the transaction again.
    pub fn is_retryable(&self) -> bool {
        self.sqlstate()
            .is_some_and(|s| RETRY_SQLSTATES.contains(&s))
    }

    /// Whether the connection is unusable (the server went away).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DbError::Unavailable(_))
    }

    /// From an error of a query (or of `BEGIN`/`COMMIT`).
    pub fn from_pg(e: &tokio_postgres::Error) -> DbError {
        if let Some(db) = e.as_db_error() {
            let code = db.code().code();
            if is_unavailable_sqlstate(code) {
                return DbError::Unavailable(format!("{} (SQLSTATE {code})", db.message()));
            }
            let mut detail = Vec::new();
            if let Some(d) = db.detail() {
                detail.push(format!("DETAIL: {d}"));
            }
            if let Some(h) = db.hint() {
                detail.push(format!("HINT: {h}"));
            }
            return DbError::Sql {
                sqlstate: db.code().code().to_owned(),
                message: db.message().to_owned(),
                detail: (!detail.is_empty()).then(|| detail.join("\n")),
            };
        }
        if e.is_closed() || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()) {
            return DbError::Unavailable(format!("connection lost: {e}"));
        }
        DbError::Other(e.to_string())
    }

    /// From an error while connecting: anything but a server-side refusal means the server
    /// is unreachable.
    pub fn from_connect(e: &tokio_postgres::Error) -> DbError {
        match e.as_db_error() {
            Some(_) => DbError::from_pg(e),
            None => DbError::Unavailable(format!("PostgreSQL is unreachable: {e}")),
        }
    }
}

/// Whether a SQLSTATE says the server is unavailable, as when it cannot be reached (tried
/// again within seconds): shutting down (`57P01` admin shutdown, `57P02` crash shutdown),
/// starting up (`57P03` cannot connect now) or a connection failure (class `08`). Not
/// `57P04` (database dropped): waiting will not bring the database back, and a cron worker
/// would pass again every few seconds forever.
pub fn is_unavailable_sqlstate(code: &str) -> bool {
    matches!(code, "57P01" | "57P02" | "57P03") || code.starts_with("08")
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Unavailable(m) | DbError::Other(m) => f.write_str(m),
            DbError::PoolFull { .. } => f.write_str("The Connection Pool Is Full"),
            DbError::Sql {
                sqlstate, message, ..
            } => write!(f, "{message} (SQLSTATE {sqlstate})"),
        }
    }
}

impl std::error::Error for DbError {}

/// Where and as whom to connect: the `db_*` options (which already include `$PGHOST`,
/// `$PGPORT`, `$PGUSER`, `$PGPASSWORD`), with libpq's defaults for what is unset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// A host name, an address, or a folder holding the unix socket.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The role.
    pub user: String,
    /// The password, if any.
    pub password: Option<String>,
    /// `disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full`.
    pub sslmode: String,
    /// `application_name`.
    pub application_name: String,
}

impl ConnInfo {
    /// From the configuration and libpq's defaults: the unix socket folder
    /// (`/var/run/postgresql` or `/tmp`) when it holds the socket, else `localhost`; port
    /// 5432; the operating-system user.
    pub fn from_config(config: &Config) -> ConnInfo {
        let port = config.db_port.unwrap_or(5432);
        let host = match config.db_host.as_deref().filter(|h| !h.is_empty()) {
            Some(h) => h.to_owned(),
            None => ["/var/run/postgresql", "/tmp"]
                .into_iter()
                .find(|d| {
                    std::path::Path::new(d)
                        .join(format!(".s.PGSQL.{port}"))
                        .exists()
                })
                .unwrap_or("localhost")
                .to_owned(),
        };
        let user = config
            .db_user
            .clone()
            .filter(|u| !u.is_empty())
            .or_else(|| {
                nix::unistd::User::from_uid(nix::unistd::geteuid())
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "postgres".to_owned());
        ConnInfo {
            host,
            port,
            user,
            password: config.db_password.clone().filter(|p| !p.is_empty()),
            sslmode: config.db_sslmode.clone(),
            application_name: application_name(),
        }
    }

    /// The tokio-postgres configuration for `dbname`.
    pub fn pg_config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        if self.host.starts_with('/') {
            c.host_path(&self.host);
        } else {
            c.host(&self.host);
        }
        c.port(self.port)
            .user(&self.user)
            .dbname(dbname)
            .application_name(&self.application_name)
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(60));
        if let Some(p) = &self.password {
            c.password(p.as_bytes());
        }
        // Without a TLS library, `prefer`/`allow` connect in clear and `require` and above
        // fail with tokio-postgres's clear error.
        c.ssl_mode(match self.sslmode.as_str() {
            "disable" => tokio_postgres::config::SslMode::Disable,
            "allow" | "prefer" => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        c
    }

    /// `user@host:port`, for logs.
    pub fn describe(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }
}

/// Odoo's `application_name`: `$INPHMS_PGAPPNAME` with `{pid}` replaced, cut to 63 bytes,
/// else `inphms-<pid>`.
pub fn application_name() -> String {
    let pid = std::process::id().to_string();
    match std::env::var("INPHMS_PGAPPNAME") {
        Ok(name) if !name.is_empty() => {
            let mut name = name.replace("{pid}", &pid);
            while name.len() > 63 {
                name.pop();
            }
            name
        }
        _ => format!("inphms-{pid}"),
    }
}

/// Opens one connection outside the pools (the cron workers' LISTEN connections, database
/// creation). The returned connection must be driven by the caller.
pub async fn connect_unpooled(
    info: &ConnInfo,
    dbname: &str,
) -> Result<
    (
        tokio_postgres::Client,
        tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
    ),
    DbError,
> {
    info.pg_config(dbname)
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| DbError::from_connect(&e))
}

/// A pooled connection: deadpool-postgres's client, holding one of the `db_maxconn` permits
/// for as long as it is open.
pub struct PgConn {
    client: deadpool_postgres::ClientWrapper,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for PgConn {
    type Target = tokio_postgres::Client;
    fn deref(&self) -> &tokio_postgres::Client {
        &self.client
    }
}

impl PgConn {
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
    pools: Mutex<HashMap<String, Arc<DbPool>>>,
    me: std::sync::Weak<Pools>,
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
        let maxconn = maxconn.max(1);
        Arc::new_cyclic(|me| Pools {
            info,
            maxconn,
            budget: Arc::new(Semaphore::new(maxconn)),
            pools: Mutex::new(HashMap::new()),
            me: me.clone(),
        })
    }

    /// The connection coordinates.
    pub fn info(&self) -> &ConnInfo {
        &self.info
    }

    /// Connections open now (idle or in use), over all databases.
    pub fn open_connections(&self) -> usize {
        self.maxconn - self.budget.available_permits()
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
        let result = p.pool.get().await.map_err(|e| match e {
            PoolError::Timeout(TimeoutType::Wait) => {
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

static POOLS: RwLock<Option<Arc<Pools>>> = RwLock::new(None);

/// Sets up the process's pools from `config` (again after a configuration change: new
/// coordinates get new pools; the old ones close as their connections come back).
pub fn configure(config: &Config) -> Arc<Pools> {
    let info = ConnInfo::from_config(config);
    let maxconn = config.db_maxconn as usize;
    let mut slot = POOLS.write().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = slot.as_ref() {
        if p.info == info && p.maxconn == maxconn.max(1) {
            return Arc::clone(p);
        }
    }
    tracing::debug!(target: TARGET, "connection pools for {} ({maxconn} connections at most)", info.describe());
    let p = Pools::new(info, maxconn);
    *slot = Some(Arc::clone(&p));
    p
}

/// The process's pools; set up from the defaults when [`configure`] was not called.
pub fn pools() -> Arc<Pools> {
    if let Some(p) = POOLS.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return Arc::clone(p);
    }
    configure(&Config::defaults())
}

/// A cursor on `db` (Odoo's `db_connect(db).cursor()`); it connects on its first statement.
pub fn cursor(db: &str, readonly: bool) -> Cursor {
    Cursor::new(pools(), db, readonly)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

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
