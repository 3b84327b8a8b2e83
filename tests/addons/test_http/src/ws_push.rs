//! Push streams opened inside websocket callbacks, sync (`/test_http/ws_push`) and async
//! (`/test_http/ws_push_async`): each greets with `open <socket id>`; `stream` opens a push
//! stream with a first event (`hello`, `inside`), keeps it with `/test_http/sse`'s streams
//! (fed later by `/test_http/sse_push/<id>`) and answers `stream <id>`; the stream is then
//! answered by `/test_http/ws_push/answer/<id>`, a plain request after the callback.

use inphms_sdk::{
    route, time, AsyncWsHandler, Error, Message, PushStream, Request, Response, Result, WebSocket,
    WsHandler,
};
use std::time::Duration;

/// Opens the push stream of `stream`, kept in [`super::SSE`]; its id.
fn open_kept() -> Result<u64> {
    let stream = PushStream::open(16)?;
    stream.event(Some("hello"), "inside")?;
    let id = stream.id();
    super::SSE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, stream);
    Ok(id)
}

struct SyncPush;

impl WsHandler for SyncPush {
    fn on_open(&mut self, ws: &WebSocket, _req: &mut Request) -> Result<()> {
        ws.send(format!("open {}", ws.id()))
    }

    fn on_message(&mut self, ws: &WebSocket, _req: &mut Request, message: Message) -> Result<()> {
        match message.as_text() {
            Some("stream") => ws.send(format!("stream {}", open_kept()?)),
            _ => ws.send(message),
        }
    }
}

struct AsyncPush;

impl AsyncWsHandler for AsyncPush {
    async fn on_open(&mut self, ws: &WebSocket, _req: &mut Request<'_>) -> Result<()> {
        ws.send(format!("open {}", ws.id()))
    }

    async fn on_message(
        &mut self,
        ws: &WebSocket,
        _req: &mut Request<'_>,
        message: Message,
    ) -> Result<()> {
        match message.as_text() {
            Some("stream") => {
                // Opened in a later poll than the first, and the callback ends in a later
                // poll still.
                time::sleep(Duration::from_millis(10)).await;
                let id = open_kept()?;
                time::sleep(Duration::from_millis(10)).await;
                ws.send(format!("stream {id}"))
            }
            _ => ws.send(message),
        }
    }
}

#[route("/test_http/ws_push", auth = "none", websocket = true)]
fn ws_push(req: &mut Request) -> Result<()> {
    req.websocket()?.serve(SyncPush)
}

#[route("/test_http/ws_push_async", auth = "none", websocket = true)]
fn ws_push_async(req: &mut Request) -> Result<()> {
    req.websocket()?.serve_async(AsyncPush)
}

/// Answers with the kept push stream `id`, closed first: its body is the events pushed
/// until now.
#[route(
    "/test_http/ws_push/answer/<int:id>",
    auth = "none",
    save_session = false
)]
fn ws_push_answer(_req: &mut Request, id: i64) -> Result<Response> {
    let stream = super::SSE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&(id as u64))
        .ok_or_else(|| Error::not_found("no such stream"))?;
    stream.close();
    Ok(Response::event_stream(&stream))
}
