//! Item 15's load generator: many websocket clients on one current-thread tokio runtime
//! (tokio-tungstenite), in the suite's own process.
//!
//! - [`open`] opens one socket (`ws://127.0.0.1:PORT/PATH`) and reads its greeting
//!   (`open <n>`: `test_http`'s `/test_http/ws_events` and `bench-baseline --websocket`
//!   greet alike), so a socket counts as open once the server has served its first event;
//! - [`echo_load`] makes every socket send one message a second for a number of seconds,
//!   socket `i` of `n` at `i/n` s into each second (so the load is spread evenly over the
//!   second), and wait for its echo before the next; the latency of each message is taken
//!   on the client's clock, from just before its send to its echo read, and a message not
//!   echoed within [`ECHO_TIMEOUT`] is lost (that socket then stops: an echo arriving late
//!   would be mistaken for the next one's).
//!
//! The client shares the machine's cores with the server it measures: a client falling
//! behind its schedule adds to the latencies; [`EchoRun::late_sends`] counts the sends
//! that left more than [`LATE`] after their time.

use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// A client socket.
pub type Ws = WebSocketStream<TcpStream>;

/// How long a handshake, a greeting or an echo may take before it counts as failed.
pub const ECHO_TIMEOUT: Duration = Duration::from_secs(5);

/// A send leaving later than this after its scheduled time counts as late.
pub const LATE: Duration = Duration::from_millis(5);

/// The client's runtime: one thread, timers and I/O.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("the load generator's runtime: {e}"))
}

/// The next text message of `ws` (pings and pongs skipped: tungstenite answers pings as
/// it reads).
async fn next_text(ws: &mut Ws) -> Result<String, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Binary(b))) => {
                return Err(format!("a binary message of {} bytes", b.len()))
            }
            Some(Ok(Message::Close(f))) => return Err(format!("closed by the server: {f:?}")),
            Some(Err(e)) => return Err(format!("read: {e}")),
            None => return Err("the connection ended".into()),
        }
    }
}

/// Opens `ws://127.0.0.1:port{path}` and reads its greeting (`open ...`).
pub async fn open(port: u16, path: &str) -> Result<Ws, String> {
    let opening = async {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        // Small buffers, as the host's: 10,000 clients at tungstenite's default (128 KiB
        // each way) would hold gigabytes.
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let url = format!("ws://127.0.0.1:{port}{path}");
        let (mut ws, resp) =
            tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(config))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
        if resp.status() != 101 {
            return Err(format!("handshake answered {}", resp.status()));
        }
        let greeting = next_text(&mut ws).await?;
        if !greeting.starts_with("open ") {
            return Err(format!("greeting {greeting:?}, expected `open <n>`"));
        }
        Ok(ws)
    };
    tokio::time::timeout(ECHO_TIMEOUT, opening)
        .await
        .map_err(|_| format!("no greeting within {ECHO_TIMEOUT:?}"))?
}

/// What [`echo_load`] saw.
#[derive(Debug, Default)]
pub struct EchoRun {
    /// Messages sent.
    pub sent: u64,
    /// Messages echoed (in time, with the text sent).
    pub echoed: u64,
    /// Each echoed message's latency, in microseconds.
    pub latencies_us: Vec<f64>,
    /// Sends that left more than [`LATE`] after their scheduled time.
    pub late_sends: u64,
    /// Sockets that stopped on an error, and the first such error.
    pub failed_sockets: usize,
    pub first_error: Option<String>,
}

/// One socket's share of [`echo_load`].
async fn one_socket(
    mut ws: Ws,
    i: usize,
    n: usize,
    t0: Instant,
    secs: u64,
) -> (Ws, EchoRun, Option<String>) {
    let mut run = EchoRun {
        latencies_us: Vec::with_capacity(secs as usize),
        ..EchoRun::default()
    };
    let offset = Duration::from_secs_f64(i as f64 / n as f64);
    for k in 0..secs {
        let at = t0 + offset + Duration::from_secs(k);
        tokio::time::sleep_until(at).await;
        let sent_at = Instant::now();
        if sent_at.duration_since(at) > LATE {
            run.late_sends += 1;
        }
        let text = format!("s{i} m{k}");
        if let Err(e) = ws.send(Message::text(text.clone())).await {
            return (ws, run, Some(format!("socket {i}, message {k}: send: {e}")));
        }
        run.sent += 1;
        match tokio::time::timeout(ECHO_TIMEOUT, next_text(&mut ws)).await {
            Ok(Ok(echo)) if echo == text => {
                run.echoed += 1;
                run.latencies_us.push(sent_at.elapsed().as_secs_f64() * 1e6);
            }
            Ok(Ok(other)) => {
                return (
                    ws,
                    run,
                    Some(format!("socket {i}: sent {text:?}, got {other:?}")),
                )
            }
            Ok(Err(e)) => return (ws, run, Some(format!("socket {i}, message {k}: {e}"))),
            Err(_) => {
                return (
                    ws,
                    run,
                    Some(format!(
                        "socket {i}, message {k}: no echo within {ECHO_TIMEOUT:?}"
                    )),
                )
            }
        }
    }
    (ws, run, None)
}

/// Every socket of `sockets` sends one message a second for `secs` seconds, spread evenly
/// over the second (see the module's doc); the sockets are handed back, open.
pub async fn echo_load(sockets: Vec<Ws>, secs: u64) -> (Vec<Ws>, EchoRun) {
    let n = sockets.len();
    // Time for every task to reach its first sleep before the first send.
    let t0 = Instant::now() + Duration::from_millis(500);
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, ws)| tokio::spawn(one_socket(ws, i, n, t0, secs)))
        .collect();
    let mut total = EchoRun {
        latencies_us: Vec::with_capacity(n * secs as usize),
        ..EchoRun::default()
    };
    let mut back = Vec::with_capacity(n);
    for task in tasks {
        match task.await {
            Ok((ws, run, error)) => {
                back.push(ws);
                total.sent += run.sent;
                total.echoed += run.echoed;
                total.late_sends += run.late_sends;
                total.latencies_us.extend(run.latencies_us);
                if let Some(e) = error {
                    total.failed_sockets += 1;
                    total.first_error.get_or_insert(e);
                }
            }
            Err(e) => {
                total.failed_sockets += 1;
                total
                    .first_error
                    .get_or_insert(format!("a client task failed: {e}"));
            }
        }
    }
    (back, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on loopback in the test's runtime: greets with `open <n>`, echoes
    /// every text but `drop` (which it swallows: a lost message); its port.
    async fn echo_server(drop: &'static str) -> u16 {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((stream, _)) = listener.accept().await {
                n += 1;
                tokio::spawn(async move {
                    let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
                    ws.send(Message::text(format!("open {n}"))).await.unwrap();
                    while let Some(Ok(m)) = ws.next().await {
                        if m.is_text() && m.to_text().unwrap() != drop {
                            let _ = ws.send(m).await;
                        }
                    }
                });
            }
        });
        port
    }

    #[test]
    fn every_echo_is_counted_and_timed() {
        runtime().unwrap().block_on(async {
            let port = echo_server("").await;
            let mut sockets = Vec::new();
            for _ in 0..5 {
                sockets.push(open(port, "/").await.unwrap());
            }
            let (back, run) = echo_load(sockets, 2).await;
            assert_eq!(back.len(), 5);
            assert_eq!((run.sent, run.echoed, run.failed_sockets), (10, 10, 0));
            assert_eq!(run.latencies_us.len(), 10);
            assert!(run.latencies_us.iter().all(|us| *us > 0.0 && *us < 1e6));
        });
    }

    #[test]
    fn a_message_not_echoed_is_lost_and_its_socket_stops() {
        runtime().unwrap().block_on(async {
            let port = echo_server("s1 m0").await;
            let sockets = vec![
                open(port, "/").await.unwrap(),
                open(port, "/").await.unwrap(),
            ];
            let (_, run) = echo_load(sockets, 2).await;
            // Socket 1's first message is swallowed: it waits ECHO_TIMEOUT, then stops.
            assert_eq!((run.sent, run.echoed, run.failed_sockets), (3, 2, 1));
            let error = run.first_error.unwrap();
            assert!(error.contains("socket 1, message 0: no echo"), "{error}");
        });
    }
}
