//! The cron wake-up (Odoo's `ir.cron._notifydb`): after a transaction that added a cron
//! trigger commits, `pg_notify('cron_trigger', db)` on the `cron_db` database, where the
//! cron workers of every host LISTEN (`service::cron`). It lives here, below the workers,
//! because the cursor sends it after its commit.

use super::{DbError, Pools};

/// The log target of the wake-up's failures: the cron service's.
const TARGET: &str = "inphms.service.cron";

/// Wakes the cron workers of every host (`pg_notify('cron_trigger', db)` on the pools'
/// `cron_db`);
/// a failure is logged (the workers' periodic pass still runs the job).
pub async fn notify_workers(pools: &Pools, db: &str) {
    // Outside of any transaction (autocommit): delivered at once.
    let result = match pools.get(pools.cron_db()).await {
        Ok(conn) => conn
            .execute("SELECT pg_notify('cron_trigger', $1)", &[&db])
            .await
            .map(|_| ())
            .map_err(|e| DbError::from_pg(&e)),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::warn!(target: TARGET, "cannot wake the cron workers through {}: {e}", pools.cron_db());
    }
}
