//! The bus behind nginx (issue 21): three hosts with `session_store = postgresql` behind a
//! real nginx ([`inphms_tests::cluster`]). A user logs in through nginx and opens
//! `/websocket` through it (the upgrade proxied) with the session cookie; a message sent by a
//! route of another host reaches the socket; the socket's host is killed (SIGKILL), and the
//! client reconnects through nginx with `last`: it gets what it missed, its user channel
//! included, so its session was still seen by the host it reached.

use inphms_tests::cluster::{Cluster, ClusterHost, ClusterOptions};
use inphms_tests::{http_get, wait_until, with_test_addons};
use serde_json::{json, Value};
use std::net::TcpStream;
use std::time::Duration;
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

type Ws = WebSocket<TcpStream>;

/// A websocket to `/websocket` through nginx with the session `sid`; the socket and the
/// host nginx handed it to (its `X-Upstream`, the last address after any retry).
fn connect(c: &Cluster, sid: &str) -> (Ws, String) {
    let port = c.nginx.port();
    let mut req = format!("ws://127.0.0.1:{port}/websocket")
        .into_client_request()
        .expect("a websocket URL");
    let h = req.headers_mut();
    h.insert(
        "origin",
        format!("http://127.0.0.1:{port}").parse().expect("a value"),
    );
    h.insert(
        "cookie",
        format!("session_id={sid}").parse().expect("a value"),
    );
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to nginx");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("set the read timeout");
    let (ws, resp) = tungstenite::client::client(req, stream)
        .unwrap_or_else(|e| panic!("websocket handshake through nginx: {e:?}\n{}", c.logs()));
    assert_eq!(resp.status(), 101);
    let upstream = resp
        .headers()
        .get("x-upstream")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no X-Upstream on the 101: {:?}", resp.headers()));
    let last = upstream.rsplit(',').next().unwrap_or("").trim().to_owned();
    (ws, last)
}

fn host_at<'c>(c: &'c Cluster, addr: &str) -> &'c ClusterHost {
    c.hosts
        .iter()
        .find(|h| h.addr() == addr)
        .unwrap_or_else(|| panic!("no host at {addr}"))
}

fn subscribed(h: &ClusterHost) -> usize {
    h.stderr().matches(" subscribed to ").count()
}

/// Subscribes `ws` (served by `h`) to `channels` after `last` and waits until `h` serves the
/// subscription live; the line the host logged.
fn subscribe(c: &Cluster, h: &ClusterHost, ws: &mut Ws, channels: &[&str], last: i64) -> String {
    let before = subscribed(h);
    let msg = json!({"event_name": "subscribe", "data": {"channels": channels, "last": last}});
    ws.send(Message::text(msg.to_string()))
        .expect("send subscribe");
    assert!(
        wait_until(Duration::from_secs(20), || subscribed(h) > before),
        "host {} never subscribed\n{}",
        h.name,
        c.logs()
    );
    let log = h.stderr();
    let line = log
        .lines()
        .filter(|l| l.contains(" subscribed to "))
        .nth(before)
        .unwrap_or_default();
    line.to_owned()
}

/// The notifications of the next push (pings skipped).
fn push(ws: &mut Ws) -> Vec<Value> {
    loop {
        match ws.read() {
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str()).expect("a JSON push");
                return v.as_array().expect("a list of notifications").clone();
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::Interrupted => {
                continue
            }
            other => panic!("expected a push, got {other:?}"),
        }
    }
}

/// Reads pushes until `n` notifications arrived: `tag` + `n` of each.
fn tags(ws: &mut Ws, n: usize) -> (Vec<String>, Vec<i64>) {
    let mut all = Vec::new();
    while all.len() < n {
        all.extend(push(ws));
    }
    assert_eq!(all.len(), n, "{all:?}");
    let tags = all
        .iter()
        .map(|m| {
            format!(
                "{}{}",
                m["message"]["payload"]["tag"].as_str().unwrap_or("?"),
                m["message"]["payload"]["n"]
            )
        })
        .collect();
    let ids = all
        .iter()
        .map(|m| m["id"].as_i64().expect("an id"))
        .collect();
    (tags, ids)
}

/// `/test_bus/send` on host `h` itself (not through nginx).
fn send_on(h: &ClusterHost, query: &str) {
    let r = http_get(h.port(), &format!("/test_bus/send?{query}"), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn a_websocket_through_nginx_gets_messages_of_other_hosts_and_what_it_missed_after_its_host_died() {
    let mut options = ClusterOptions::new(3, with_test_addons(&[]));
    options.install = vec!["test_bus".into()];
    options
        .extra
        .push("log_handler = inphms.addons.bus:DEBUG".into());
    let mut c = Cluster::start("mh_bus", options);

    // The login, through nginx.
    let (_, uid, sid) = c.login("admin", "admin");
    let user_channel = format!("res.users,{uid}");

    // The websocket, through nginx, with the session cookie.
    let start: i64 =
        c.db.sql("SELECT coalesce(max(id), 0) FROM bus_bus")
            .parse()
            .expect("an id");
    let (mut ws, first_addr) = connect(&c, &sid);
    let first = host_at(&c, &first_addr);
    let first_name = first.name;
    let line = subscribe(&c, first, &mut ws, &["mh"], start);
    // `mh`, the broadcast channel and the user's own: the session is logged in there.
    assert!(line.contains("subscribed to 3 channel(s)"), "{line}");

    // Sent from routes served by the two other hosts: both arrive, in order.
    let others: Vec<&ClusterHost> = c.hosts.iter().filter(|h| h.addr() != first_addr).collect();
    send_on(others[0], "channel=mh&n=2&tag=live");
    send_on(others[1], &format!("channel={user_channel}&n=1&tag=user"));
    let (got, ids) = tags(&mut ws, 3);
    assert_eq!(got, ["live1", "live2", "user1"], "{}", c.logs());
    let last = *ids.last().expect("an id");

    // The socket's host dies; what is sent meanwhile (through nginx, on whichever host is
    // left) waits in bus_bus.
    let victim = c
        .hosts
        .iter()
        .position(|h| h.addr() == first_addr)
        .expect("the host");
    c.hosts[victim].kill();
    match ws.read() {
        Ok(Message::Close(_)) | Err(_) => {}
        other => panic!("the socket outlived its host: {other:?}"),
    }
    for (query, n) in [
        ("channel=mh&n=3&tag=missed", 3),
        (&*format!("channel={user_channel}&n=1&tag=missed_user"), 1),
        ("channel=elsewhere&n=2&tag=not_mine", 2),
    ] {
        let r = c.get(&format!("/test_bus/send?{query}"), &[]);
        assert_eq!(r.status, 200, "{}\n{}", r.text(), c.logs());
        assert_eq!(r.text(), format!("sent {n}"));
        let by = c.answered_by(&r).expect("X-Upstream");
        assert_ne!(by.name, first_name);
    }

    // The client reconnects through nginx with `last`: another host, the same session.
    let (mut ws, second_addr) = connect(&c, &sid);
    assert_ne!(
        second_addr, first_addr,
        "nginx handed the socket to the dead host"
    );
    let second = host_at(&c, &second_addr);
    let line = subscribe(&c, second, &mut ws, &["mh"], last);
    assert!(
        line.contains("subscribed to 3 channel(s)"),
        "still logged in: {line}"
    );
    let (got, ids) = tags(&mut ws, 4);
    assert_eq!(
        got,
        ["missed1", "missed2", "missed3", "missed_user1"],
        "{}",
        c.logs()
    );
    assert!(
        ids[0] > last && ids.windows(2).all(|w| w[0] < w[1]),
        "{ids:?}"
    );

    // Then live ones again, from the third host, with no repeat of the backlog.
    let third = c
        .hosts
        .iter()
        .find(|h| h.addr() != first_addr && h.addr() != second_addr)
        .expect("the third host");
    send_on(third, &format!("channel={user_channel}&n=1&tag=after"));
    let (got, _) = tags(&mut ws, 1);
    assert_eq!(got, ["after1"]);
    eprintln!(
        "socket on host {} then, after its SIGKILL, on host {}",
        first_name, second.name
    );
}
