//! The list of databases and the database of a request (Odoo's `list_dbs` and `db_filter`
//! of `odoo/service/db.py`, and the database choice of `odoo/http.py`): `dbfilter` and
//! `db_name`, the single-visible-database rule, and the cached list of the databases owned
//! by the connecting role, kept `db_list_cache_ttl` milliseconds.

use super::{Databases, DbError};
use crate::config::Config;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TARGET: &str = "inphms.service.db";

/// Why the list of databases cannot be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListError {
    /// `list_db` is off (Odoo's `AccessDenied`).
    AccessDenied,
    /// PostgreSQL could not answer.
    Db(DbError),
}

impl std::fmt::Display for ListError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListError::AccessDenied => f.write_str("Access Denied"),
            ListError::Db(e) => write!(f, "{e}"),
        }
    }
}

/// The database names from `db_name`, trimmed, without empty ones.
pub fn db_names(config: &Config) -> Vec<String> {
    config
        .db_name
        .iter()
        .flat_map(|n| n.split(','))
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect()
}

/// Odoo's `list_dbs(force)`: the databases owned by the connecting role, less templates,
/// `postgres` and `db_template`; just `db_name` (sorted) when it is set without a
/// `dbfilter`. `AccessDenied` when `list_db` is off and not `force`.
pub async fn list_dbs(
    dbs: &Databases,
    config: &Config,
    force: bool,
) -> Result<Vec<String>, ListError> {
    if !config.list_db && !force {
        return Err(ListError::AccessDenied);
    }
    Ok(owned_dbs(dbs, config)
        .await
        .map_err(ListError::Db)?
        .to_vec())
}

/// Reads the list of databases into the cache ahead of the first request, which would
/// otherwise wait for the connection to `postgres` and the query (Odoo's `db_filter` needs
/// the list for a request without a session database). The server starts it with the
/// runtime, so that it runs while the addons load: the first request of a fresh server
/// then finds a fresh list (BENCHMARKS.md, "Start-up and idle memory"). With `db_name`
/// alone deciding, nothing is read. An error is kept as a request's would be.
pub async fn prefetch(dbs: &Databases, config: &Config) {
    let _ = owned_dbs(dbs, config).await;
}

/// Whether a database named `name` exists and accepts connections (Odoo's `db_exist`,
/// and the check before a registry is loaded for a name a client sent): from the cached
/// list when it names it, else one query on a pooled connection to `postgres`. No
/// connection to `name` itself is tried, so no pool is made for a name that does not exist.
pub async fn exists(dbs: &Databases, config: &Config, name: &str) -> Result<bool, DbError> {
    if let Ok(list) = owned_dbs(dbs, config).await {
        if list.iter().any(|n| n == name) && configured_names(config).is_none() {
            return Ok(true);
        }
    }
    // One statement, no transaction: the connection is back in its pool after one round trip.
    let conn = dbs.pools().get("postgres").await?;
    let row = conn
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1 AND datallowconn",
            &[&name],
        )
        .await
        .map_err(|e| DbError::from_pg(&e))?;
    Ok(row.is_some())
}

/// How long the list of databases read from PostgreSQL (or the error reading it) is kept
/// (`db_list_cache_ttl`, 1 s by default): the database choice needs it for every request.
fn list_ttl(config: &Config) -> Duration {
    Duration::from_millis(config.db_list_cache_ttl)
}

/// The databases `list_dbs(force = true)` gives, shared: from a cache younger than [`list_ttl`] when
/// possible, so that a request costs no query (and no connection attempt when PostgreSQL
/// is down).
///
/// One request at a time refreshes an expired list; the others meanwhile use the expired
/// one rather than each sending the same query (under load, every request in flight when
/// the list expires would otherwise query PostgreSQL and wait for it). Only when there is
/// no list at all do they wait, for the one refresh.
async fn owned_dbs(dbs: &Databases, config: &Config) -> DbList {
    let cache = dbs.list();
    if let Some(names) = cache.configured(config) {
        return Ok(names);
    }
    let guard = match cache.refresh.try_lock() {
        Ok(guard) => guard,
        // Someone else is refreshing: their list, or their refresh when there is none.
        Err(_) => match cache.cached(config) {
            Some((_, list)) => return list,
            None => cache.refresh.lock().await,
        },
    };
    // Fresh (whoever held the lock may have just filled it): no query.
    if let Some((true, list)) = cache.cached(config) {
        return list;
    }
    // Boxed: the query's future is large and awaited once a second at most; unboxed, it
    // would make the future of every request that much larger to move.
    let list = Box::pin(query_dbs(dbs, config)).await;
    *cache.list.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), list.clone()));
    drop(guard);
    list
}

/// The databases `db_name` names, sorted, when it alone decides (no `dbfilter`).
fn configured_names(config: &Config) -> Option<Vec<String>> {
    if !config.dbfilter.is_empty() || config.db_name.is_empty() {
        return None;
    }
    let mut names = db_names(config);
    if !config.dbfilter.is_empty() || names.is_empty() {
        return None;
    }
    names.sort();
    names.dedup();
    Some(names)
}

/// The names `db_name` gives when it alone decides, as [`configured_names`], and the
/// `db_name` they were read from: a request reads them without a copy.
type Configured = Option<(Vec<String>, Option<Arc<[String]>>)>;

/// The owned databases, or the error listing them.
type DbList = Result<Arc<[String]>, DbError>;

/// The last list of databases read, and when: part of [`Databases`].
#[derive(Debug, Default)]
pub struct ListCache {
    list: Mutex<Option<(Instant, DbList)>>,
    /// Held by the one request refreshing the list.
    refresh: tokio::sync::Mutex<()>,
    /// [`configured_names`] of the last `db_name` seen (a pure function of the
    /// configuration, which a reload may change: kept with the value it was read from).
    configured: Mutex<Configured>,
}

impl ListCache {
    /// Forgets the list (a database was made, dropped or renamed): the next one is read.
    pub fn invalidate(&self) {
        *self.list.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// [`configured_names`] of `config`, shared: read again only when `db_name` changed.
    fn configured(&self, config: &Config) -> Option<Arc<[String]>> {
        if !config.dbfilter.is_empty() || config.db_name.is_empty() {
            return None;
        }
        let mut cached = self.configured.lock().unwrap_or_else(|e| e.into_inner());
        match &*cached {
            Some((key, names)) if *key == config.db_name => names.clone(),
            _ => {
                let names: Option<Arc<[String]>> = configured_names(config).map(Into::into);
                *cached = Some((config.db_name.clone(), names.clone()));
                names
            }
        }
    }

    /// The cached list, and whether it is still fresh.
    fn cached(&self, config: &Config) -> Option<(bool, DbList)> {
        let ttl = list_ttl(config);
        self.list
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(at, list)| (at.elapsed() < ttl, list.clone()))
    }
}

async fn query_dbs(dbs: &Databases, config: &Config) -> Result<Arc<[String]>, DbError> {
    let mut cr = dbs.cursor("postgres", true);
    let rows = cr
        .execute(
            "SELECT datname::text FROM pg_database \
             WHERE datdba = (SELECT usesysid FROM pg_user WHERE usename = current_user) \
             AND NOT datistemplate AND datallowconn AND datname <> ALL($1::text[]) \
             ORDER BY datname",
            &[inphms_sdk::abi::SqlValue::Text(
                format!("{{postgres,\"{}\"}}", config.db_template.replace('"', "")).into(),
            )],
        )
        .await?;
    let _ = cr.rollback().await;
    Ok(rows
        .rows
        .iter()
        .filter_map(|r| match r.first() {
            Some(inphms_sdk::abi::SqlValue::Text(s)) => Some(s.to_string()),
            _ => None,
        })
        .collect())
}

/// Odoo's `db_filter(dbs, host)`: with `dbfilter`, the names matching it from their start,
/// `%h` being the host (port and a leading `www.` removed) and `%d` its first label; else
/// with `db_name`, the sorted names that are in it; else all.
pub fn db_filter(config: &Config, dbs: &[String], host: &str) -> Vec<String> {
    if !config.dbfilter.is_empty() {
        let host = host.split(':').next().unwrap_or("");
        let host = host.strip_prefix("www.").unwrap_or(host);
        let domain = host.split('.').next().unwrap_or("");
        let pattern = config
            .dbfilter
            .replace("%h", &regex::escape(host))
            .replace("%d", &regex::escape(domain));
        let Some(re) = compiled(&pattern) else {
            tracing::warn!(target: TARGET, "invalid dbfilter {pattern:?}");
            return Vec::new();
        };
        return dbs.iter().filter(|db| re.is_match(db)).cloned().collect();
    }
    let names = db_names(config);
    if !names.is_empty() {
        let mut out: Vec<String> = dbs.iter().filter(|d| names.contains(d)).cloned().collect();
        out.sort();
        out.dedup();
        return out;
    }
    dbs.to_vec()
}

/// The dbfilter regex for one host's pattern, compiled once (a request per host would
/// otherwise compile it again); at most a few hundred hosts are remembered.
fn compiled(pattern: &str) -> Option<regex::Regex> {
    // global: a cache of compiled patterns, a pure function of the pattern (no host state)
    static CACHE: std::sync::LazyLock<Mutex<std::collections::HashMap<String, regex::Regex>>> =
        std::sync::LazyLock::new(|| Mutex::new(std::collections::HashMap::new()));
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(re) = cache.get(pattern) {
        return Some(re.clone());
    }
    let re = regex::Regex::new(&format!("^(?:{pattern})")).ok()?;
    if cache.len() >= 256 {
        cache.clear();
    }
    cache.insert(pattern.to_owned(), re.clone());
    Some(re)
}

/// Odoo's `db_list(force, host)`: [`list_dbs`] then [`db_filter`]; an error gives `[]`.
pub async fn db_list(
    dbs: &Databases,
    config: &Config,
    force: bool,
    host: &str,
) -> Result<Vec<String>, ListError> {
    match list_dbs(dbs, config, force).await {
        Ok(dbs) => Ok(db_filter(config, &dbs, host)),
        Err(ListError::AccessDenied) => Err(ListError::AccessDenied),
        Err(ListError::Db(e)) => {
            tracing::debug!(target: TARGET, "cannot list the databases: {e}");
            Ok(Vec::new())
        }
    }
}

/// The database of a request: the session's when the filter accepts it, else `?db=` when
/// the filter accepts it and it exists, else the only visible database (the monodb rule),
/// else none. The second value tells that the session's database was rejected.
///
/// `query_db` gives the `db` field of the query string; it is only called when needed.
/// Without `dbfilter` nor `db_name`, no list is copied: the common case of a request
/// that selects no database costs a cache lookup.
pub async fn select_db(
    dbs: &Databases,
    config: &Config,
    session_db: Option<&str>,
    query_db: impl FnOnce() -> Option<String>,
    host: &str,
) -> (Option<String>, bool) {
    if let Some(db) = session_choice(config, session_db, host) {
        return (Some(db), false);
    }
    let owned = owned_dbs(dbs, config).await;
    choose(
        config,
        session_db,
        query_db,
        host,
        owned.as_ref().map(|l| &l[..]),
    )
}

/// [`select_db`] when it can answer without waiting: from `db_name` alone, the cached
/// list while fresh at `now` (the request's arrival: no clock read), or the expired list
/// while another request refreshes it. `None` when the list must be read first (by
/// [`select_db`]).
pub fn select_db_now(
    dbs: &Databases,
    config: &Config,
    session_db: Option<&str>,
    query_db: impl FnOnce() -> Option<String>,
    host: &str,
    now: Instant,
) -> Option<(Option<String>, bool)> {
    if let Some(db) = session_choice(config, session_db, host) {
        return Some((Some(db), false));
    }
    if let Some(names) = dbs.list().configured(config) {
        return Some(choose(config, session_db, query_db, host, Ok(&names)));
    }
    // The cached list itself (an `Arc`, not a copy), chosen from outside the lock: the
    // filter (a regex per request with `dbfilter`) does not hold up the other workers.
    let names = {
        let cache = dbs.list().list.lock().unwrap_or_else(|e| e.into_inner());
        let (at, list) = cache.as_ref()?;
        let fresh = now.saturating_duration_since(*at) < list_ttl(config);
        if !fresh && dbs.list().refresh.try_lock().is_ok() {
            return None;
        }
        match list {
            Ok(names) => Arc::clone(names),
            // PostgreSQL unreachable (rare, and nothing to filter): under the lock.
            Err(e) => return Some(choose(config, session_db, query_db, host, Err(e))),
        }
    };
    Some(choose(config, session_db, query_db, host, Ok(&names)))
}

/// The session's database when the filter accepts it (no list needed).
fn session_choice(config: &Config, session_db: Option<&str>, host: &str) -> Option<String> {
    let db = session_db.filter(|d| !d.is_empty())?;
    accepts(config, db, host).then(|| db.to_owned())
}

/// Whether [`db_filter`] keeps `db` for `host` (without building a list).
fn accepts(config: &Config, db: &str, host: &str) -> bool {
    if !config.dbfilter.is_empty() || config.db_name.is_empty() {
        return !db_filter(config, &[db.to_owned()], host).is_empty();
    }
    let mut names = config
        .db_name
        .iter()
        .flat_map(|n| n.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .peekable();
    // No name in `db_name`: every database is kept.
    names.peek().is_none() || names.any(|n| n == db)
}

/// [`select_db`] once the session's database is out of the question, from the owned list.
fn choose(
    config: &Config,
    session_db: Option<&str>,
    query_db: impl FnOnce() -> Option<String>,
    host: &str,
    owned: Result<&[String], &DbError>,
) -> (Option<String>, bool) {
    let rejected = session_db.is_some_and(|d| !d.is_empty());
    let visible: std::borrow::Cow<'_, [String]> = match owned {
        // Without `dbfilter`, the owned list is already `db_name`'s (sorted, deduplicated)
        // when it names any: `db_filter` would give it back.
        Ok(all) if config.dbfilter.is_empty() => all.into(),
        Ok(all) => db_filter(config, all, host).into(),
        Err(e) => {
            tracing::debug!(target: TARGET, "cannot list the databases: {e}");
            return (None, rejected);
        }
    };
    if visible.is_empty() {
        return (None, rejected);
    }
    if let Some(db) = query_db().filter(|d| !d.is_empty()) {
        if visible.contains(&db) {
            return (Some(db), rejected);
        }
    }
    if let [only] = &visible[..] {
        return (Some(only.clone()), rejected);
    }
    (None, rejected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dbfilter: &str, db_name: &[&str]) -> Config {
        let mut c = Config::defaults();
        c.dbfilter = dbfilter.into();
        c.db_name = db_name.iter().map(|s| s.to_string()).collect();
        c
    }

    #[test]
    fn filters_as_odoo() {
        let dbs: Vec<String> = ["shop", "shop_test", "acme", "www"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // %d: the first label of the host, www. removed; matched from the start only.
        let c = config("%d", &[]);
        assert_eq!(
            db_filter(&c, &dbs, "www.shop.example.com:8069"),
            ["shop", "shop_test"]
        );
        let c = config("^%d$", &[]);
        assert_eq!(db_filter(&c, &dbs, "shop.example.com"), ["shop"]);
        let c = config("^%h$", &[]);
        assert!(db_filter(&c, &dbs, "shop.example.com").is_empty());
        let c = config("test", &[]);
        assert!(
            db_filter(&c, &dbs, "x").is_empty(),
            "re.match anchors at the start"
        );
        let c = config("", &["acme", "zzz", "shop"]);
        assert_eq!(db_filter(&c, &dbs, "x"), ["acme", "shop"]);
        let c = config("", &[]);
        assert_eq!(db_filter(&c, &dbs, "x").len(), 4);
    }

    #[test]
    fn accepts_as_db_filter_does() {
        for (filter, names) in [
            ("", &[][..]),
            ("", &["acme, shop", "zzz"][..]),
            ("", &[" , "][..]),
            ("^%d$", &[][..]),
            ("shop", &["acme"][..]),
        ] {
            let c = config(filter, names);
            for db in ["shop", "acme", "zzz", "other"] {
                assert_eq!(
                    accepts(&c, db, "shop.example.com"),
                    !db_filter(&c, &[db.to_owned()], "shop.example.com").is_empty(),
                    "{filter:?} {names:?} {db}"
                );
            }
        }
    }

    #[test]
    fn configured_names_are_read_again_when_db_name_changes() {
        let cache = ListCache::default();
        let names = cache.configured(&config("", &["b,a", "a"])).expect("names");
        assert_eq!(&names[..], ["a", "b"]);
        let again = cache.configured(&config("", &["b,a", "a"])).expect("names");
        assert!(Arc::ptr_eq(&names, &again));
        assert_eq!(
            &cache.configured(&config("", &["c"])).expect("names")[..],
            ["c"]
        );
        assert!(cache.configured(&config("x", &["c"])).is_none());
        assert!(cache.configured(&config("", &[" "])).is_none());
    }
}
