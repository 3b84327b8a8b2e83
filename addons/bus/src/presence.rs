//! Presence (Odoo's `bus.presence`, minimal): a logged-in user's `last_poll`,
//! `last_presence` and status (`online`, `away` past [`AWAY_TIMER`] of inactivity,
//! `offline` once the socket closes).

use inphms_sdk::{params, Cursor, Result};

/// Odoo's `AWAY_TIMER`, in milliseconds.
pub const AWAY_TIMER_MS: i64 = 1_800_000;

/// Odoo's `update_presence`: `last_poll` now, `last_presence` now less the inactivity.
pub fn update(cr: &mut Cursor, uid: i64, inactivity_period_ms: i64) -> Result<()> {
    let inactivity = inactivity_period_ms.clamp(0, 10 * 365 * 86_400_000);
    let status = if inactivity > AWAY_TIMER_MS {
        "away"
    } else {
        "online"
    };
    cr.execute(
        "INSERT INTO bus_presence (user_id, last_poll, last_presence, status) \
         VALUES ($1, now() AT TIME ZONE 'UTC', \
                 now() AT TIME ZONE 'UTC' - $2::bigint * interval '1 millisecond', $3) \
         ON CONFLICT (user_id) WHERE user_id IS NOT NULL DO UPDATE SET \
         last_poll = EXCLUDED.last_poll, last_presence = EXCLUDED.last_presence, \
         status = EXCLUDED.status",
        params![uid, inactivity, status],
    )?;
    Ok(())
}

/// Odoo 18's `_on_websocket_closed`: the user is offline.
pub fn offline(cr: &mut Cursor, uid: i64) -> Result<()> {
    cr.execute(
        "UPDATE bus_presence SET status = 'offline' WHERE user_id = $1",
        params![uid],
    )?;
    Ok(())
}
