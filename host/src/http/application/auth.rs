//! The session token (Odoo's `security.check_session`), checked on the handler's thread in
//! the request's transaction: an `auth = "user"` request whose session's token no longer
//! matches its user's credentials (password, login or `active` changed, user gone, database
//! secret changed) is answered "Session expired" and its session logged out; and a session
//! rotated with a user in it gets its token for the new id there
//! ([`Application::after_handler`]).
//!
//! The token's key is the row of the statement an addon declares in its manifest
//! (`session_token_query`, `base`'s over `res_users`), so the host knows no table of
//! `base`'s; the token itself is `inphms_sdk::session::session_token`, shared with `base`.

use super::*;
use crate::http::request_session::NEW_SID_KEY;
use crate::sql_db::env as db_env;
use inphms_sdk::abi::{ErrorKind, SqlValue as AbiValue};

impl Application {
    /// `Some(answer)` when the request's session must be refused: an `auth = "user"`
    /// route, a database, a logged-in session whose token does not match (or the query
    /// failed). `None` lets the handler run. Runs inside the request's transaction.
    pub(super) fn check_session_token(&self, auth: &str, r: &HttpRequest<'_>) -> Option<Outcome> {
        let query = self.session_token_query.as_deref()?;
        if auth != "user" || self.db.is_none() {
            return None;
        }
        let session: Map<String, Value> = match serde_json::from_str(r.session.as_str()) {
            Ok(Value::Object(m)) => m,
            _ => return Some(expired(Map::new())),
        };
        let uid = session.get("uid").and_then(Value::as_i64)?;
        let stored = session.get("session_token").and_then(Value::as_str);
        match expected_token(query, uid, r.session_id.as_str()) {
            Ok(Some(expected)) if stored.is_some_and(|t| consteq(t, &expected)) => None,
            Ok(_) => {
                tracing::info!(target: "inphms.http", "session of user #{uid} expired on {} (its session token no longer matches)", self.db.as_deref().unwrap_or(""));
                Some(expired(session))
            }
            Err(e) => Some(Outcome {
                error: ROption::RSome(e),
                ..Outcome::default()
            }),
        }
    }

    /// After a handler on a database: a session it asked to rotate with a user in it
    /// (a login) gets its new id drawn here and its token computed for that id in the
    /// request's transaction (Odoo's `FilesystemSessionStore.rotate`), the id handed to the
    /// session's save under [`NEW_SID_KEY`].
    pub(super) fn after_handler(&self, outcome: &mut Outcome) {
        let Some(query) = self.session_token_query.as_deref() else {
            return;
        };
        if !outcome.rotate_session || outcome.error.is_some() || self.db.is_none() {
            return;
        }
        let Some(text) = outcome.session.as_ref().into_option() else {
            return;
        };
        let Ok(Value::Object(mut session)) = serde_json::from_str::<Value>(text) else {
            return;
        };
        let Some(uid) = session.get("uid").and_then(Value::as_i64) else {
            return;
        };
        let sid = self.sessions.new_sid();
        match expected_token(query, uid, &sid) {
            Ok(token) => {
                session.insert(
                    "session_token".into(),
                    token.map(Value::String).unwrap_or(Value::Null),
                );
                session.insert(NEW_SID_KEY.into(), Value::String(sid));
                outcome.session = ROption::RSome(Value::Object(session).to_string().into());
            }
            Err(e) => {
                outcome.error = ROption::RSome(e);
            }
        }
    }
}

/// The token of `uid` for `sid`, from the declared statement's row; `None` when there is
/// not exactly one row (the user is gone).
#[allow(clippy::result_large_err)] // The error becomes the outcome's, moved once: unboxed.
fn expected_token(
    query: &str,
    uid: i64,
    sid: &str,
) -> Result<Option<String>, inphms_sdk::abi::ErrorInfo> {
    let cursor = db_env::current().map_err(|e| db_env::error_info(&e))?;
    let rows = db_env::execute(cursor, query, RVec::from(vec![AbiValue::Int(uid)]))
        .map_err(|e| db_env::error_info(&e))?;
    let [row] = rows.rows.as_slice() else {
        return Ok(None);
    };
    let values: Vec<inphms_sdk::SqlValue> = row.iter().cloned().map(Into::into).collect();
    Ok(Some(inphms_sdk::session::session_token(&values, sid)))
}

/// Odoo's `consteq`: equal strings, in time that depends only on their lengths.
fn consteq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// "Session expired", with the session logged out (`keep_db`, as Odoo's
/// `_authenticate_explicit` does) and its id rotated.
fn expired(mut session: Map<String, Value>) -> Outcome {
    let db = session.remove("db").unwrap_or(Value::Null);
    let debug = session.remove("debug");
    let mut fresh = crate::http::session::SessionData::default_session().into_map();
    fresh.insert("db".into(), db);
    if let Some(debug) = debug {
        fresh.insert("debug".into(), debug);
    }
    Outcome {
        error: ROption::RSome(disp_error(ErrorKind::SessionExpired, "Session expired")),
        session: ROption::RSome(Value::Object(fresh).to_string().into()),
        rotate_session: true,
        ..Outcome::default()
    }
}
