//! The bus across hosts (issue 21): three real hosts on one database of the shared
//! PostgreSQL (each its own socket and data folder), the `bus` addon's `/websocket` with a
//! real websocket client (tungstenite), messages sent by `test_bus`'s routes and cron job
//! through `inphms_sdk::bus`, stored in `bus_bus` and fanned out with `NOTIFY imbus`.

use inphms_tests::cron::{add_job, run_manually};
use inphms_tests::pg::{self, TestDb};
use inphms_tests::{http_get, rpc, wait_until, with_test_addons, Server, TestDir};
use serde_json::{json, Value};
use std::net::TcpStream;
use std::time::Duration;
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

type Ws = WebSocket<TcpStream>;

fn args(db: &TestDb) -> Vec<String> {
    let mut args = pg::server_args();
    args.push(format!("--addons-path={}", with_test_addons(&[])));
    args.extend(["-d".into(), db.name.clone()]);
    args.push("--log-handler=inphms.addons.bus:DEBUG".into());
    args
}

/// A database with `test_bus` (and so `bus`) installed.
fn install(tag: &str) -> (TestDir, TestDb) {
    let td = TestDir::new();
    let db = TestDb::new(tag);
    let mut a: Vec<String> = vec!["server".into(), "--stop-after-init".into()];
    a.extend(args(&db));
    a.extend(["-i".into(), "test_bus".into()]);
    let out = td.cmd(a).timeout(Duration::from_secs(120)).run();
    assert_eq!(out.code, Some(0), "{out}");
    (td, db)
}

/// A host on `db` with its own folder (data dir, socket) and `cron` cron threads.
fn host(db: &TestDb, cron: u32) -> (TestDir, Server) {
    let td = TestDir::new();
    let mut a = args(db);
    a.push(format!("--max-cron-threads={cron}"));
    let server = td.server(a).start();
    (td, server)
}

/// A websocket to `/websocket` on `port`, with an `Origin` (or none).
fn connect_with(port: u16, origin: Option<&str>) -> Ws {
    let mut req = format!("ws://127.0.0.1:{port}/websocket")
        .into_client_request()
        .expect("a websocket URL");
    if let Some(origin) = origin {
        req.headers_mut()
            .insert("origin", origin.parse().expect("a header value"));
    }
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("set the read timeout");
    let (ws, resp) = tungstenite::client::client(req, stream).expect("websocket handshake");
    assert_eq!(resp.status(), 101);
    ws
}

/// A handshake the host refuses: its status and body.
fn refused(port: u16, origin: Option<&str>) -> (u16, String) {
    let mut req = format!("ws://127.0.0.1:{port}/websocket")
        .into_client_request()
        .expect("a websocket URL");
    if let Some(origin) = origin {
        req.headers_mut()
            .insert("origin", origin.parse().expect("a header value"));
    }
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("set the read timeout");
    match tungstenite::client::client(req, stream) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            let body = resp.body().as_deref().unwrap_or_default();
            (
                resp.status().as_u16(),
                String::from_utf8_lossy(body).into_owned(),
            )
        }
        Ok(_) => panic!("upgraded without an Origin"),
        Err(e) => panic!("the handshake failed otherwise: {e:?}"),
    }
}

fn connect(port: u16) -> Ws {
    connect_with(port, Some(&format!("http://127.0.0.1:{port}")))
}

fn subscribed(server: &Server) -> usize {
    server.stderr().matches(" subscribed to ").count()
}

/// Subscribes `ws` (on `server`) to `channels` after `last`, and waits until the host
/// serves the subscription live.
fn subscribe(server: &Server, ws: &mut Ws, channels: &[&str], last: i64) {
    let before = subscribed(server);
    let msg = json!({"event_name": "subscribe", "data": {"channels": channels, "last": last}});
    ws.send(Message::text(msg.to_string()))
        .expect("send subscribe");
    assert!(
        wait_until(Duration::from_secs(20), || subscribed(server) > before),
        "{}",
        server.stderr()
    );
}

/// The next data or close message (pings and pongs skipped).
fn next(ws: &mut Ws) -> Message {
    loop {
        match ws.read() {
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(m) => return m,
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::Interrupted => {
                continue
            }
            Err(e) => panic!("read a websocket message: {e:?}"),
        }
    }
}

/// The notifications of the next push.
fn push(ws: &mut Ws) -> Vec<Value> {
    match next(ws) {
        Message::Text(t) => {
            let v: Value = serde_json::from_str(t.as_str()).expect("a JSON push");
            v.as_array().expect("a list of notifications").clone()
        }
        other => panic!("expected a push, got {other:?}"),
    }
}

/// Reads pushes until `n` notifications arrived.
fn notifications(ws: &mut Ws, n: usize) -> Vec<Value> {
    let mut all = Vec::new();
    while all.len() < n {
        all.extend(push(ws));
    }
    assert_eq!(all.len(), n, "{all:?}");
    all
}

fn send(port: u16, query: &str) {
    let r = http_get(port, &format!("/test_bus/send?{query}"), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
}

fn ids(list: &[Value]) -> Vec<i64> {
    list.iter()
        .map(|n| n["id"].as_i64().expect("an id"))
        .collect()
}

fn max_id(db: &TestDb) -> i64 {
    db.sql("SELECT coalesce(max(id), 0) FROM bus_bus")
        .parse()
        .expect("an id")
}

#[test]
fn messages_sent_on_one_host_reach_subscribers_on_the_others_in_order() {
    let (_td, db) = install("bus_fanout");
    let (_ta, a) = host(&db, 0);
    let (_tb, b) = host(&db, 0);
    let (_tc, c) = host(&db, 0);
    let mut on_a = connect(a.port());
    let mut on_c = connect(c.port());
    let mut other = connect(a.port());
    subscribe(&a, &mut on_a, &["chan"], 0);
    subscribe(&c, &mut on_c, &["chan"], 0);
    subscribe(&a, &mut other, &["other"], 0);
    // 40 sent one by one, then 40 at once, then a transaction that rolls back, then one more:
    // each client gets the 81 that committed, by id, in the order sent.
    send(b.port(), "channel=chan&n=40&tag=one");
    send(b.port(), "channel=chan&n=40&tag=many&many=1");
    let r = http_get(b.port(), "/test_bus/send_then_fail?channel=chan", &[]);
    assert_eq!(r.status, 400, "{}", r.text());
    send(b.port(), "channel=chan&n=1&tag=end");
    for ws in [&mut on_a, &mut on_c] {
        let got = notifications(ws, 81);
        let ids = ids(&got);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        let seq: Vec<String> = got
            .iter()
            .map(|n| {
                assert_eq!(n["message"]["type"], "test_bus/n", "{n}");
                format!(
                    "{}{}",
                    n["message"]["payload"]["tag"].as_str().unwrap(),
                    n["message"]["payload"]["n"]
                )
            })
            .collect();
        let expected: Vec<String> = (1..=40)
            .map(|i| format!("one{i}"))
            .chain((1..=40).map(|i| format!("many{i}")))
            .chain(["end1".to_owned()])
            .collect();
        assert_eq!(seq, expected);
    }
    // The socket subscribed to another channel got none of them: its first push is its own.
    send(c.port(), "channel=other&n=1&tag=mine");
    let got = push(&mut other);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["message"]["payload"]["tag"], "mine");
    // The stored shape is Odoo's.
    let row = db.sql("SELECT channel || ' ' || message FROM bus_bus ORDER BY id DESC LIMIT 1");
    assert_eq!(
        row,
        format!(
            r#"["{}","other"] {{"type":"test_bus/n","payload":{{"n":1,"tag":"mine"}}}}"#,
            db.name
        )
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM bus_bus WHERE message LIKE '%rolled_back%'"),
        "0"
    );
}

#[test]
fn a_client_reconnecting_with_last_gets_what_it_missed() {
    let (_td, db) = install("bus_last");
    let (_ta, a) = host(&db, 0);
    let (_tb, b) = host(&db, 0);
    let (_tc, c) = host(&db, 0);
    let start = max_id(&db);
    let mut ws = connect(a.port());
    subscribe(&a, &mut ws, &["resume"], start);
    send(b.port(), "channel=resume&n=1&tag=first");
    let got = push(&mut ws);
    assert_eq!(got.len(), 1, "{got:?}");
    let last = got[0]["id"].as_i64().unwrap();
    drop(ws);
    // Missed while away: 5 on its channel, 2 on another.
    send(b.port(), "channel=resume&n=5&tag=missed");
    send(b.port(), "channel=elsewhere&n=2&tag=not_mine");
    let mut ws = connect(c.port());
    subscribe(&c, &mut ws, &["resume"], last);
    let got = notifications(&mut ws, 5);
    let tags: Vec<String> = got
        .iter()
        .map(|n| {
            format!(
                "{}{}",
                n["message"]["payload"]["tag"].as_str().unwrap(),
                n["message"]["payload"]["n"]
            )
        })
        .collect();
    assert_eq!(
        tags,
        ["missed1", "missed2", "missed3", "missed4", "missed5"]
    );
    assert!(ids(&got)[0] > last);
    // And then live ones, without a repeat of the backlog.
    send(a.port(), "channel=resume&n=1&tag=live");
    let got = push(&mut ws);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["message"]["payload"]["tag"], "live");
}

#[test]
fn a_message_sent_by_a_cron_job_arrives() {
    let (_td, db) = install("bus_cron");
    let (_ta, a) = host(&db, 0);
    let mut ws = connect(a.port());
    subscribe(&a, &mut ws, &["cron"], max_id(&db));
    let id = add_job(&db, "bus test", "test_bus.send", "1 days", true);
    // The job runs on another host, with cron threads.
    let (_tb, b) = host(&db, 1);
    let got = push(&mut ws);
    assert_eq!(got.len(), 1, "{got:?}\n{}", b.stderr());
    assert_eq!(got[0]["message"]["type"], "test_bus/cron");
    assert_eq!(got[0]["message"]["payload"]["job"], id);
}

#[test]
fn hostile_input_is_refused_clearly_and_the_host_goes_on() {
    let (_td, db) = install("bus_hostile");
    let (_ta, a) = host(&db, 0);
    let port = a.port();
    // No Origin, or an empty one: 400 before the upgrade, saying why (Odoo's
    // `_assert_handshake_validity`), and a line in the log.
    for origin in [None, Some("")] {
        let (status, body) = refused(port, origin);
        assert_eq!(status, 400, "{body}");
        assert!(
            body.contains("Empty or missing header(s): origin"),
            "{body}"
        );
    }
    assert!(
        a.wait_for_log(
            "websocket upgrade to /websocket refused (400): Empty or missing header(s): origin",
            Duration::from_secs(5)
        ),
        "{}",
        a.stderr()
    );
    // A foreign Origin is served, as in Odoo (anonymous only with ODOO_BUS_PUBLIC_SAMESITE_WS).
    let mut ws = connect_with(port, Some("https://elsewhere.example"));
    subscribe(&a, &mut ws, &["foreign"], max_id(&db));
    drop(ws);
    // Bad JSON, no event name, channels of the wrong type: logged, the socket stays open.
    let mut ws = connect(port);
    for bad in [
        "{not json",
        r#"{"data": 1}"#,
        r#"{"event_name": "subscribe", "data": {"channels": [1, 2]}}"#,
        r#"{"event_name": "subscribe", "data": {"channels": ["x"], "last": "a"}}"#,
    ] {
        ws.send(Message::text(bad)).expect("send");
    }
    assert!(
        wait_until(Duration::from_secs(20), || {
            let log = a.stderr();
            log.contains("Invalid JSON data")
                && log.contains("Key 'event_name' is missing from request")
                && log.contains("bus.Bus only string channels are allowed.")
                && log.contains("'last' is a notification id")
        }),
        "{}",
        a.stderr()
    );
    subscribe(&a, &mut ws, &["still"], max_id(&db));
    send(port, "channel=still&n=1");
    assert_eq!(push(&mut ws).len(), 1);
    // A subscription past the limits: closed with 1008 and why.
    let huge: Vec<String> = (0..3000).map(|i| format!("c{i}")).collect();
    let msg = json!({"event_name": "subscribe", "data": {"channels": huge, "last": 0}});
    ws.send(Message::text(msg.to_string())).expect("send");
    match next(&mut ws) {
        Message::Close(Some(f)) => {
            assert_eq!(u16::from(f.code), 1008);
            assert_eq!(
                f.reason.as_str(),
                "subscribe: at most 2000 channels, got 3000"
            );
        }
        other => panic!("expected a close, got {other:?}"),
    }
    // The host goes on.
    let r = http_get(port, "/websocket/health", &[]);
    assert_eq!(
        (r.status, r.text()),
        (200, r#"{"status": "pass"}"#.to_owned())
    );
    let mut ws = connect(port);
    subscribe(&a, &mut ws, &["after"], max_id(&db));
    send(port, "channel=after&n=1");
    assert_eq!(push(&mut ws).len(), 1);
}

#[test]
fn polling_clients_peek_and_old_messages_are_deleted() {
    let (td, db) = install("bus_poll");
    let (_ta, a) = host(&db, 0);
    let start = max_id(&db);
    send(a.port(), "channel=poll&n=3&tag=p");
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "call",
        "params": {"channels": ["poll"], "last": start, "is_first_poll": true}});
    let r = rpc(a.port(), "/websocket/peek_notifications", body.to_string());
    let v: Value = serde_json::from_str(&r.text()).expect("JSON");
    let result = &v["result"];
    let n: Vec<i64> = result["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .map(|n| n["message"]["payload"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(n, [1, 2, 3], "{v}");
    assert!(result["channels"]
        .as_array()
        .unwrap()
        .contains(&json!([db.name, "poll"])));
    // Not the first poll, and no polling session: Odoo's SessionExpired (code 100).
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "call",
        "params": {"channels": ["poll"], "last": start}});
    let r = rpc(a.port(), "/websocket/peek_notifications", body.to_string());
    let v: Value = serde_json::from_str(&r.text()).expect("JSON");
    assert_eq!(v["error"]["code"], 100, "{v}");
    // Retention: the bus.gc job deletes what is older than 100 s, and only that.
    db.sql("UPDATE bus_bus SET create_date = create_date - interval '1 hour' WHERE id = (SELECT min(id) FROM bus_bus)");
    let gc: i64 = db
        .sql("SELECT id FROM ir_cron WHERE handler = 'bus.gc'")
        .parse()
        .expect("the bus.gc job");
    let out = run_manually(&td, &db, gc);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(db.sql("SELECT count(*) FROM bus_bus"), "2");
}

/// Logs `admin` in on `port`; the session id.
fn login(port: u16, db: &TestDb) -> String {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "call",
        "params": {"db": db.name, "login": "admin", "password": "admin"}});
    let r = rpc(port, "/web/session/authenticate", body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\"uid\": 2"), "{}", r.text());
    r.cookie("session_id").expect("a session cookie")
}

#[test]
fn a_user_gets_the_channel_of_their_own_and_a_presence() {
    let (_td, db) = install("bus_user");
    let (_ta, a) = host(&db, 0);
    let (_tb, b) = host(&db, 0);
    let sid = login(a.port(), &db);
    let mut req = format!("ws://127.0.0.1:{}/websocket", a.port())
        .into_client_request()
        .expect("a websocket URL");
    let h = req.headers_mut();
    h.insert(
        "origin",
        format!("http://127.0.0.1:{}", a.port()).parse().unwrap(),
    );
    h.insert("cookie", format!("session_id={sid}").parse().unwrap());
    let stream = TcpStream::connect(("127.0.0.1", a.port())).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let (mut ws, _) = tungstenite::client::client(req, stream).expect("handshake");
    subscribe(&a, &mut ws, &[], max_id(&db));
    // broadcast and the user's own.
    assert!(
        a.stderr().contains("subscribed to 2 channel(s)"),
        "{}",
        a.stderr()
    );
    // Sent to user 2's record channel from another host (Odoo sends to the partner's).
    send(b.port(), "channel=res.users,2&n=1&tag=for_admin");
    let got = push(&mut ws);
    assert_eq!(got[0]["message"]["payload"]["tag"], "for_admin", "{got:?}");
    let presence = json!({"event_name": "update_presence", "data": {"inactivity_period": 1000}});
    ws.send(Message::text(presence.to_string())).unwrap();
    let status = || {
        db.sql("SELECT coalesce(string_agg(status, ','), '') FROM bus_presence WHERE user_id = 2")
    };
    assert!(
        wait_until(Duration::from_secs(20), || status() == "online"),
        "{}",
        status()
    );
    ws.close(None).unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || status() == "offline"),
        "{}",
        status()
    );
}

#[test]
fn the_dispatcher_listens_again_after_losing_its_connection() {
    let (_td, db) = install("bus_relisten");
    let (_ta, a) = host(&db, 0);
    let (_tb, b) = host(&db, 0);
    let mut ws = connect(a.port());
    subscribe(&a, &mut ws, &["again"], max_id(&db));
    send(b.port(), "channel=again&n=1&tag=before");
    assert_eq!(push(&mut ws)[0]["message"]["payload"]["tag"], "before");
    // Host A's LISTEN connection (its application_name names its pid) is killed.
    let killed = pg::psql(
        "postgres",
        &format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = 'inphms-{}' AND query = 'LISTEN \"imbus\"'",
            a.pid()
        ),
    );
    assert_eq!(killed, "1");
    assert!(
        a.wait_for_log("lost the LISTEN connection", Duration::from_secs(20)),
        "{}",
        a.stderr()
    );
    // Sent while it reconnects, or after: delivered (the reconnection resyncs), once.
    send(b.port(), "channel=again&n=3&tag=after");
    let got = notifications(&mut ws, 3);
    let n: Vec<i64> = got
        .iter()
        .map(|n| n["message"]["payload"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(n, [1, 2, 3]);
    send(b.port(), "channel=again&n=1&tag=last");
    let got = push(&mut ws);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["message"]["payload"]["tag"], "last");
}
