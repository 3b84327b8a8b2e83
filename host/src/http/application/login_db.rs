//! The database a `/web/session/authenticate` request logs in to. Odoo's
//! `addons/web/controllers/session.py` `authenticate(db, login, password)` logs in to `db`
//! (checked with `http.db_filter([db])`, then `Registry(db)`), whatever database the
//! request itself is bound to: the host serves such a JSON-RPC request on the application
//! of the `db` its params name when it is a visible database (the filter's) and its
//! registry loads, else on the request's own (whose handler answers "Database not found."
//! for another name).

use super::{Application, Ctx, RequestBody};
use serde_json::Value;
use std::sync::Arc;

/// The route whose params choose the request's database.
const AUTHENTICATE: &str = "/web/session/authenticate";

/// The `db` named by a JSON-RPC body's params, when it is a string.
fn named_db(body: &[u8]) -> Option<String> {
    let call: Value = serde_json::from_slice(body).ok()?;
    call.get("params")?.get("db")?.as_str().map(str::to_owned)
}

impl Application {
    /// For a `POST /web/session/authenticate` on this (database-less) application whose
    /// params name a database other than `current` (the request's): that database's
    /// application, when the filter accepts the name and its registry loads.
    pub(super) async fn login_db_app(
        &self,
        ctx: &Ctx,
        current: Option<&str>,
        body: &RequestBody,
    ) -> Option<Arc<Application>> {
        // A spooled body is large: no login's (parsing it is not for the event loop).
        if self.db.is_some() || ctx.path() != AUTHENTICATE || body.is_spooled() {
            return None;
        }
        let db = named_db(body)?;
        if current == Some(db.as_str()) {
            return None;
        }
        // As `?db=`: a name among the visible databases (the filter's, from the cached
        // list), so that a client cannot make the host try to open any name it sends.
        let (chosen, _) = crate::sql_db::dblist::select_db(
            self.services.databases(),
            &self.config,
            None,
            || Some(db.clone()),
            ctx.db_host(),
        )
        .await;
        if chosen.as_deref() != Some(db.as_str()) {
            return None;
        }
        let registry = match Box::pin(self.services.registries.get(&db)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(target: "inphms.http", "authenticate on database {db:?}: {e}; answered on the request's database");
                return None;
            }
        };
        self.databases.get(self, &registry).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::named_db;

    #[test]
    fn the_db_is_read_from_the_params_only_when_a_string() {
        let call = br#"{"jsonrpc":"2.0","method":"call","params":{"db":"b","login":"x"}}"#;
        assert_eq!(named_db(call).as_deref(), Some("b"));
        assert_eq!(named_db(br#"{"params":{"db":3}}"#), None);
        assert_eq!(named_db(br#"{"params":{}}"#), None);
        assert_eq!(named_db(b"not json"), None);
    }
}
