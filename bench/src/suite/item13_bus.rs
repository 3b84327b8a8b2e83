//! Item 13: the bus across hosts (issue 21), on a PostgreSQL database of the suite's own
//! with `test_bus` (and `bus`) installed.
//!
//! - **Measures**: the fan-out latency from a route's send on host B to the delivery of the
//!   message on every one of 20 websocket clients of host A (median and p99 of 50 sends,
//!   one at a time): B's commit, its NOTIFY `imbus` on `postgres`, A's LISTEN connection,
//!   A's dispatcher reading the row once and queueing it on the 20 sockets.
//! - **Baseline**: none (Odoo's own path is the same: one NOTIFY, a poll per socket).
//! - **Target**: none (measured).

use crate::model::{Options, Row};
use crate::pg;
use crate::servers::{addon_source, host_command, stage_addon, Env, Kind, Server};
use crate::stats::{max, median, percentile};
use inphms_test_support::http;
use inphms_test_support::process::run_bounded;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

const CLIENTS: usize = 20;

/// Stages `bus` and `test_bus` in `dir/addons` and installs `test_bus` in `db`.
fn install(env: &Env, dir: &Path, db: &str) -> Result<PathBuf, String> {
    let addons = dir.join("addons");
    for name in ["bus", "test_bus"] {
        stage_addon(
            &addon_source(&env.root, name),
            &env.bin_dir.join(format!("lib{name}.so")),
            &addons.join(name),
        )?;
    }
    let mut init = host_command(env, dir);
    init.current_dir(dir)
        .args(["server", "--stop-after-init", "-D"])
        .arg(dir.join("data"))
        .args(pg::server_args())
        .arg("--addons-path")
        .arg(&addons)
        .args(["-d", db, "-i", "test_bus"]);
    let done = run_bounded(&mut init, Duration::from_secs(120))?;
    if !done.success() {
        return Err(format!(
            "installing test_bus in {db} failed:\n{}",
            done.stderr
        ));
    }
    Ok(addons)
}

fn subscribe(port: u16) -> Result<WebSocket<TcpStream>, String> {
    let mut req = format!("ws://127.0.0.1:{port}/websocket")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let origin = format!("http://127.0.0.1:{port}");
    req.headers_mut().insert(
        "origin",
        origin.parse().map_err(|_| "an origin".to_owned())?,
    );
    let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let (mut ws, _) = tungstenite::client::client(req, stream).map_err(|e| e.to_string())?;
    let msg = r#"{"event_name": "subscribe", "data": {"channels": ["bench"], "last": 0}}"#;
    ws.send(Message::text(msg)).map_err(|e| e.to_string())?;
    Ok(ws)
}

/// Reads `ws` until a push carries the notification tagged `tag`.
fn wait_for(ws: &mut WebSocket<TcpStream>, tag: &str) -> Result<(), String> {
    let needle = format!("\"tag\": \"{tag}\"");
    loop {
        match ws.read() {
            Ok(Message::Text(t)) if t.as_str().contains(&needle) => return Ok(()),
            Ok(Message::Close(f)) => return Err(format!("closed: {f:?}")),
            Ok(_) => {}
            Err(e) => return Err(format!("waiting for {tag}: {e}")),
        }
    }
}

/// Item 13: two hosts on one database; 20 clients subscribed on A, sends from B.
pub fn item13_bus(env: &Env, opts: &Options) -> Result<Vec<Row>, String> {
    let sends = if opts.quick { 20 } else { 50 };
    let db = pg::database("bus")?;
    let dir_a = env.scratch("bus-a")?;
    let dir_b = env.scratch("bus-b")?;
    let addons = install(env, &dir_a, &db.name)?.display().to_string();
    let args: Vec<String> = pg::server_args()
        .into_iter()
        .chain(
            [
                "--addons-path",
                &addons,
                "-d",
                &db.name,
                "--max-cron-threads",
                "0",
            ]
            .map(String::from),
        )
        .collect();
    let a = Server::start_with(env, &Kind::HOST, &dir_a, &args)?;
    let b = Server::start_with(env, &Kind::HOST, &dir_b, &args)?;
    let mut clients = (0..CLIENTS)
        .map(|_| subscribe(a.port))
        .collect::<Result<Vec<_>, _>>()?;
    // The subscriptions are live once a first message reaches every client.
    let send = |tag: &str| -> Result<(), String> {
        let path = format!("/test_bus/send?channel=bench&tag={tag}");
        let r = http::send(b.port, "GET", &path, &[], b"", Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        if r.status != 200 {
            return Err(format!("{path}: {} {}", r.status, r.text()));
        }
        Ok(())
    };
    let started = Instant::now();
    loop {
        send("warm")?;
        if clients.iter_mut().all(|ws| wait_for(ws, "warm").is_ok()) {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(format!("the clients got nothing:\n{}", a.log_tail()));
        }
    }
    let mut latencies = Vec::with_capacity(sends);
    for i in 0..sends {
        let tag = format!("m{i}");
        let t0 = Instant::now();
        send(&tag)?;
        for ws in clients.iter_mut() {
            wait_for(ws, &tag)?;
        }
        latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    drop(clients);
    a.stop();
    b.stop();
    drop(db);
    let _ = std::fs::remove_dir_all(&dir_a);
    let _ = std::fs::remove_dir_all(&dir_b);
    eprintln!("bench: bus fan-out latencies (ms): {latencies:.1?}");
    Ok(vec![Row::host_only(
        "13",
        format!("bus: a route's send on host B to delivery on all {CLIENTS} websockets of host A, median and p99 (ms; {sends} sends one at a time, the send's HTTP round trip included; max {:.1})", max(&latencies)),
        format!("{:.1} / {:.1}", median(&latencies), percentile(&latencies, 99.0)),
        "",
        String::new(),
    )])
}
