//! Retention (Odoo's `bus.bus._gc_messages`): the `bus.gc` cron job deletes the messages
//! older than `bus_retention` seconds (`[options]` of the configuration file; Odoo's
//! `2 * TIMEOUT`, 100 s, by default), at most [`GC_UNLINK_LIMIT`] a run. Cron runs a job
//! on one host at a time. A client reconnecting with `last` gets what it missed within the
//! retention.

use inphms_sdk::{cron, params, CronContext, Host, Result};

/// The default retention, in seconds.
pub const DEFAULT_RETENTION_SECS: u64 = 100;
/// Odoo 18's `GC_UNLINK_LIMIT`.
pub const GC_UNLINK_LIMIT: i64 = 100_000;

/// The retention: `bus_retention` in `[options]`, in seconds.
pub fn retention_secs() -> u64 {
    Host.config::<u64>("options", "bus_retention")
        .or_else(|| {
            Host.config::<String>("options", "bus_retention")
                .and_then(|s| s.trim().parse().ok())
        })
        .unwrap_or(DEFAULT_RETENTION_SECS)
}

#[cron("bus.gc")]
fn gc(ctx: &mut CronContext) -> Result<()> {
    let retention = retention_secs() as i64;
    let mut cr = ctx.cursor()?;
    let deleted = cr.execute(
        "DELETE FROM bus_bus WHERE id IN (SELECT id FROM bus_bus \
         WHERE create_date < now() AT TIME ZONE 'UTC' - $1::bigint * interval '1 second' \
         ORDER BY id LIMIT $2)",
        params![retention, GC_UNLINK_LIMIT],
    )?;
    if deleted.rowcount() > 0 {
        tracing::info!(target: "inphms.addons.bus.gc", "deleted {} bus message(s) older than {retention}s", deleted.rowcount());
    }
    if deleted.rowcount() as i64 == GC_UNLINK_LIMIT {
        cr.trigger_cron("bus.gc")?;
    }
    Ok(())
}
