//! `bench-baseline --websocket` (item 15): a request asking for a websocket upgrade
//! (`Upgrade: websocket` and a `Sec-WebSocket-Key`) is answered 101 and its connection
//! becomes a bare tokio-tungstenite echo socket: one task per socket, the host's buffer
//! settings (4 KiB to read, no write buffer), a greeting `open <n>` as `test_http`'s
//! `/test_http/ws_events` sends, then every text or binary message sent back (pings are
//! answered by tungstenite). Any other request gets the hello world. No handshake checks
//! beyond those, no limits: what the host adds (its checks, the event callbacks on the
//! blocking pool, pings, rate limits) is what item 15's ratio shows.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The number of the next socket (its greeting).
static NEXT: AtomicU64 = AtomicU64::new(1);

/// Answers an upgrade with 101 and serves the socket in its own task; the hello world to
/// anything else.
pub async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let upgrade = req
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"));
    let key = req.headers().get("sec-websocket-key").cloned();
    let Some(key) = key.filter(|_| upgrade) else {
        let _ = req.into_body().collect().await;
        return Ok(crate::hello());
    };
    let accept = derive_accept_key(key.as_bytes());
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        echo(TokioIo::new(upgraded)).await;
    });
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert("sec-websocket-accept", v);
    }
    Ok(resp)
}

/// Greets, then echoes until the client closes (or the connection fails).
async fn echo<S>(io: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    if ws.send(Message::text(format!("open {id}"))).await.is_err() {
        return;
    }
    // A Close is answered by tungstenite on the next read; the stream then ends.
    while let Some(Ok(m)) = ws.next().await {
        if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
            break;
        }
    }
}
