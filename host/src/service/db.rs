//! Databases (Odoo's `odoo/service/db.py` and the database choice of `odoo/http.py`): the
//! list of databases, `dbfilter` and `db_name`, the single-visible-database rule, creating a
//! database, and [`init_databases`] for `-d`, `-i` and `-u` at start-up.

use crate::config::Config;
use crate::error::Error;
use crate::modules::module::AddonSet;
use crate::modules::{loading, registry};
use crate::sql_db::{self, DbError};
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
pub async fn list_dbs(config: &Config, force: bool) -> Result<Vec<String>, ListError> {
    if !config.list_db && !force {
        return Err(ListError::AccessDenied);
    }
    Ok(owned_dbs(config).await.map_err(ListError::Db)?.to_vec())
}

/// How long the list of databases read from PostgreSQL (or the error reading it) is kept:
/// the database choice needs it for every request.
const LIST_TTL: Duration = Duration::from_secs(1);

/// The databases `list_dbs(force = true)` gives, shared: from [`LIST_TTL`]-old cache when
/// possible, so that a request costs no query (and no connection attempt when PostgreSQL
/// is down).
///
/// One request at a time refreshes an expired list; the others meanwhile use the expired
/// one rather than each sending the same query (under load, every request in flight when
/// the list expires would otherwise query PostgreSQL and wait for it). Only when there is
/// no list at all do they wait, for the one refresh.
async fn owned_dbs(config: &Config) -> DbList {
    if let Some(names) = configured_names(config) {
        return Ok(names.into());
    }
    let guard = match REFRESH.try_lock() {
        Ok(guard) => guard,
        // Someone else is refreshing: their list, or their refresh when there is none.
        Err(_) => match cached_list() {
            Some((_, list)) => return list,
            None => REFRESH.lock().await,
        },
    };
    // Fresh (whoever held the lock may have just filled it): no query.
    if let Some((true, list)) = cached_list() {
        return list;
    }
    // Boxed: the query's future is large and awaited once a second at most; unboxed, it
    // would make the future of every request that much larger to move.
    let list = Box::pin(query_dbs(config)).await;
    *LIST.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), list.clone()));
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

/// The owned databases, or the error listing them.
type DbList = Result<Arc<[String]>, DbError>;

/// The last list read, and when.
static LIST: Mutex<Option<(Instant, DbList)>> = Mutex::new(None);
/// Held by the one request refreshing [`LIST`].
static REFRESH: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The cached list, and whether it is still fresh.
fn cached_list() -> Option<(bool, DbList)> {
    LIST.lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|(at, list)| (at.elapsed() < LIST_TTL, list.clone()))
}

async fn query_dbs(config: &Config) -> Result<Arc<[String]>, DbError> {
    let mut cr = sql_db::cursor("postgres", true);
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
pub async fn db_list(config: &Config, force: bool, host: &str) -> Result<Vec<String>, ListError> {
    match list_dbs(config, force).await {
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
    config: &Config,
    session_db: Option<&str>,
    query_db: impl FnOnce() -> Option<String>,
    host: &str,
) -> (Option<String>, bool) {
    if let Some(db) = session_choice(config, session_db, host) {
        return (Some(db), false);
    }
    let owned = owned_dbs(config).await;
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
    config: &Config,
    session_db: Option<&str>,
    query_db: impl FnOnce() -> Option<String>,
    host: &str,
    now: Instant,
) -> Option<(Option<String>, bool)> {
    if let Some(db) = session_choice(config, session_db, host) {
        return Some((Some(db), false));
    }
    if let Some(names) = configured_names(config) {
        return Some(choose(config, session_db, query_db, host, Ok(&names)));
    }
    // The cached list itself (an `Arc`, not a copy), chosen from outside the lock: the
    // filter (a regex per request with `dbfilter`) does not hold up the other workers.
    let names = {
        let cache = LIST.lock().unwrap_or_else(|e| e.into_inner());
        let (at, list) = cache.as_ref()?;
        let fresh = now.saturating_duration_since(*at) < LIST_TTL;
        if !fresh && REFRESH.try_lock().is_ok() {
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
    (!db_filter(config, &[db.to_owned()], host).is_empty()).then(|| db.to_owned())
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
        Ok(all) if config.dbfilter.is_empty() && config.db_name.is_empty() => all.into(),
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

/// Whether the database `name` exists.
pub async fn exists(name: &str) -> Result<bool, DbError> {
    let mut cr = sql_db::cursor("postgres", true);
    let rows = cr
        .execute(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[inphms_sdk::abi::SqlValue::Text(name.into())],
        )
        .await?;
    let _ = cr.rollback().await;
    Ok(!rows.rows.is_empty())
}

/// Creates the database `name` from `db_template` when it does not exist (Odoo's
/// `_create_empty_database`); whether it was created.
pub async fn create_empty_database(config: &Config, name: &str) -> Result<bool, DbError> {
    if exists(name).await? {
        return Ok(false);
    }
    let pools = sql_db::pools();
    let (client, conn) = sql_db::connect_unpooled(pools.info(), "postgres").await?;
    let driver = tokio::spawn(conn);
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let sql = format!(
        "CREATE DATABASE {} ENCODING 'unicode' LC_COLLATE 'C' TEMPLATE {}",
        quote(name),
        quote(&config.db_template)
    );
    let result = client.batch_execute(&sql).await;
    drop(client);
    let _ = driver.await;
    match result {
        Ok(()) => {
            tracing::info!(target: TARGET, "Create database `{name}`.");
            Ok(true)
        }
        // Created meanwhile by another process.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {
            Ok(false)
        }
        Err(e) => Err(DbError::from_pg(&e)),
    }
}

/// Sets up everything database-related at start-up, on the current runtime: the connection
/// pools, the registries (on the server-wide addons `server_wide`), then [`init_databases`].
/// An error means a `-d` database failed to initialise (already logged).
pub async fn setup(
    config: &std::sync::Arc<Config>,
    set: &AddonSet,
    server_wide: Vec<std::sync::Arc<crate::modules::LoadedAddon>>,
) -> Result<(), Error> {
    sql_db::configure(config);
    sql_db::env::set_runtime(tokio::runtime::Handle::current());
    crate::service::cron::configure(config);
    registry::setup(std::sync::Arc::clone(config), server_wide);
    init_databases(config, set).await
}

/// Initialises the databases of `-d` before serving (Odoo's `preload_registries`): creates a
/// missing one and installs `base` there, installs `-i` and upgrades `-u` addons, then loads
/// its registry. Stops at the first database that fails, with the error.
pub async fn init_databases(config: &Config, set: &AddonSet) -> Result<(), Error> {
    let names = db_names(config);
    if names.is_empty() {
        if !config.init.is_empty() || !config.update.is_empty() {
            tracing::warn!(target: TARGET, "-i and -u need a database (-d): ignored");
        }
        return Ok(());
    }
    for db in names {
        init_database(config, set, &db).await.map_err(|e| {
            let e = Error::InitDatabase {
                db: db.clone(),
                source: Box::new(e),
            };
            tracing::error!(target: TARGET, "{e}");
            e
        })?;
    }
    Ok(())
}

async fn init_database(config: &Config, set: &AddonSet, db: &str) -> Result<(), Error> {
    let mut install: Vec<String> = config.init.clone();
    let created = create_empty_database(config, db)
        .await
        .map_err(|e| Error::database(db, e))?;
    if created && !install.iter().any(|n| n == "base") {
        install.push("base".into());
    }
    let initialized = loading::is_initialized(db)
        .await
        .map_err(|e| Error::database(db, e))?;
    // Installing anything installs base first (every addon depends on it).
    if !initialized && install.is_empty() {
        return Err(Error::NotInitialized { db: db.to_owned() });
    }
    if !install.is_empty() || !config.update.is_empty() {
        let summary = loading::load_modules(db, set, &install, &config.update)
            .await
            .map_err(|e| Error::database(db, e))?;
        if !summary.installed.is_empty() {
            tracing::info!(target: TARGET, "database {db}: installed {}", summary.installed.join(", "));
        }
        if !summary.upgraded.is_empty() {
            tracing::info!(target: TARGET, "database {db}: upgraded {}", summary.upgraded.join(", "));
        }
    }
    registry::Registry::new(db).await.map(|_| ())
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
}
