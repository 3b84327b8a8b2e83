//! Registry and cache signaling between hosts (Odoo's `Registry.setup_signaling`,
//! `get_sequences`, `check_signaling` and `signal_changes`, `odoo/modules/registry.py`):
//! sequences in each database, bumped by the host that changed what the others hold in
//! memory (`-i`/`-u`: `base_registry_signaling`), read by every host before it serves a
//! request for that database with a registry it already has.
//!
//! The sequences are Odoo 17/18's: `base_registry_signaling` and one
//! `base_cache_signaling_<key>` per cache key (`default`, `assets`, `templates`, `routing`,
//! `groups`), created when missing (`START WITH 1`, then one `nextval`, as Odoo), so an
//! Odoo server and Inphms hosts on one database see each other's signals. A registry here
//! holds only data read from the database (installed addons, the secret), so a changed
//! cache sequence renews it as a changed registry sequence does.
//!
//! How often it is read: see [`CHECK_INTERVAL`].

use crate::sql_db::{Databases, DbError};
use std::time::Duration;

/// The registry's sequence, then the caches' (Odoo's `_CACHES_BY_KEY` order).
pub const SEQUENCES: [&str; 6] = [
    "base_registry_signaling",
    "base_cache_signaling_default",
    "base_cache_signaling_assets",
    "base_cache_signaling_templates",
    "base_cache_signaling_routing",
    "base_cache_signaling_groups",
];

/// A host reads the sequences of a database at most once per this, by the first request
/// for it after the interval (one query on a pooled connection; the other requests in
/// between use the registry they have). Odoo reads them at every request (a round trip
/// each); this bounds what another host's change takes to be seen (well under the 1 s a
/// fresh route must take to appear) while a busy host pays one query per interval, not one
/// per request.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// The longest a request waits for the check (a connection and one query); past it, it
/// goes on with the registry it has.
pub const READ_TIMEOUT: Duration = Duration::from_millis(200);

/// The values of [`SEQUENCES`] in one database.
pub type Sequences = [i64; 6];

/// Creates the sequences missing in `db` (Odoo's `setup_signaling`) and returns their
/// values.
pub async fn setup(dbs: &Databases, db: &str) -> Result<Sequences, DbError> {
    let conn = dbs.pools().get(db).await?;
    let existing = conn
        .query(
            "SELECT sequence_name::text FROM information_schema.sequences WHERE sequence_name::text = ANY($1)",
            &[&SEQUENCES.to_vec()],
        )
        .await
        .map_err(|e| DbError::from_pg(&e))?;
    for name in SEQUENCES {
        if existing.iter().any(|r| r.get::<_, String>(0) == name) {
            continue;
        }
        // Hosts starting together may race: an existing sequence is fine.
        let created = conn
            .batch_execute(&format!(
                "CREATE SEQUENCE IF NOT EXISTS {name} INCREMENT BY 1 START WITH 1; SELECT nextval('{name}')"
            ))
            .await;
        if let Err(e) = created {
            if e.code() != Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                return Err(DbError::from_pg(&e));
            }
        }
    }
    drop(conn);
    read(dbs, db).await
}

/// The current values (Odoo's `get_sequences`): one query.
pub async fn read(dbs: &Databases, db: &str) -> Result<Sequences, DbError> {
    let conn = dbs.pools().get(db).await?;
    let stmt = conn
        .prepare_cached(&select_sql())
        .await
        .map_err(|e| DbError::from_pg(&e))?;
    let row = conn
        .query_one(&stmt, &[])
        .await
        .map_err(|e| DbError::from_pg(&e))?;
    let mut out = [0i64; 6];
    for (i, v) in out.iter_mut().enumerate() {
        *v = row.get(i);
    }
    Ok(out)
}

fn select_sql() -> String {
    let values: Vec<String> = SEQUENCES
        .iter()
        .map(|s| format!("{s}.last_value"))
        .collect();
    format!("SELECT {} FROM {}", values.join(", "), SEQUENCES.join(", "))
}

/// Tells the other hosts that the registry of `db` changed (Odoo's `signal_changes` with
/// the registry invalidated): `nextval('base_registry_signaling')`, committed at once.
pub async fn signal_registry_change(dbs: &Databases, db: &str) -> Result<i64, DbError> {
    setup(dbs, db).await?;
    let conn = dbs.pools().get(db).await?;
    let row = conn
        .query_one("SELECT nextval('base_registry_signaling')", &[])
        .await
        .map_err(|e| DbError::from_pg(&e))?;
    Ok(row.get(0))
}

/// Tells the other hosts that the caches of `db` changed (Odoo's `signal_changes` after a
/// `registry.clear_cache()`): `nextval('base_cache_signaling_default')`, committed at once,
/// when the sequence exists (a database no host built a registry of has no cache to
/// clear). Call it after the change's commit: a host that saw the bump before the commit
/// could cache the old rows again. The new value, or `None` without the sequence.
pub async fn signal_cache_change(dbs: &Databases, db: &str) -> Result<Option<i64>, DbError> {
    let conn = dbs.pools().get(db).await?;
    let rows = conn
        .query(
            "SELECT nextval(c.oid::regclass) FROM pg_class c \
             WHERE c.relname = 'base_cache_signaling_default' AND c.relkind = 'S' \
             AND pg_table_is_visible(c.oid)",
            &[],
        )
        .await
        .map_err(|e| DbError::from_pg(&e))?;
    Ok(rows.first().map(|r| r.get(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_query_reads_every_sequence() {
        assert_eq!(
            select_sql(),
            "SELECT base_registry_signaling.last_value, base_cache_signaling_default.last_value, \
             base_cache_signaling_assets.last_value, base_cache_signaling_templates.last_value, \
             base_cache_signaling_routing.last_value, base_cache_signaling_groups.last_value \
             FROM base_registry_signaling, base_cache_signaling_default, base_cache_signaling_assets, \
             base_cache_signaling_templates, base_cache_signaling_routing, base_cache_signaling_groups"
        );
    }
}
