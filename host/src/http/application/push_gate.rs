//! The session check of a websocket's pushes (Odoo's `Websocket._dispatch_bus_notifications`:
//! before each push, the socket's session must still be in the store and pass
//! `check_session`). A socket opened with a session gets a [`SessionGate`]: a message sent to
//! it from outside its own calls (the bus's dispatcher thread, another request) goes only
//! while the session of the id it was opened with is still stored and, with a user in it,
//! its session token still matches (logged out over HTTP, password changed, user
//! deactivated: no). The verdict is kept [`RECHECK`] at most; a session that no longer
//! holds refuses the push and closes the socket with 4001 (`SESSION_EXPIRED`). A check
//! that fails (the database unreachable) refuses that push only.

use super::*;
use crate::http::websocket::{self, PushGate};
use std::sync::Mutex;
use std::time::Instant;

/// How long a verdict is trusted (Odoo checks on every push; at most once a second here).
pub(super) const RECHECK: Duration = Duration::from_secs(1);

/// The gate of one socket opened with session id `sid`.
pub(super) struct SessionGate {
    app: Arc<Application>,
    sid: Arc<str>,
    /// The last verdict and when; `None`: never checked.
    last: Mutex<Option<(Instant, bool)>>,
}

impl SessionGate {
    pub(super) fn new(app: Arc<Application>, sid: Arc<str>) -> Self {
        SessionGate {
            app,
            sid,
            last: Mutex::new(None),
        }
    }

    /// Whether the session still holds; `Err`: it could not be told.
    fn check(&self) -> Result<bool, String> {
        let stored = match self.app.sessions.get(&self.sid) {
            Ok(Some(stored)) => stored,
            Ok(None) => return Ok(false),
            Err(e) => return Err(e.to_string()),
        };
        let uid = match stored.data.0.get("uid") {
            None | Some(serde_json::Value::Null) => return Ok(true),
            Some(v) => v.as_i64(),
        };
        let (Some(query), Some(db)) = (
            self.app.session_token_query.as_deref(),
            self.app.db.as_deref(),
        ) else {
            return Ok(true);
        };
        let Some(uid) = uid else {
            return Ok(false);
        };
        let token = stored
            .data
            .0
            .get("session_token")
            .and_then(serde_json::Value::as_str);
        let dbs = self.app.services.databases();
        let run = || {
            crate::sql_db::env::transaction(dbs, db, true, 1, Some(Duration::from_secs(5)), || {
                Checked(super::auth::expected_token(dbs, query, uid, &self.sid))
            })
        };
        // The transaction waits on the database: off the runtime's workers.
        let checked = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
            Ok(_) => return Err("cannot wait for the database on this thread".into()),
            Err(_) => run(),
        };
        match checked {
            Ok(Checked(Ok(Some(expected)))) => {
                Ok(token.is_some_and(|t| super::auth::consteq(t, &expected)))
            }
            Ok(Checked(Ok(None))) => Ok(false),
            Ok(Checked(Err(e))) => Err(e.message.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl PushGate for SessionGate {
    fn allows(&self, socket: u64) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, verdict)) = *last {
            if at.elapsed() < RECHECK {
                return verdict;
            }
        }
        match self.check() {
            Ok(true) => {
                *last = Some((Instant::now(), true));
                true
            }
            Ok(false) => {
                *last = Some((Instant::now(), false));
                tracing::info!(target: "inphms.http", "websocket {socket}: session expired (logged out, or its token changed): push refused, closed with 4001");
                websocket::shut(
                    &self.app.services.websockets,
                    socket,
                    websocket::code::SESSION_EXPIRED,
                    "Session expired",
                );
                false
            }
            Err(e) => {
                tracing::warn!(target: "inphms.http", "websocket {socket}: cannot check its session ({e}): push refused");
                false
            }
        }
    }
}

/// A token check's result, as a transaction's attempt (a failed query rolls back).
struct Checked(Result<Option<String>, inphms_sdk::abi::ErrorInfo>);

impl crate::sql_db::env::AttemptOutcome for Checked {
    fn failed(&self) -> bool {
        self.0.is_err()
    }
}
