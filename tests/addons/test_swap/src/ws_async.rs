//! A websocket served by async callbacks (`/test_swap/ws_async`): greets with this build's
//! version, answers `sleep <ms>` with `<version> slept <ms>` after awaiting that long, and
//! logs its close: across a swap, a callback awaiting finishes on the build that started it,
//! then the socket is closed with 1001 and `on_close` runs.

use crate::VERSION;
use inphms_sdk::{route, time, AsyncWsHandler, Message, Request, Result, WebSocket};
use std::time::Duration;

struct Versioned;

impl AsyncWsHandler for Versioned {
    async fn on_open(&mut self, ws: &WebSocket, _req: &mut Request<'_>) -> Result<()> {
        ws.send(VERSION)
    }

    async fn on_message(
        &mut self,
        ws: &WebSocket,
        _req: &mut Request<'_>,
        message: Message,
    ) -> Result<()> {
        let ms: u64 = match message.as_text().and_then(|t| t.strip_prefix("sleep ")) {
            Some(ms) => ms.parse().unwrap_or(0),
            None => return ws.send(message),
        };
        time::sleep(Duration::from_millis(ms)).await;
        ws.send(format!("{VERSION} slept {ms}"))
    }

    async fn on_close(&mut self, _ws: &WebSocket, _req: &mut Request<'_>, code: u16, _: &str) {
        time::sleep(Duration::from_millis(10)).await;
        tracing::info!(target: "inphms.addons.test_swap", "test_swap: {VERSION} ws_async closed with {code}");
    }
}

#[route("/test_swap/ws_async", auth = "none", websocket = true)]
fn ws_async(req: &mut Request) -> Result<()> {
    req.websocket()?.serve_async(Versioned)
}
