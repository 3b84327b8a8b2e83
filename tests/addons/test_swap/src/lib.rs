//! Test addon for the lifecycle tests: answers which build it is (`v1`, `v2`), when this
//! image was loaded, and can hold a request or grow the process's memory.

use inphms_sdk::{post_load, route, Error, Host, Request, Result};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod ws_async;

const VERSION: &str = if cfg!(feature = "v2") { "v2" } else { "v1" };

static LOADED_AT: OnceLock<u128> = OnceLock::new();

#[post_load]
fn post_load(_host: &Host) -> Result<()> {
    if cfg!(feature = "fail_post_load") {
        return Err(Error::internal(
            "test_swap refuses to start (fail_post_load build)",
        ));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    LOADED_AT.get_or_init(|| now.as_nanos());
    tracing::info!(target: "inphms.addons.test_swap", "test_swap {VERSION}: post_load");
    Ok(())
}

/// This build's version.
#[route("/test_swap/version", auth = "none", save_session = false)]
fn version(_req: &mut Request) -> String {
    VERSION.to_owned()
}

/// Only in the second build: the route an upgrade adds (the multi-host tests serve it on
/// every host after `-u test_swap` on one).
#[cfg(feature = "v2")]
#[route("/test_swap/added", auth = "none", save_session = false)]
fn added(_req: &mut Request) -> String {
    "added in v2".to_owned()
}

/// This build's version, after holding the request for 1.5 s.
#[route("/test_swap/slow", auth = "none", save_session = false)]
fn slow(_req: &mut Request) -> String {
    std::thread::sleep(Duration::from_millis(1500));
    VERSION.to_owned()
}

/// When this image's `post_load` ran (nanoseconds since the epoch).
#[route("/test_swap/loaded_at", auth = "none", save_session = false)]
fn loaded_at(_req: &mut Request) -> String {
    LOADED_AT.get().copied().unwrap_or(0).to_string()
}

/// Grows the process's resident memory by `mb` MiB (leaked on purpose).
#[route("/test_swap/alloc/<int:mb>", auth = "none", save_session = false)]
fn alloc(_req: &mut Request, mb: i64) -> String {
    let bytes = (mb.clamp(0, 4096) as usize) * 1024 * 1024;
    let block = vec![1u8; bytes];
    std::mem::forget(block);
    format!("{mb} MiB")
}

/// `n` chunks of 64 KiB, each filled with this build's version (`v1`/`v2`) repeated,
/// pulled from this build's producer as the client reads (a stream across a swap finishes
/// on the build that started it).
#[route("/test_swap/stream/<int:n>", auth = "none", save_session = false)]
fn stream(_req: &mut Request, n: i64) -> inphms_sdk::Response {
    let chunk: Vec<u8> = VERSION.as_bytes().repeat(32 * 1024);
    let n = n.clamp(0, 1 << 16) as u64;
    inphms_sdk::Response::stream((0..n).map(move |_| chunk.clone())).length(n * 64 * 1024)
}

/// A websocket greeting with this build's version, then echoing until closed.
#[route("/test_swap/ws", auth = "none", websocket = true)]
fn ws(req: &mut Request) -> Result<()> {
    let socket = req.websocket()?;
    socket.send(VERSION)?;
    while let Some(message) = socket.recv() {
        socket.send(message)?;
    }
    Ok(())
}

inphms_sdk::addon!();
