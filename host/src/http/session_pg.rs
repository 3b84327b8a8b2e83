//! Sessions in PostgreSQL (`session_store = "postgresql"`): the store several hosts behind
//! one load balancer share, as Odoo deployments replace the filesystem store with a shared
//! one. It implements [`SessionStore`] with the filesystem store's semantics (rotation and
//! logout delete the old record; an unknown id is never adopted; an invalid id touches
//! nothing).
//!
//! * One table, `inphms_session` (id text primary key, data jsonb, updated, expiry
//!   timestamptz, an index on expiry), in `session_db` (else `cron_db`), created when
//!   missing (under a transaction-level advisory lock, so hosts starting together do not
//!   race on `CREATE TABLE`).
//! * A read is one indexed `SELECT` by primary key; a write one upsert (`INSERT .. ON
//!   CONFLICT`) for a new or rotated id, one `UPDATE` for a save under the same id (a row
//!   a logout deleted meanwhile stays deleted), only when the data differs from what this
//!   host last read; a delete one
//!   `DELETE`. Each runs in autocommit on a pooled connection and is committed when the
//!   call returns: the caller saves before it sends the response, so a host killed by
//!   SIGKILL afterwards loses no session.
//! * Writes and deletes `NOTIFY inphms_session, '<sid>'` in the same statement. Each host
//!   keeps the sessions it read in an LRU ([`CACHE_CAPACITY`]) and LISTENs on that channel
//!   (one connection per host): a notification drops the entry, so a cached read costs no
//!   round trip at all. While the LISTEN connection is down the cache is off (every read
//!   goes to the table); an entry is kept only when no notification arrived while it was
//!   being read. The LISTEN connection is probed every 10 s (`SELECT 1`, 2 s to answer;
//!   else given up and the cache cleared: a half-open connection delivers nothing), and
//!   an entry is served from the cache 30 s at most. A change made on another host is seen here once its notification
//!   arrives (delivered at its commit, before that host answers; the window is the
//!   delivery to this host's listener task, well under a millisecond on a LAN).
//! * The expiry sweep is one `DELETE` of the rows past their expiry, run by one host at a
//!   time (`pg_try_advisory_xact_lock`: the others skip it).
//! * PostgreSQL unreachable: [`SessionError::Unavailable`] naming it (the request path
//!   answers 503), never a panic nor a logged-out session.
//!
//! The trait is synchronous: queries run on the host's runtime and the calling thread
//! waits (`block_in_place` on a runtime worker, as `sql_db::env` does for handlers).

use super::session::{
    is_valid_sid, SessionData, SessionError, SessionStore, StoredSession, SESSION_LIFETIME,
};
use crate::sql_db::{self, Pools};
use serde_json::{Map, Value};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

const TARGET: &str = "inphms.http";

/// How many sessions a host keeps in memory.
pub const CACHE_CAPACITY: usize = 4096;
/// The longest a cached session is served without reading its row again (a bound on what
/// a lost notification can cost, whatever the LISTEN connection's state).
pub const MAX_CACHED_AGE: Duration = Duration::from_secs(30);
/// How often the LISTEN connection is probed (`SELECT 1`), and how long the probe may take
/// before the connection is given up (a half-open connection delivers no notification).
pub const HEARTBEAT: Duration = Duration::from_secs(10);
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a store operation may take before it is given up as unavailable.
pub const OP_TIMEOUT: Duration = Duration::from_secs(5);
/// The channel of invalidations.
pub const CHANNEL: &str = "inphms_session";
/// The key of the advisory lock of the table's creation and of the sweep ("inss").
const LOCK_KEY: i64 = 0x696e_7373;

const CREATE: &str = "BEGIN; SELECT pg_advisory_xact_lock(1768846195); \
    CREATE TABLE IF NOT EXISTS inphms_session (id text PRIMARY KEY, data jsonb NOT NULL, \
    updated timestamptz NOT NULL DEFAULT now(), expiry timestamptz NOT NULL); \
    CREATE INDEX IF NOT EXISTS inphms_session_expiry ON inphms_session (expiry); COMMIT";
const SELECT: &str = "SELECT data::text, extract(epoch FROM expiry)::float8 FROM inphms_session \
    WHERE id = $1 AND expiry > now()";
const UPSERT: &str = "WITH up AS (INSERT INTO inphms_session (id, data, updated, expiry) \
    VALUES ($1, ($2::text)::jsonb, now(), now() + make_interval(secs => $3::float8)) \
    ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, updated = EXCLUDED.updated, \
    expiry = EXCLUDED.expiry RETURNING id) SELECT pg_notify('inphms_session', id) FROM up";
const UPDATE: &str = "WITH up AS (UPDATE inphms_session SET data = ($2::text)::jsonb, \
    updated = now(), expiry = now() + make_interval(secs => $3::float8) \
    WHERE id = $1 AND expiry > now() RETURNING id) SELECT pg_notify('inphms_session', id) FROM up";
const DELETE: &str = "WITH d AS (DELETE FROM inphms_session WHERE id = $1 RETURNING id) \
    SELECT pg_notify('inphms_session', id) FROM d";
const SWEEP: &str = "WITH l AS (SELECT pg_try_advisory_xact_lock($1::int8) AS got), \
    d AS (DELETE FROM inphms_session WHERE expiry < now() + make_interval(secs => $2::float8) \
    AND (SELECT got FROM l) RETURNING 1) SELECT count(*) FROM d";

/// A cached session, when its row expires, and when it was read.
type Entry = (StoredSession, SystemTime, Instant);

/// Sessions in a PostgreSQL table, cached per host and invalidated by NOTIFY (see the
/// module documentation).
pub struct PgSessionStore {
    pools: Arc<Pools>,
    db: String,
    runtime: tokio::runtime::Handle,
    cache: Mutex<lru::LruCache<String, Entry>>,
    /// Whether the LISTEN connection is up (else the cache is not used).
    listening: AtomicBool,
    /// Bumped at each notification and (dis)connection: a read keeps its result only when
    /// this did not move while it ran.
    invalidations: AtomicU64,
    /// Whether the table is known to exist.
    table_ready: AtomicBool,
}

impl std::fmt::Debug for PgSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSessionStore")
            .field("db", &self.db)
            .field("listening", &self.listening.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl PgSessionStore {
    /// The store in `db` through `pools`, its queries on `runtime`; creates the table
    /// (a failure is logged and tried again at the first use) and starts the LISTEN task.
    pub async fn open(
        pools: Arc<Pools>,
        db: &str,
        runtime: tokio::runtime::Handle,
    ) -> Arc<PgSessionStore> {
        let capacity = std::num::NonZeroUsize::new(CACHE_CAPACITY).expect("not zero");
        let store = Arc::new(PgSessionStore {
            pools,
            db: db.to_owned(),
            runtime: runtime.clone(),
            cache: Mutex::new(lru::LruCache::new(capacity)),
            listening: AtomicBool::new(false),
            invalidations: AtomicU64::new(0),
            table_ready: AtomicBool::new(false),
        });
        match store.ensure_table().await {
            Ok(()) => {
                tracing::info!(target: TARGET, "sessions are kept in PostgreSQL (database {db}, table inphms_session)")
            }
            Err(e) => {
                tracing::error!(target: TARGET, "session store: {e}; trying again at the first request")
            }
        }
        runtime.spawn(listen_loop(Arc::downgrade(&store)));
        store
    }

    /// The database the sessions are in.
    pub fn db(&self) -> &str {
        &self.db
    }

    /// Whether reads are served from the cache (the LISTEN connection is up).
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, lru::LruCache<String, Entry>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn unavailable(&self, what: impl std::fmt::Display) -> SessionError {
        SessionError::Unavailable(format!("database {}: {what}", self.db))
    }

    async fn ensure_table(&self) -> Result<(), SessionError> {
        if self.table_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        // Its own connection: a transaction cut short must not go back to a pool.
        let (client, conn) = sql_db::connect_unpooled(self.pools.info(), &self.db)
            .await
            .map_err(|e| self.unavailable(e))?;
        let driver = tokio::spawn(conn);
        let created = client.batch_execute(CREATE).await;
        drop(client);
        let _ = driver.await;
        created.map_err(|e| self.unavailable(sql_db::DbError::from_pg(&e)))?;
        self.table_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Runs one statement on a pooled connection (the table made first if needed).
    async fn query(
        &self,
        sql: &'static str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, SessionError> {
        self.ensure_table().await?;
        let conn = self
            .pools
            .get(&self.db)
            .await
            .map_err(|e| self.unavailable(e))?;
        let stmt = conn
            .prepare_cached(sql)
            .await
            .map_err(|e| self.unavailable(sql_db::DbError::from_pg(&e)))?;
        conn.query(&stmt, params)
            .await
            .map_err(|e| self.unavailable(sql_db::DbError::from_pg(&e)))
    }

    /// Waits for `f` on the host's runtime, at most [`OP_TIMEOUT`].
    fn block<T>(
        &self,
        f: impl Future<Output = Result<T, SessionError>>,
    ) -> Result<T, SessionError> {
        let timed = async {
            match tokio::time::timeout(OP_TIMEOUT, f).await {
                Ok(r) => r,
                Err(_) => {
                    Err(self.unavailable(format!("no answer within {}s", OP_TIMEOUT.as_secs())))
                }
            }
        };
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::CurrentThread) => {
                Err(self.unavailable("a session cannot be waited for on a single-threaded runtime"))
            }
            Ok(_) => tokio::task::block_in_place(|| self.runtime.block_on(timed)),
            Err(_) => self.runtime.block_on(timed),
        }
    }
}

impl SessionStore for PgSessionStore {
    fn store_type(&self) -> &'static str {
        "postgresql"
    }

    fn get(&self, sid: &str) -> Result<Option<StoredSession>, SessionError> {
        if !is_valid_sid(sid) {
            return Ok(None);
        }
        let listening = self.is_listening();
        if listening {
            if let Some((session, expiry, read)) = self.cache().get(sid) {
                if *expiry > SystemTime::now() && read.elapsed() < MAX_CACHED_AGE {
                    return Ok(Some(session.clone()));
                }
            }
        }
        let seen = self.invalidations.load(Ordering::SeqCst);
        let rows = self.block(self.query(SELECT, &[&sid]))?;
        let Some(row) = rows.first() else {
            self.cache().pop(sid);
            return Ok(None);
        };
        let (text, expiry): (String, f64) = (row.get(0), row.get(1));
        let map = match serde_json::from_str::<Map<String, Value>>(&text) {
            Ok(map) => map,
            Err(e) => {
                tracing::warn!(target: TARGET, error = %e, "corrupt session row, treated as no session");
                return Ok(None);
            }
        };
        let json = serde_json::to_string(&map).map_err(SessionError::Json)?;
        let session = StoredSession {
            data: Arc::new(SessionData::from_map(map)),
            json: json.into(),
        };
        let expiry = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(expiry.max(0.0));
        if listening && self.is_listening() && self.invalidations.load(Ordering::SeqCst) == seen {
            self.cache()
                .put(sid.to_owned(), (session.clone(), expiry, Instant::now()));
        }
        Ok(Some(session))
    }

    fn save(&self, sid: &str, data: &SessionData) -> Result<(), SessionError> {
        if !is_valid_sid(sid) {
            return Err(SessionError::InvalidSid);
        }
        // Unchanged since this host read it (and the read is still valid): nothing to write.
        if self.is_listening() {
            if let Some((cached, _, _)) = self.cache().get(sid) {
                if *cached.data == *data {
                    return Ok(());
                }
            }
        }
        let json = serde_json::to_string(&data.0).map_err(SessionError::Json)?;
        let lifetime = SESSION_LIFETIME.as_secs_f64();
        self.cache().pop(sid);
        self.block(self.query(UPSERT, &[&sid, &json, &lifetime]))?;
        Ok(())
    }

    fn update(&self, sid: &str, data: &SessionData) -> Result<bool, SessionError> {
        if !is_valid_sid(sid) {
            return Err(SessionError::InvalidSid);
        }
        if self.is_listening() {
            if let Some((cached, _, _)) = self.cache().get(sid) {
                if *cached.data == *data {
                    return Ok(true);
                }
            }
        }
        let json = serde_json::to_string(&data.0).map_err(SessionError::Json)?;
        let lifetime = SESSION_LIFETIME.as_secs_f64();
        self.cache().pop(sid);
        // An UPDATE, never an INSERT: a row deleted meanwhile (a logout on any host) stays
        // deleted.
        let rows = self.block(self.query(UPDATE, &[&sid, &json, &lifetime]))?;
        Ok(!rows.is_empty())
    }

    fn delete(&self, sid: &str) -> Result<(), SessionError> {
        if !is_valid_sid(sid) {
            return Ok(());
        }
        self.cache().pop(sid);
        self.block(self.query(DELETE, &[&sid]))?;
        Ok(())
    }

    fn vacuum(&self, max_age: Duration) -> Result<usize, SessionError> {
        // Rows last written more than `max_age` ago: their expiry is written + lifetime.
        let shift = SESSION_LIFETIME.as_secs_f64() - max_age.as_secs_f64();
        let rows = self.block(self.query(SWEEP, &[&LOCK_KEY, &shift]))?;
        let n: i64 = rows.first().map_or(0, |r| r.get(0));
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

/// The LISTEN connection of a store: drops the cache entry of each session changed
/// elsewhere; probed every [`HEARTBEAT`] (a probe unanswered within [`HEARTBEAT_TIMEOUT`]:
/// the connection is given up, the cache cleared); reconnects with backoff (250 ms
/// doubling to 2 s), the cache off meanwhile.
async fn listen_loop(store: Weak<PgSessionStore>) {
    let mut retry = Duration::from_millis(250);
    let mut warned = false;
    loop {
        let Some(s) = store.upgrade() else { return };
        let connected = sql_db::connect_unpooled(s.pools.info(), &s.db).await;
        let (client, mut conn) = match connected {
            Ok(c) => c,
            Err(e) => {
                if !warned {
                    tracing::warn!(target: TARGET, "session store: cannot LISTEN on database {} ({e}); sessions are read from the table until it can", s.db);
                    warned = true;
                }
                drop(s);
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let driver = tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                    Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                        if tx.send(n.payload().to_owned()).is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return,
                }
            }
        });
        if let Err(e) = client.batch_execute("LISTEN inphms_session").await {
            driver.abort();
            if !warned {
                tracing::warn!(target: TARGET, "session store: LISTEN failed on database {}: {e}", s.db);
                warned = true;
            }
            drop(s);
            tokio::time::sleep(retry).await;
            continue;
        }
        s.invalidations.fetch_add(1, Ordering::SeqCst);
        s.cache().clear();
        s.listening.store(true, Ordering::SeqCst);
        if warned {
            tracing::info!(target: TARGET, "session store: listening on database {} again", s.db);
        }
        retry = Duration::from_millis(250);
        drop(s);
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                sid = rx.recv() => {
                    let Some(sid) = sid else { break };
                    let Some(s) = store.upgrade() else {
                        driver.abort();
                        return;
                    };
                    s.invalidations.fetch_add(1, Ordering::SeqCst);
                    s.cache().pop(&sid);
                }
                _ = heartbeat.tick() => {
                    let probe = tokio::time::timeout(HEARTBEAT_TIMEOUT, client.simple_query("SELECT 1"));
                    match probe.await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            tracing::warn!(target: TARGET, "session store: the LISTEN connection failed its probe ({e})");
                            break;
                        }
                        Err(_) => {
                            tracing::warn!(target: TARGET, "session store: the LISTEN connection did not answer its probe within {}s", HEARTBEAT_TIMEOUT.as_secs());
                            break;
                        }
                    }
                }
            }
        }
        driver.abort();
        let Some(s) = store.upgrade() else { return };
        s.listening.store(false, Ordering::SeqCst);
        s.invalidations.fetch_add(1, Ordering::SeqCst);
        s.cache().clear();
        tracing::warn!(target: TARGET, "session store: lost the LISTEN connection to database {}; reconnecting", s.db);
        warned = true;
        drop(client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql_db::tests::{test_info, TestDb};
    use std::time::Instant;

    async fn store(db: &TestDb) -> Arc<PgSessionStore> {
        let pools = Pools::new(test_info(), 4);
        let s = PgSessionStore::open(pools, &db.name, tokio::runtime::Handle::current()).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !s.is_listening() {
            assert!(Instant::now() < deadline, "the store never listened");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        s
    }

    fn data(uid: i64) -> SessionData {
        let mut d = SessionData::default_session();
        d.insert("uid".into(), uid.into());
        d
    }

    async fn sql(db: &TestDb, query: &str) -> Vec<tokio_postgres::Row> {
        let (client, conn) = sql_db::connect_unpooled(&test_info(), &db.name)
            .await
            .unwrap();
        tokio::spawn(conn);
        client.query(query, &[]).await.unwrap()
    }

    /// Waits (at most 5 s) until `f` holds, off the runtime's worker.
    async fn eventually(mut f: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if tokio::task::block_in_place(&mut f) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn it_keeps_the_filesystem_stores_semantics() {
        let db = TestDb::create("sess_sem").await;
        let s = store(&db).await;
        tokio::task::block_in_place(|| {
            let sid = s.new_sid();
            assert!(s.get(&sid).unwrap().is_none(), "unknown id");
            s.save(&sid, &data(1)).unwrap();
            assert_eq!(s.get(&sid).unwrap().unwrap().data["uid"], 1);
            s.save(&sid, &data(2)).unwrap();
            assert_eq!(s.get(&sid).unwrap().unwrap().data["uid"], 2, "replaced");
            // Rotation removes the old record and saves nothing.
            let new = s.rotate(&sid).unwrap();
            assert!(is_valid_sid(&new) && new != sid);
            assert!(s.get(&sid).unwrap().is_none());
            assert!(s.get(&new).unwrap().is_none());
            s.save(&new, &data(3)).unwrap();
            s.delete(&new).unwrap();
            assert!(s.get(&new).unwrap().is_none(), "logout deletes");
            s.delete(&new).unwrap();
            // Invalid ids touch nothing.
            for bad in ["../../etc/passwd", "", &"A".repeat(83), &"A".repeat(85)] {
                assert!(s.get(bad).unwrap().is_none());
                assert!(matches!(
                    s.save(bad, &data(1)),
                    Err(SessionError::InvalidSid)
                ));
                s.delete(bad).unwrap();
            }
        });
        let rows = sql(&db, "SELECT count(*) FROM inphms_session").await;
        assert_eq!(rows[0].get::<_, i64>(0), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unchanged_session_is_not_written_and_a_cached_read_is_shared() {
        let db = TestDb::create("sess_write").await;
        let s = store(&db).await;
        let sid = s.new_sid();
        let updated = format!("SELECT updated::text FROM inphms_session WHERE id = '{sid}'");
        tokio::task::block_in_place(|| s.save(&sid, &data(1)).unwrap());
        let before: String = sql(&db, &updated).await[0].get(0);
        // Its own NOTIFY may drop the first cached copy: read until two reads share it.
        let cached = eventually(|| {
            let a = s.get(&sid).unwrap().unwrap();
            let b = s.get(&sid).unwrap().unwrap();
            Arc::ptr_eq(&a.data, &b.data)
        })
        .await;
        assert!(cached, "reads are served from the cache");
        tokio::task::block_in_place(|| s.save(&sid, &data(1)).unwrap());
        let after: String = sql(&db, &updated).await[0].get(0);
        assert_eq!(before, after, "the same data is not written again");
        tokio::task::block_in_place(|| s.save(&sid, &data(2)).unwrap());
        let changed: String = sql(&db, &updated).await[0].get(0);
        assert_ne!(before, changed, "changed data is");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_change_on_one_host_reaches_the_cache_of_another() {
        let db = TestDb::create("sess_two").await;
        let (a, b) = (store(&db).await, store(&db).await);
        let sid = a.new_sid();
        tokio::task::block_in_place(|| a.save(&sid, &data(1)).unwrap());
        // B reads it, and keeps it cached.
        assert!(
            eventually(|| {
                let x = b.get(&sid).unwrap().unwrap();
                let y = b.get(&sid).unwrap().unwrap();
                Arc::ptr_eq(&x.data, &y.data) && x.data["uid"] == 1
            })
            .await
        );
        tokio::task::block_in_place(|| a.save(&sid, &data(2)).unwrap());
        assert!(
            eventually(|| b.get(&sid).unwrap().is_some_and(|s| s.data["uid"] == 2)).await,
            "B sees A's change"
        );
        tokio::task::block_in_place(|| a.delete(&sid).unwrap());
        assert!(
            eventually(|| b.get(&sid).unwrap().is_none()).await,
            "B sees A's logout"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sweep_deletes_expired_rows_by_one_host_at_a_time() {
        let db = TestDb::create("sess_sweep").await;
        let s = store(&db).await;
        let fresh = s.new_sid();
        tokio::task::block_in_place(|| s.save(&fresh, &data(1)).unwrap());
        let old = "O".repeat(84);
        sql(
            &db,
            &format!(
                "INSERT INTO inphms_session (id, data, updated, expiry) VALUES \
                 ('{old}', '{{}}', now() - interval '8 days', now() - interval '1 day')"
            ),
        )
        .await;
        // Another host holds the sweep's lock: this one skips it.
        let (holder, conn) = sql_db::connect_unpooled(&test_info(), &db.name)
            .await
            .unwrap();
        tokio::spawn(conn);
        holder
            .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
            .await
            .unwrap();
        let skipped = tokio::task::block_in_place(|| s.vacuum(SESSION_LIFETIME).unwrap());
        assert_eq!(skipped, 0, "the lock is held elsewhere");
        holder
            .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
            .await
            .unwrap();
        let swept = tokio::task::block_in_place(|| s.vacuum(SESSION_LIFETIME).unwrap());
        assert_eq!(swept, 1);
        tokio::task::block_in_place(|| {
            assert!(s.get(&old).unwrap().is_none());
            assert!(s.get(&fresh).unwrap().is_some());
        });
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_server_is_unavailable_never_a_panic() {
        let mut info = test_info();
        info.port = 1; // nothing listens there
        let s = PgSessionStore::open(
            Pools::new(info, 2),
            "postgres",
            tokio::runtime::Handle::current(),
        )
        .await;
        let sid = s.new_sid();
        tokio::task::block_in_place(|| {
            let e = s.get(&sid).unwrap_err();
            assert!(matches!(e, SessionError::Unavailable(_)), "{e}");
            assert!(e.to_string().contains("database postgres"), "{e}");
            assert!(matches!(
                s.save(&sid, &data(1)),
                Err(SessionError::Unavailable(_))
            ));
            assert!(s.vacuum(SESSION_LIFETIME).is_err());
        });
        assert!(!s.is_listening());
    }
}
