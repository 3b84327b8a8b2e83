//! Regression tests of the security review's session findings (real host, real
//! PostgreSQL, real websocket and HTTP clients): the bus stops pushing a private channel
//! once its session is gone or its token changed (finding 1); a request's save racing a
//! logout does not bring the session back (finding 2); the PostgreSQL session store stops
//! trusting its cache when its LISTEN connection stops answering (finding 4); `/metrics`
//! is not opened by a forged `X-Forwarded-For` (finding 10).

use inphms_tests::pg::{self, TestDb};
use inphms_tests::{http_get, rpc, send, with_test_addons, Server, TestDir};
use serde_json::json;
use std::net::TcpStream;
use std::time::Duration;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

type Ws = WebSocket<TcpStream>;

fn args(db: &TestDb) -> Vec<String> {
    let mut args = pg::server_args();
    args.push(format!("--addons-path={}", with_test_addons(&[])));
    args.extend(["-d".into(), db.name.clone()]);
    args.push("--log-handler=inphms.addons.bus:DEBUG".into());
    args
}

/// A database with `test_bus` (and so `bus`) and `test_http` installed, and a host on it
/// (its sessions in that database with `pg_sessions`, else in files).
fn host_with(tag: &str, pg_sessions: bool) -> (TestDir, TestDb, Server) {
    let td = TestDir::new();
    let db = TestDb::new(tag);
    let mut a: Vec<String> = vec!["server".into(), "--stop-after-init".into()];
    a.extend(args(&db));
    a.extend(["-i".into(), "test_bus,test_http".into()]);
    let out = td.cmd(a).timeout(Duration::from_secs(120)).run();
    assert_eq!(out.code, Some(0), "{out}");
    let mut a = args(&db);
    if pg_sessions {
        a.push("--session-store=postgresql".into());
        a.push(format!("--session-db={}", db.name));
    }
    let server = td.server(a).start();
    (td, db, server)
}

fn bus_host(tag: &str) -> (TestDir, TestDb, Server) {
    host_with(tag, false)
}

/// Logs `admin` in; the session id.
fn login(port: u16, db: &TestDb) -> String {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "call",
        "params": {"db": db.name, "login": "admin", "password": "admin"}});
    let r = rpc(port, "/web/session/authenticate", body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\"uid\": 2"), "{}", r.text());
    r.cookie("session_id").expect("a session cookie")
}

/// A websocket to `/websocket` with session `sid`, subscribed (the user's own channel
/// with it) and served live.
fn subscribed_socket(server: &Server, db: &TestDb, sid: &str) -> Ws {
    let port = server.port();
    let mut req = format!("ws://127.0.0.1:{port}/websocket")
        .into_client_request()
        .expect("a websocket URL");
    let h = req.headers_mut();
    h.insert(
        "origin",
        format!("http://127.0.0.1:{port}").parse().unwrap(),
    );
    h.insert("cookie", format!("session_id={sid}").parse().unwrap());
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let (mut ws, _) = tungstenite::client::client(req, stream).expect("handshake");
    let before = server.stderr().matches(" subscribed to ").count();
    let last: i64 = db
        .sql("SELECT coalesce(max(id), 0) FROM bus_bus")
        .parse()
        .unwrap();
    let msg = json!({"event_name": "subscribe", "data": {"channels": [], "last": last}});
    ws.send(Message::text(msg.to_string())).unwrap();
    assert!(
        inphms_tests::wait_until(Duration::from_secs(20), || {
            server.stderr().matches(" subscribed to ").count() > before
        }),
        "{}",
        server.stderr()
    );
    ws
}

/// The next data or close message (pings and pongs skipped).
fn next(ws: &mut Ws) -> Message {
    loop {
        match ws.read() {
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(m) => return m,
            Err(e) => panic!("read a websocket message: {e:?}"),
        }
    }
}

fn send_to_admin(port: u16, tag: &str) {
    let r = http_get(
        port,
        &format!("/test_bus/send?channel=res.users,2&n=1&tag={tag}"),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The socket gets the push `tag` (its session holds).
fn gets(ws: &mut Ws, tag: &str) {
    match next(ws) {
        Message::Text(t) => assert!(t.as_str().contains(tag), "{t}"),
        other => panic!("expected the push {tag}, got {other:?}"),
    }
}

/// Pushes `tag` to the socket until it is closed with 4001 (a verdict on its session is
/// kept up to a second: pushes may still go meanwhile), within 10 s.
fn pushes_until_4001(ws: &mut Ws, port: u16, tag: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "still pushed to after 10 s"
        );
        send_to_admin(port, tag);
        match next(ws) {
            Message::Text(_) => continue,
            Message::Close(Some(frame)) => {
                assert_eq!(frame.code, CloseCode::from(4001), "{frame:?}");
                return;
            }
            other => panic!("expected a push or a close with 4001, got {other:?}"),
        }
    }
}

#[test]
fn the_bus_stops_pushing_a_users_channel_once_the_session_is_logged_out_or_stale() {
    let (_td, db, server) = bus_host("rs_bus_logout");
    let port = server.port();

    // Logged out over HTTP with the socket's cookie: the next push closes it with 4001.
    let sid = login(port, &db);
    let mut ws = subscribed_socket(&server, &db, &sid);
    send_to_admin(port, "before_logout");
    gets(&mut ws, "before_logout");
    let cookie = format!("session_id={sid}");
    let r = http_get(port, "/web/session/logout", &[("Cookie", &cookie)]);
    assert_eq!(r.status, 303, "{}", r.text());
    pushes_until_4001(&mut ws, port, "after_logout");

    // The password changed elsewhere (the session token no longer matches): the same.
    let sid = login(port, &db);
    let mut ws = subscribed_socket(&server, &db, &sid);
    send_to_admin(port, "before_password");
    gets(&mut ws, "before_password");
    db.sql("UPDATE res_users SET password = password || 'x' WHERE id = 2");
    pushes_until_4001(&mut ws, port, "after_password");
    assert!(
        server
            .stderr()
            .contains("session expired (logged out, or its token changed)"),
        "{}",
        server.stderr()
    );
}

/// A JSON-RPC call with session `sid`; the answer's text.
fn rpc_as(port: u16, sid: &str, path: &str) -> String {
    let cookie = format!("session_id={sid}");
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "call", "params": {}}).to_string();
    let headers = [
        ("Content-Type", "application/json"),
        ("Cookie", cookie.as_str()),
    ];
    send(port, "POST", path, &headers, body.as_bytes()).text()
}

/// A request changes its session (`S`) while another logs `S` out: when it saves, after
/// the logout, `S` stays logged out.
fn a_save_racing_a_logout(tag: &str, pg_sessions: bool) {
    let (td, db, server) = host_with(tag, pg_sessions);
    let port = server.port();
    let sid = login(port, &db);
    assert!(
        rpc_as(port, &sid, "/web/session/get_session_info").contains("\"uid\": 2"),
        "logged in"
    );
    let go = td.join("go");
    let path = format!(
        "/test_http/review/set_when/color/blue?file={}",
        go.display()
    );
    let cookie = format!("session_id={sid}");
    let slow = {
        let cookie = cookie.clone();
        std::thread::spawn(move || http_get(port, &path, &[("Cookie", &cookie)]))
    };
    assert!(
        inphms_tests::wait_until(Duration::from_secs(20), || server
            .stderr()
            .contains("set_when color: waiting")),
        "{}",
        server.stderr()
    );
    let out = http_get(port, "/web/session/logout", &[("Cookie", &cookie)]);
    assert_eq!(out.status, 303, "{}", out.text());
    std::fs::write(&go, b"").unwrap();
    let slow = slow.join().expect("the slow request");
    assert_eq!(slow.status, 200, "{}", slow.text());
    let info = rpc_as(port, &sid, "/web/session/get_session_info");
    assert!(
        !info.contains("\"uid\": 2"),
        "the logged-out session came back: {info}"
    );
    let color = http_get(port, "/test_http/get/color", &[("Cookie", &cookie)]);
    assert_eq!(color.text(), "", "the logged-out session came back");
}

#[test]
fn a_save_racing_a_logout_does_not_bring_the_session_back() {
    a_save_racing_a_logout("rs_race_fs", false);
}

#[test]
fn a_save_racing_a_logout_does_not_bring_the_session_back_in_postgresql() {
    a_save_racing_a_logout("rs_race_pg", true);
}

/// Resumes a stopped PostgreSQL backend when dropped (a failed assertion included).
struct Stopped(u32);

impl Drop for Stopped {
    fn drop(&mut self) {
        inphms_tests::send_signal(self.0, "CONT");
    }
}

#[test]
fn a_session_store_whose_listen_connection_hangs_stops_serving_its_cache() {
    let (_td, db, server) = host_with("rs_listen_hang", true);
    let port = server.port();
    let sid = login(port, &db);
    // Read (and so cached) while the LISTEN connection is fine.
    for _ in 0..2 {
        assert!(rpc_as(port, &sid, "/web/session/get_session_info").contains("\"uid\": 2"));
    }
    // The host's LISTEN connection stops answering (a half-open connection: its backend
    // stopped, nothing delivered, nothing refused).
    let pid: u32 = db
        .sql(&format!(
            "SELECT pid FROM pg_stat_activity WHERE datname = '{}' AND query = 'LISTEN inphms_session'",
            db.name
        ))
        .trim()
        .parse()
        .expect("the pid of the host's LISTEN connection");
    inphms_tests::send_signal(pid, "STOP");
    let _resume = Stopped(pid);
    // Logged out elsewhere; the notification never reaches the host.
    db.sql(&format!("DELETE FROM inphms_session WHERE id = '{sid}'"));
    assert!(
        inphms_tests::wait_until(Duration::from_secs(25), || {
            !rpc_as(port, &sid, "/web/session/get_session_info").contains("\"uid\": 2")
        }),
        "the host still serves the deleted session from its cache: {}",
        server.stderr()
    );
    assert!(
        server.stderr().contains("did not answer its probe"),
        "{}",
        server.stderr()
    );
}

/// This machine's address on its default route (not loopback): the source of a client
/// that is not local to the host's loopback. No packet is sent.
fn outside_address() -> std::net::IpAddr {
    let udp = std::net::UdpSocket::bind("0.0.0.0:0").expect("a UDP socket");
    udp.connect("192.0.2.1:9")
        .and_then(|()| udp.local_addr())
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .expect("this test needs a non-loopback IPv4 address with a route (a default route)")
}

/// `GET /metrics` on 127.0.0.1:`port` from source address `source` (Python's stdlib
/// client), with `headers`; the status.
fn metrics_from(source: std::net::IpAddr, port: u16, headers: &[(&str, &str)]) -> u16 {
    let headers: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), json!(v)))
        .collect();
    let script = format!(
        "import http.client, json\n\
         c = http.client.HTTPConnection('127.0.0.1', {port}, timeout=20, source_address=('{source}', 0))\n\
         c.request('GET', '/metrics', headers=json.loads({headers:?}))\n\
         print(c.getresponse().status)\n",
        headers = serde_json::Value::Object(headers).to_string(),
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a status")
}

#[test]
fn metrics_are_not_opened_by_a_forged_forwarded_for() {
    let td = TestDir::new();
    // Proxy mode with no proxy_trusted: any peer's forwarded headers are applied.
    let server = td
        .test_http_server(&["--metrics", "--proxy-mode"])
        .start_healthy();
    let port = server.port();
    let outside = outside_address();
    let forged = [
        ("X-Forwarded-For", "127.0.0.1"),
        ("X-Forwarded-Host", "erp.example.com"),
    ];
    assert_eq!(metrics_from(outside, port, &[]), 403);
    assert_eq!(
        metrics_from(outside, port, &forged),
        403,
        "forged X-Forwarded-For"
    );
    // The loopback peer itself is served, with or without forwarded headers.
    let loopback = "127.0.0.1".parse().unwrap();
    assert_eq!(metrics_from(loopback, port, &[]), 200);
    assert_eq!(metrics_from(loopback, port, &forged), 200);
}
