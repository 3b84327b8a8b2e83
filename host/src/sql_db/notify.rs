//! Notifications sent after a commit, on the `cron_db` database where the hosts LISTEN: the
//! cron wake-up (Odoo's `ir.cron._notifydb`: `pg_notify('cron_trigger', db)` after a
//! transaction that added a trigger, heard by `service::cron`) and the NOTIFYs addons queue
//! for after their commit (the bus's `imbus`, Odoo's post-commit `pg_notify` on
//! `postgres`, heard by [`super::listen`]). It lives here, below the workers, because the
//! cursor sends them after its commit.

use super::cursor::PostCommit;
use super::{DbError, Pools};

/// The log target of the wake-up's failures: the cron service's.
const TARGET: &str = "inphms.service.cron";

/// Runs the actions a transaction of `db` queued for after its commit: the cron wake-up,
/// then every NOTIFY in one statement, in the order they were queued.
pub async fn post_commit(pools: &Pools, db: &str, actions: Vec<PostCommit>) {
    let mut channels: Vec<String> = Vec::new();
    let mut payloads: Vec<String> = Vec::new();
    for action in actions {
        match action {
            PostCommit::NotifyCron => notify_workers(pools, db).await,
            PostCommit::Notify { channel, payload } => {
                channels.push(channel);
                payloads.push(payload);
            }
        }
    }
    if !channels.is_empty() {
        notify_all(pools, &channels, &payloads).await;
    }
}

/// `pg_notify(channel, payload)` for each pair, in order, in one statement on `cron_db`
/// (autocommit: delivered at once); a failure is logged (the listeners' resync on
/// reconnection, or their clients' `last`, recover what was missed).
async fn notify_all(pools: &Pools, channels: &[String], payloads: &[String]) {
    let result = match pools.get(pools.cron_db()).await {
        Ok(conn) => conn
            .execute(
                "SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(c, p, n) ORDER BY n",
                &[&channels, &payloads],
            )
            .await
            .map(|_| ())
            .map_err(|e| DbError::from_pg(&e)),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::warn!(target: "inphms.sql_db", "cannot send {} notification(s) on {} ({}): {e}", channels.len(), pools.cron_db(), channels.join(","));
    }
}

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
