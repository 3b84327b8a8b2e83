//! The session check of a websocket's pushes (Odoo's `Websocket._dispatch_bus_notifications`:
//! before each push, the socket's session must still be in the store and pass
//! `check_session`). A socket opened with a session gets a [`SessionGate`]: a message sent to
//! it from outside its own calls (the bus's dispatcher thread, another request) goes only
//! while the session of the id it was opened with is still stored and, with a user in it,
//! its session token still matches (logged out over HTTP, password changed, user
//! deactivated: no). The verdict is kept [`RECHECK`] at most; a session that no longer
//! holds refuses the push and closes the socket with 4001 (`SESSION_EXPIRED`). A check
//! that fails (the database unreachable) refuses that push only.
//!
//! The check runs where the push is made: a sync `send_queued` (the bus's thread, an HTTP
//! request, a sync callback's commit) waits for its statement on that thread
//! (`block_in_place` on a runtime worker); the sends of a committed async callback, flushed
//! on the socket's task, await it ([`PushGate::allows_async`]: the session read on the
//! blocking pool, the statement on a cursor of its own), holding no worker.

use super::*;
use crate::http::websocket::{self, PushGate};
use std::future::Future;
use std::pin::Pin;
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

    /// Whether the session still holds; `Err`: it could not be told. On this thread: a
    /// runtime worker waits for the database with `block_in_place` (a push from an HTTP
    /// request, from a sync callback's thread; a committed async callback's sends await
    /// [`SessionGate::check_async`] instead).
    fn check(&self) -> Result<bool, String> {
        let stored = self
            .app
            .sessions
            .get(&self.sid)
            .map_err(|e| e.to_string())?;
        let (query, db, uid, token) = match self.to_check(stored) {
            ToCheck::Verdict(verdict) => return Ok(verdict),
            ToCheck::Token(query, db, uid, token) => (query, db, uid, token),
        };
        let dbs = self.app.services.databases();
        let run = || {
            crate::sql_db::env::transaction(dbs, db, true, 1, Some(CHECK_TIMEOUT), || {
                Checked(super::auth::expected_token(dbs, query, uid, &self.sid))
            })
        };
        // The transaction waits on the database: off the runtime's workers.
        let checked = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
            Ok(_) => return Err("cannot wait for the database on this thread".into()),
            Err(_) => run(),
        };
        verdict(token.as_deref(), checked)
    }

    /// [`SessionGate::check`] awaited on the runtime: the session read on the blocking
    /// pool (as an async callback's), the token's statement awaited on a cursor of its own
    /// (`sql_db::env_async`), so that a check waiting for PostgreSQL holds no thread.
    async fn check_async(&self) -> Result<bool, String> {
        let (app, sid) = (Arc::clone(&self.app), Arc::clone(&self.sid));
        let stored = tokio::task::spawn_blocking(move || app.sessions.get(&sid))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let (query, db, uid, token) = match self.to_check(stored) {
            ToCheck::Verdict(verdict) => return Ok(verdict),
            ToCheck::Token(query, db, uid, token) => (query, db, uid, token),
        };
        let dbs = self.app.services.databases();
        let sid = &*self.sid;
        let checked = crate::sql_db::env_async::transaction(
            dbs,
            db,
            true,
            1,
            Some(CHECK_TIMEOUT),
            |cursor| async move {
                let lookup = super::auth::Awaited { dbs, cursor };
                Checked(super::auth::expected_token_by(&lookup, query, uid, sid).await)
            },
        )
        .await;
        verdict(token.as_deref(), checked)
    }

    /// What the stored session (`None`: gone) leaves to check.
    fn to_check(&self, stored: Option<crate::http::session::StoredSession>) -> ToCheck<'_> {
        let Some(stored) = stored else {
            return ToCheck::Verdict(false);
        };
        let uid = match stored.data.0.get("uid") {
            None | Some(serde_json::Value::Null) => return ToCheck::Verdict(true),
            Some(v) => v.as_i64(),
        };
        let (Some(query), Some(db)) = (
            self.app.session_token_query.as_deref(),
            self.app.db.as_deref(),
        ) else {
            return ToCheck::Verdict(true);
        };
        let Some(uid) = uid else {
            return ToCheck::Verdict(false);
        };
        let token = stored
            .data
            .0
            .get("session_token")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        ToCheck::Token(query, db, uid, token)
    }

    /// The last verdict, while it is trusted ([`RECHECK`]).
    fn trusted(last: &Option<(Instant, bool)>) -> Option<bool> {
        match *last {
            Some((at, verdict)) if at.elapsed() < RECHECK => Some(verdict),
            _ => None,
        }
    }

    /// Records a check's result in `last`: whether the push goes; a session that no longer
    /// holds closes the socket with 4001.
    fn record(
        &self,
        last: &mut Option<(Instant, bool)>,
        socket: u64,
        checked: Result<bool, String>,
    ) -> bool {
        match checked {
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

    fn last(&self) -> std::sync::MutexGuard<'_, Option<(Instant, bool)>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl PushGate for SessionGate {
    fn allows(&self, socket: u64) -> bool {
        // Held through the check: concurrent pushes wait for one verdict.
        let mut last = self.last();
        if let Some(verdict) = SessionGate::trusted(&last) {
            return verdict;
        }
        let checked = self.check();
        self.record(&mut last, socket, checked)
    }

    fn allows_async(&self, socket: u64) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async move {
            if let Some(verdict) = SessionGate::trusted(&self.last()) {
                return verdict;
            }
            // Not held across the wait (a std lock): concurrent pushes may each check.
            let checked = self.check_async().await;
            self.record(&mut self.last(), socket, checked)
        })
    }
}

/// How long a push's check may wait for its statement.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// What a stored session leaves to check: a verdict already, or the token of a user (the
/// statement, the database, the user's id, the session's `session_token`).
enum ToCheck<'a> {
    Verdict(bool),
    Token(&'a str, &'a str, i64, Option<String>),
}

/// Whether the session's `token` is the one the check expected.
fn verdict(
    token: Option<&str>,
    checked: Result<Checked, crate::sql_db::DbError>,
) -> Result<bool, String> {
    match checked {
        Ok(Checked(Ok(Some(expected)))) => {
            Ok(token.is_some_and(|t| super::auth::consteq(t, &expected)))
        }
        Ok(Checked(Ok(None))) => Ok(false),
        Ok(Checked(Err(e))) => Err(e.message.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// A token check's result, as a transaction's attempt (a failed query rolls back).
struct Checked(Result<Option<String>, inphms_sdk::abi::ErrorInfo>);

impl crate::sql_db::env::AttemptOutcome for Checked {
    fn failed(&self) -> bool {
        self.0.is_err()
    }
}
