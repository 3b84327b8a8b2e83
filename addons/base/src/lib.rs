//! The `base` addon: the kernel every addon depends on. Its `post_load` records that it ran
//! (visible in the log and at `GET /base/status`), it holds the core cron handlers, and the
//! `users` command (`users_command`), and Odoo's external API: the `/xmlrpc` and `/jsonrpc`
//! routes and the `res.users` RPC methods (`rpc`). Its tables are created by `data/base.sql`; the
//! identity logic (passwords, login, API keys) is its library `base_identity`, which `web`
//! links too.

mod rpc;
mod users_command;

use inphms_sdk::{cron, post_load, route, CronContext, Host, Json, Request, Result};
use serde_json::json;
use std::sync::atomic::{AtomicU32, Ordering};

static POST_LOADS: AtomicU32 = AtomicU32::new(0);

#[post_load]
fn post_load(host: &Host) -> Result<()> {
    let n = POST_LOADS.fetch_add(1, Ordering::SeqCst) + 1;
    tracing::info!(
        target: "inphms.addons.base",
        "base: post_load (run {n}, host {})",
        host.version().unwrap_or("?")
    );
    Ok(())
}

/// How many times `post_load` ran in this process (exactly once per load).
#[route("/base/status", auth = "none", save_session = false)]
fn status(_req: &mut Request) -> Json<serde_json::Value> {
    Json(json!({"post_load_runs": POST_LOADS.load(Ordering::SeqCst)}))
}

/// The auto-vacuum job of a database (Odoo's `base.autovacuum_job`).
#[cron("base.autovacuum")]
fn autovacuum(ctx: &mut CronContext) -> Result<()> {
    let mut cr = ctx.cursor()?;
    // Odoo's `ir.cron.trigger._gc_cron_triggers`: triggers more than a week old.
    let gone = cr
        .execute(
            "DELETE FROM ir_cron_trigger WHERE call_at < (now() AT TIME ZONE 'UTC') - interval '1 week'",
            &[],
        )?
        .rowcount();
    tracing::info!(target: "inphms.addons.base", "autovacuum of {}: {gone} old cron trigger(s) removed", ctx.db);
    Ok(())
}

inphms_sdk::addon!();
