//! `bench-baseline`: the bare hyper hello world that the host is measured against.
//!
//! It serves connections the way `host/src/http/server.rs` does (same tokio runtime
//! builder, hyper-util auto builder with the same HTTP/1 settings, `TCP_NODELAY`, one task
//! per connection watched by `GracefulShutdown`) and answers every request with
//! `200 Hello, World!` after reading its body. What it does not have is the host's
//! application path, which is what the ratios measure.
//!
//! It takes a socket-activated listener (`LISTEN_FDS`, as systemd and the suite hand one
//! over) as the host does, and binds `0.0.0.0:PORT` only without one.
//!
//! ```text
//! bench-baseline -p PORT [--spawn-blocking | --block-in-place | --websocket | --file PATH]
//!                [--max-blocking-threads N]
//! ```
//!
//! `--spawn-blocking` builds each response on tokio's blocking pool
//! (`tokio::task::spawn_blocking`), as the host runs every addon call: the difference with
//! the plain mode is the cost of that hand-off alone. `--block-in-place` builds it inside
//! `tokio::task::block_in_place` instead (the worker hands its other tasks to another
//! thread while it runs the handler), one of the alternatives. `--max-blocking-threads N`
//! sets the runtime's blocking pool size (tokio's default is 512).
//!
//! Two more modes serve items 15 and 16 (the code is in `baseline/`):
//!
//! - `--websocket`: a request asking for a websocket upgrade is answered 101 and becomes a
//!   bare tokio-tungstenite echo socket (the host's buffer settings; it greets with
//!   `open <n>` as `test_http`'s `/test_http/ws_events` does, then echoes every text or
//!   binary message); any other request gets the hello world.
//! - `--file PATH`: every request is answered with the file at `PATH`, its length
//!   announced, the body read in chunks as hyper asks for them, as the host's `FileBody`
//!   does (same chunk size, `pread` on the blocking pool, one read in flight).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[path = "../baseline/file_body.rs"]
mod file_body;
#[path = "../baseline/websocket.rs"]
mod websocket;

const BODY: &[u8] = b"Hello, World!";

fn main() {
    let mut port: u16 = 8080;
    let mut mode = Mode::Inline;
    let mut serving = Serving::Hello;
    let mut max_blocking: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-p" | "--port" => {
                port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| usage("-p needs a port number"));
            }
            "--spawn-blocking" => mode = Mode::SpawnBlocking,
            "--block-in-place" => mode = Mode::BlockInPlace,
            "--websocket" => serving = Serving::Websocket,
            "--file" => {
                let path = args
                    .next()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| usage("--file needs a path"));
                serving = Serving::File(Arc::new(path));
            }
            "--max-blocking-threads" => {
                max_blocking = Some(
                    args.next()
                        .and_then(|p| p.parse().ok())
                        .filter(|n| *n > 0)
                        .unwrap_or_else(|| usage("--max-blocking-threads needs a positive number")),
                );
            }
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument '{other}'")),
        }
    }
    // As the host: take the socket-activated listener, else bind, before the runtime starts
    // its threads.
    let listener = listen(port).unwrap_or_else(|e| {
        eprintln!("bench-baseline: cannot listen on port {port}: {e}");
        std::process::exit(1)
    });
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all().thread_name("bench-baseline");
    if let Some(n) = max_blocking {
        runtime.max_blocking_threads(n);
    }
    let runtime = runtime.build().expect("tokio runtime");
    // A service per mode, each its own monomorphized `serve`: the hello world's path is
    // the same code whatever other modes exist.
    match serving {
        Serving::Hello => runtime.block_on(serve(listener, move |req| handle(req, mode))),
        Serving::Websocket => runtime.block_on(serve(listener, websocket::handle)),
        Serving::File(path) => runtime.block_on(serve(listener, move |req| {
            file_body::handle(req, Arc::clone(&path))
        })),
    }
}

/// As the host's `http::server::listen`: the socket-activated listener when `LISTEN_FDS` and
/// `LISTEN_PID` name this process (the suite hands one over: no port race), else `port` on
/// every interface.
fn listen(port: u16) -> std::io::Result<std::net::TcpListener> {
    if let Ok(Some(listener)) = listenfd::ListenFd::from_env().take_tcp_listener(0) {
        return Ok(listener);
    }
    std::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port)))
}

fn usage(error: &str) -> ! {
    if !error.is_empty() {
        eprintln!("bench-baseline: {error}");
    }
    eprintln!("usage: bench-baseline -p PORT [--spawn-blocking | --block-in-place | --websocket | --file PATH] [--max-blocking-threads N]");
    std::process::exit(if error.is_empty() { 0 } else { 2 })
}

/// What is served.
#[derive(Debug)]
enum Serving {
    /// The hello world, built as [`Mode`] says.
    Hello,
    /// Websocket upgrades become echo sockets ([`websocket`]); other requests get the
    /// hello world.
    Websocket,
    /// Every request gets this file, streamed ([`file_body`]).
    File(Arc<PathBuf>),
}

/// Where the hello world is built.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// On the runtime worker, in the connection's task.
    Inline,
    /// On the blocking pool (`spawn_blocking`), awaited by the connection's task.
    SpawnBlocking,
    /// In `block_in_place` on the runtime worker.
    BlockInPlace,
}

fn hello() -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(BODY)));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

async fn handle(req: Request<Incoming>, mode: Mode) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the body as the host does (a POST body must be consumed for keep-alive).
    let _ = req.into_body().collect().await;
    Ok(match mode {
        Mode::Inline => hello(),
        Mode::SpawnBlocking => tokio::task::spawn_blocking(hello)
            .await
            .expect("blocking task"),
        Mode::BlockInPlace => tokio::task::block_in_place(hello),
    })
}

/// Serves connections with `handler` as the host does (see the module's doc).
async fn serve<F, Fut, B>(listener: std::net::TcpListener, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // As the host: no hyper header timer (the host enforces its header and keep-alive
        // timeouts in its own stream wrapper; a bare baseline has no such cost at all).
        .header_read_timeout(None)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                eprintln!("bench-baseline: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = service_fn(handler.clone());
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
