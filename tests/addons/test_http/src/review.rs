//! Routes for the regression tests of issue 17's second review (`tests/tests/h17_review.rs`):
//! answers thrown away with their streams, a loop handler sending faster than its client
//! reads, a loop handler that stops reading for a while, and a producer that stalls.

use crate::SlowChunks;
use inphms_sdk::{route, Error, PushStream, Request, Response, Result};
use std::sync::Mutex;
use std::time::Duration;

/// The last push stream opened by `push_fail`/`push_sleep`, kept (a clone) after its
/// answer was thrown away.
static LAST_PUSH: Mutex<Option<PushStream>> = Mutex::new(None);

fn keep(stream: &PushStream) {
    *LAST_PUSH.lock().unwrap_or_else(|e| e.into_inner()) = Some(stream.clone());
}

/// Opens a push stream, keeps a clone of it, then fails: the stream is never answered.
#[route("/test_http/h17/push_fail", auth = "none", save_session = false)]
fn push_fail(_req: &mut Request) -> Result<Response> {
    let stream = PushStream::open(4)?;
    keep(&stream);
    Err(Error::internal("failed after PushStream::open"))
}

/// Opens a push stream (room for 65,536 chunks: pushing into it succeeds as long as it is
/// kept), keeps a clone, sleeps `ms`, then answers with it (a 504 when `ms` passes
/// `limit_time_real`).
#[route(
    "/test_http/h17/push_sleep/<int:ms>",
    auth = "none",
    save_session = false
)]
fn push_sleep(_req: &mut Request, ms: i64) -> Result<Response> {
    let stream = PushStream::open(65_536)?;
    keep(&stream);
    std::thread::sleep(Duration::from_millis(ms.clamp(0, 60_000) as u64));
    Ok(Response::push(&stream))
}

/// Pushes a chunk into the kept stream: `pushed`, or why it was refused.
#[route("/test_http/h17/push_last", auth = "none", save_session = false)]
fn push_last(_req: &mut Request) -> String {
    let kept = LAST_PUSH.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match kept {
        None => "none".to_owned(),
        Some(s) => match s.push(b"x".to_vec()) {
            Ok(()) => "pushed".to_owned(),
            Err(e) => format!("refused: {e}"),
        },
    }
}

/// A pull stream (one counted producer) answered after `ms` (a 504 past the limit).
#[route(
    "/test_http/h17/pull_sleep/<int:ms>",
    auth = "none",
    save_session = false
)]
fn pull_sleep(_req: &mut Request, ms: i64) -> Response {
    let r = Response::stream(SlowChunks::new(1));
    std::thread::sleep(Duration::from_millis(ms.clamp(0, 60_000) as u64));
    r
}

/// One chunk, then a producer that sleeps `ms` before the next.
#[route(
    "/test_http/h17/stream_stall/<int:ms>",
    auth = "none",
    save_session = false
)]
fn stream_stall(_req: &mut Request, ms: i64) -> Response {
    let ms = ms.clamp(0, 60_000) as u64;
    Response::stream((0..2).map(move |i| {
        if i == 1 {
            std::thread::sleep(Duration::from_millis(ms));
        }
        vec![b'c'; 1024]
    }))
}

/// A loop handler sending `n` messages of 64 KiB as fast as it can, then `done <n>
/// <failed sends>` (its client reads slowly: its sends wait for room).
#[route(
    "/test_http/h17/ws_loop_flood/<int:n>",
    auth = "none",
    websocket = true
)]
fn ws_loop_flood(req: &mut Request, n: i64) -> Result<()> {
    let ws = req.websocket()?;
    let payload = "l".repeat(64 * 1024);
    let mut failed = 0;
    for _ in 0..n.clamp(0, 100_000) {
        if ws.send(payload.as_str()).is_err() {
            failed += 1;
        }
    }
    ws.send(format!("done {n} {failed}"))?;
    while ws.recv().is_some() {}
    Ok(())
}

/// A loop handler that takes a first message, stops reading for `ms` (busy), then counts
/// the messages until `end` and answers `got <count>`.
#[route("/test_http/h17/ws_nap/<int:ms>", auth = "none", websocket = true)]
fn ws_nap(req: &mut Request, ms: i64) -> Result<()> {
    let ws = req.websocket()?;
    if ws.recv().is_none() {
        return Ok(());
    }
    std::thread::sleep(Duration::from_millis(ms.clamp(0, 60_000) as u64));
    let mut count = 0;
    while let Some(m) = ws.recv() {
        if m.as_text() == Some("end") {
            break;
        }
        count += 1;
    }
    ws.send(format!("got {count}"))?;
    while ws.recv().is_some() {}
    Ok(())
}
