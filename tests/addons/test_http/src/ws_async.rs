//! Websockets served by async event callbacks (`AsyncWsHandler`, `serve_async`):
//! `/test_http/ws_async` greets with `open <socket id>`, then answers `count` with the
//! number of `count`s this session has seen (kept in the session, saved after each
//! callback), `fail` by failing and `panic` by panicking (the host closes with 1011),
//! `forever` by never returning (cancelled at `limit_time_real`), `sleep <ms>` with
//! `slept <ms>` after awaiting that long, `login <login>` by logging that active user in
//! (its id read on the async cursor; the host records the session token for the socket's
//! session) with `logged in <id>` (`no user <login>` without one), `uid` with the user the
//! callback runs as (`uid <id>`, `uid none`), `to <socket id> <text>` by pushing the text
//! to that socket (sent once the callback commits, through that socket's push gate) with
//! `sent to <socket id>`, and echoes anything else after awaiting a host timer for a
//! second (no thread held meanwhile). `/test_http/ws_async_user` (`auth = "user"`) and
//! `/test_http/ws_async_public` (`auth = "public"`) serve the same.
//! `/test_http/ws_user_async` (`auth = "user"`) answers each message with `user <login>`
//! after logging it (the sync `/test_http/ws_user`'s twin, for the session token's check).

use inphms_sdk::{params, route, time, AsyncWsHandler, Error, Message, Request, Result, WebSocket};
use std::time::Duration;

struct AsyncEcho;

impl AsyncWsHandler for AsyncEcho {
    async fn on_open(&mut self, ws: &WebSocket, _req: &mut Request<'_>) -> Result<()> {
        ws.send(format!("open {}", ws.id()))
    }

    async fn on_message(
        &mut self,
        ws: &WebSocket,
        req: &mut Request<'_>,
        message: Message,
    ) -> Result<()> {
        match message.as_text() {
            Some("count") => {
                // A wait between the read and the write: the session stays the callback's.
                time::sleep(Duration::from_millis(50)).await;
                let n: u64 = req.session.get("ws_async_count").unwrap_or(0) + 1;
                req.session.set("ws_async_count", n);
                ws.send(format!("count {n}"))
            }
            Some("fail") => {
                ws.send("never sent")?;
                time::sleep(Duration::from_millis(10)).await;
                Err(Error::internal("async websocket callback failure"))
            }
            Some("panic") => {
                ws.send("never sent")?;
                time::sleep(Duration::from_millis(10)).await;
                panic!("secret async websocket callback panic")
            }
            Some("forever") => {
                ws.send("never sent")?;
                time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            }
            Some(t) if t.starts_with("login ") => {
                let login = &t["login ".len()..];
                let mut cr = req.async_cursor()?;
                let rows = cr
                    .execute(
                        "SELECT id FROM res_users WHERE login = $1 AND active",
                        params![login],
                    )
                    .await?;
                let Some(row) = rows.first() else {
                    return ws.send(format!("no user {login}"));
                };
                let uid: i64 = row.get("id")?;
                req.session.finalize_login(login, uid);
                ws.send(format!("logged in {uid}"))
            }
            Some("uid") => match req.session.uid() {
                Some(uid) => ws.send(format!("uid {uid}")),
                None => ws.send("uid none"),
            },
            Some(t) if t.starts_with("to ") => {
                let (id, text) = t["to ".len()..].split_once(' ').unwrap_or(("", ""));
                let id: u64 = id.parse().unwrap_or(0);
                WebSocket::from_id(id).send(text)?;
                ws.send(format!("sent to {id}"))
            }
            Some(t) if t.starts_with("sleep ") => {
                let ms: u64 = t["sleep ".len()..].parse().unwrap_or(0);
                time::sleep(Duration::from_millis(ms)).await;
                ws.send(format!("slept {ms}"))
            }
            _ => {
                time::sleep(Duration::from_secs(1)).await;
                ws.send(message)
            }
        }
    }

    async fn on_close(&mut self, ws: &WebSocket, _req: &mut Request<'_>, code: u16, _: &str) {
        time::sleep(Duration::from_millis(10)).await;
        tracing::info!(target: "inphms.addons.test_http", "test_http: ws_async closed with {code} (socket {})", ws.id());
    }
}

#[route("/test_http/ws_async", auth = "none", websocket = true)]
fn ws_async(req: &mut Request) -> Result<()> {
    req.websocket()?.serve_async(AsyncEcho)
}

/// An async event websocket answering each message with `user <login>`, the session's
/// login, each call logged (a test reads whether a callback ran).
struct AsyncWhoami;

impl AsyncWsHandler for AsyncWhoami {
    async fn on_message(
        &mut self,
        ws: &WebSocket,
        req: &mut Request<'_>,
        message: Message,
    ) -> Result<()> {
        let text = message.as_text().unwrap_or_default();
        tracing::info!(target: "inphms.addons.test_http", "test_http: ws_user_async got {text} (socket {})", ws.id());
        time::sleep(Duration::from_millis(10)).await;
        ws.send(format!("user {}", req.session.login().unwrap_or_default()))
    }

    async fn on_close(&mut self, ws: &WebSocket, _req: &mut Request<'_>, code: u16, _: &str) {
        tracing::info!(target: "inphms.addons.test_http", "test_http: ws_user_async closed with {code} (socket {})", ws.id());
    }
}

/// [`AsyncWhoami`] behind `auth = "user"`.
#[route("/test_http/ws_user_async", auth = "user", websocket = true)]
fn ws_user_async(req: &mut Request) -> Result<()> {
    req.websocket()?.serve_async(AsyncWhoami)
}

/// [`AsyncEcho`] behind `auth = "user"` (`uid`, `login`, `to` under a user's session).
#[route("/test_http/ws_async_user", auth = "user", websocket = true)]
fn ws_async_user(req: &mut Request) -> Result<()> {
    req.websocket()?.serve_async(AsyncEcho)
}

/// [`AsyncEcho`] behind `auth = "public"` (`uid` as the public user when nobody is logged in).
#[route("/test_http/ws_async_public", auth = "public", websocket = true)]
fn ws_async_public(req: &mut Request) -> Result<()> {
    req.websocket()?.serve_async(AsyncEcho)
}
