//! `bench-baseline-db`: the bare hyper + deadpool-postgres server that the host's database
//! route is measured against (issue 17).
//!
//! It serves connections as `bench-baseline` does (the host's runtime builder and hyper
//! settings) and answers every request with the query of `test_db`'s `/test_db/count`
//! route, `SELECT count(*) AS n FROM test_db_note`, as `200 "<n> notes in <db>"`. The
//! statement is prepared once per connection (deadpool-postgres's statement cache), the
//! connection taken from a pool of `--pool` connections (the host's `db_maxconn`, 64).
//!
//! - by default, inside the transaction the host opens for a `readonly` route: `BEGIN
//!   ISOLATION LEVEL REPEATABLE READ READ ONLY`, the `SELECT`, `COMMIT` (three round trips);
//! - with `--autocommit`, the `SELECT` alone (one round trip).
//!
//! It takes a socket-activated listener (`LISTEN_FDS`) as the host does, and binds
//! `0.0.0.0:PORT` only without one.
//!
//! ```text
//! bench-baseline-db -p PORT --db NAME [--host 127.0.0.1] [--pg-port 5432] [--user NAME]
//!                   [--pool 64] [--autocommit]
//! ```

use bytes::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// `test_db`'s `/test_db/count` statement.
const QUERY: &str = "SELECT count(*) AS n FROM test_db_note";
/// What the host's cursor sends first for a `readonly = true` route.
const BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/// The command line.
struct Args {
    port: u16,
    db: String,
    host: String,
    pg_port: u16,
    user: String,
    pool: usize,
    autocommit: bool,
}

fn main() {
    let args = parse_args();
    let listener = listen(args.port).unwrap_or_else(|e| {
        eprintln!(
            "bench-baseline-db: cannot listen on port {}: {e}",
            args.port
        );
        std::process::exit(1)
    });
    let mut pg = tokio_postgres::Config::new();
    pg.host(&args.host)
        .port(args.pg_port)
        .user(&args.user)
        .dbname(&args.db)
        .application_name("bench-baseline-db")
        .connect_timeout(Duration::from_secs(5));
    let manager = Manager::from_config(
        pg,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-baseline-db")
        .build()
        .unwrap_or_else(|e| {
            eprintln!("bench-baseline-db: tokio runtime: {e}");
            std::process::exit(1)
        });
    let pool = {
        let _guard = runtime.enter();
        Pool::builder(manager)
            .max_size(args.pool)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .build()
            .unwrap_or_else(|e| {
                eprintln!("bench-baseline-db: pool: {e}");
                std::process::exit(1)
            })
    };
    let state = Arc::new(State {
        pool,
        db: args.db.clone(),
        autocommit: args.autocommit,
    });
    runtime.block_on(serve(listener, state));
}

fn parse_args() -> Args {
    let mut a = Args {
        port: 8080,
        db: String::new(),
        host: "127.0.0.1".into(),
        pg_port: 5432,
        user: std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "postgres".into()),
        pool: 64,
        autocommit: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |what: &str| {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs {what}")))
        };
        match arg.as_str() {
            "-p" | "--port" => {
                a.port = value("a port number")
                    .parse()
                    .unwrap_or_else(|_| usage("-p needs a port number"))
            }
            "--db" => a.db = value("a database name"),
            "--host" => a.host = value("a host"),
            "--pg-port" => {
                a.pg_port = value("a port number")
                    .parse()
                    .unwrap_or_else(|_| usage("--pg-port needs a port number"))
            }
            "--user" => a.user = value("a role name"),
            "--pool" => {
                a.pool = value("a size")
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .unwrap_or_else(|| usage("--pool needs a positive number"))
            }
            "--autocommit" => a.autocommit = true,
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument '{other}'")),
        }
    }
    if a.db.is_empty() {
        usage("--db is required");
    }
    a
}

fn usage(error: &str) -> ! {
    if !error.is_empty() {
        eprintln!("bench-baseline-db: {error}");
    }
    eprintln!(
        "usage: bench-baseline-db -p PORT --db NAME [--host H] [--pg-port P] [--user U] [--pool N] [--autocommit]"
    );
    std::process::exit(if error.is_empty() { 0 } else { 2 })
}

/// As `bench-baseline`: the socket-activated listener, else `port` on every interface.
fn listen(port: u16) -> std::io::Result<std::net::TcpListener> {
    if let Ok(Some(listener)) = listenfd::ListenFd::from_env().take_tcp_listener(0) {
        return Ok(listener);
    }
    std::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port)))
}

struct State {
    pool: Pool,
    db: String,
    autocommit: bool,
}

/// The count, in a read-only REPEATABLE READ transaction or in autocommit.
async fn count(state: &State) -> Result<i64, String> {
    let client = state.pool.get().await.map_err(|e| e.to_string())?;
    let stmt = client
        .prepare_cached(QUERY)
        .await
        .map_err(|e| e.to_string())?;
    if state.autocommit {
        let row = client
            .query_one(&stmt, &[])
            .await
            .map_err(|e| e.to_string())?;
        return row.try_get(0).map_err(|e| e.to_string());
    }
    client
        .batch_execute(BEGIN)
        .await
        .map_err(|e| e.to_string())?;
    let row = client.query_one(&stmt, &[]).await;
    let end = client.batch_execute("COMMIT").await;
    let n = row
        .map_err(|e| e.to_string())?
        .try_get(0)
        .map_err(|e| e.to_string())?;
    end.map_err(|e| e.to_string())?;
    Ok(n)
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let _ = req.into_body().collect().await;
    let (status, body) = match count(&state).await {
        Ok(n) => (StatusCode::OK, format!("{n} notes in {}", state.db)),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Ok(resp)
}

async fn serve(listener: std::net::TcpListener, state: Arc<State>) {
    if let Err(e) = listener.set_nonblocking(true) {
        eprintln!("bench-baseline-db: non-blocking listener: {e}");
        return;
    }
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bench-baseline-db: tokio listener: {e}");
            return;
        }
    };
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                eprintln!("bench-baseline-db: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let service = service_fn(move |req| handle(req, Arc::clone(&state)));
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
