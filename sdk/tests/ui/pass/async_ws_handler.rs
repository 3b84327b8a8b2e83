//! An `AsyncWsHandler` written with `async fn`s (only `on_message` required), its state
//! kept across callbacks, served from a plain websocket route.
use inphms_sdk::{route, time, AsyncWsHandler, Message, Request, Result, WebSocket};
use std::time::Duration;

struct Counter {
    seen: u64,
}

impl AsyncWsHandler for Counter {
    async fn on_message(
        &mut self,
        ws: &WebSocket,
        req: &mut Request<'_>,
        message: Message,
    ) -> Result<()> {
        time::sleep(Duration::from_millis(1)).await;
        self.seen += 1;
        req.session.set("seen", self.seen);
        let mut cr = req.async_cursor()?;
        cr.execute("SELECT 1", &[]).await?;
        ws.send(message)
    }

    async fn on_close(&mut self, _ws: &WebSocket, _req: &mut Request<'_>, code: u16, reason: &str) {
        let _ = (code, reason.len());
    }
}

#[route("/counter", auth = "public", websocket = true)]
fn counter(req: &mut Request) -> Result<()> {
    req.websocket()?.serve_async(Counter { seen: 0 })
}

fn main() {}
