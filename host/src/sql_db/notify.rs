//! The cron wake-up (Odoo's `ir.cron._notifydb`): after a transaction that added a cron
//! trigger commits, `pg_notify('cron_trigger', db)` on the `cron_db` database, where the
//! cron workers of every host LISTEN (`service::cron`). It lives here, below the workers,
//! because the cursor sends it after its commit.

use super::{DbError, Pools};
use crate::config::Config;
use std::sync::RwLock;

/// The log target of the wake-up's failures: the cron service's.
const TARGET: &str = "inphms.service.cron";

static CRON_DB: RwLock<String> = RwLock::new(String::new());

/// The database the cron workers LISTEN on (`cron_db`, `postgres` until configured).
pub fn cron_db() -> String {
    let db = CRON_DB.read().unwrap_or_else(|e| e.into_inner()).clone();
    if db.is_empty() {
        "postgres".into()
    } else {
        db
    }
}

/// Remembers the database the workers LISTEN on (the `cron_db` option).
pub fn configure(config: &Config) {
    *CRON_DB.write().unwrap_or_else(|e| e.into_inner()) = config.cron_db.clone();
}

/// Wakes the cron workers of every host (`pg_notify('cron_trigger', db)` on `cron_db`);
/// a failure is logged (the workers' periodic pass still runs the job).
pub async fn notify_workers(pools: &Pools, db: &str) {
    // Outside of any transaction (autocommit): delivered at once.
    let result = match pools.get(&cron_db()).await {
        Ok(conn) => conn
            .execute("SELECT pg_notify('cron_trigger', $1)", &[&db])
            .await
            .map(|_| ())
            .map_err(|e| DbError::from_pg(&e)),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::warn!(target: TARGET, "cannot wake the cron workers through {}: {e}", cron_db());
    }
}
