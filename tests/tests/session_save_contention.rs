//! Saves of one session by many concurrent requests, sessions in PostgreSQL (a hang found
//! by bench item 14): a save waiting for its session's lock must not hold a runtime
//! worker's core, else with every core waiting so nothing drives the holder's query to
//! PostgreSQL and the host stops answering. Real host, real PostgreSQL, 32 clients on one
//! logged-in session, each request changing it.

use inphms_tests::pg::{self, TestDb};
use inphms_tests::{rpc, try_request, with_test_addons, TestDir};
use serde_json::json;
use std::sync::mpsc;
use std::time::Duration;

const CLIENTS: usize = 32;
const REQUESTS: usize = 60;

#[test]
fn thirty_two_clients_changing_one_session_in_postgresql_are_all_answered() {
    let td = TestDir::new();
    let db = TestDb::new("save_contention");
    let mut base = pg::server_args();
    base.push(format!("--addons-path={}", with_test_addons(&[])));
    base.extend(["-d".into(), db.name.clone()]);
    let mut init: Vec<String> = vec!["server".into(), "--stop-after-init".into()];
    init.extend(base.clone());
    init.extend(["-i".into(), "test_http".into()]);
    let out = td.cmd(init).timeout(Duration::from_secs(120)).run();
    assert_eq!(out.code, Some(0), "{out}");
    let mut a = base;
    a.push("--session-store=postgresql".into());
    a.push(format!("--session-db={}", db.name));
    let server = td.server(a).start();
    let port = server.port();

    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "call",
        "params": {"db": db.name, "login": "admin", "password": "admin"}});
    let r = rpc(port, "/web/session/authenticate", body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let sid = r.cookie("session_id").expect("a session cookie");

    let (done, results) = mpsc::channel();
    for client in 0..CLIENTS {
        let (done, cookie) = (done.clone(), format!("session_id={sid}"));
        std::thread::spawn(move || {
            let mut answered = 0;
            for n in 0..REQUESTS {
                let raw = format!(
                    "GET /test_http/set/k{client}/{n} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
                );
                match try_request(port, raw.as_bytes()) {
                    Ok(r) if r.status == 200 => answered += 1,
                    Ok(r) => {
                        let _ = done.send(Err(format!("client {client}: {}", r.status)));
                        return;
                    }
                    Err(e) => {
                        let _ = done.send(Err(format!("client {client}: {e}")));
                        return;
                    }
                }
            }
            let _ = done.send(Ok(answered));
        });
    }
    drop(done);
    let mut answered = 0;
    for _ in 0..CLIENTS {
        // Each client's 60 requests take well under a second when the host serves; a
        // hung host answers none of them.
        match results.recv_timeout(Duration::from_secs(90)) {
            Ok(Ok(n)) => answered += n,
            Ok(Err(e)) => panic!("a request failed: {e}\n{}", server.stderr()),
            Err(_) => panic!(
                "the host stopped answering ({answered} of {} answered)\n{}",
                CLIENTS * REQUESTS,
                server.stderr()
            ),
        }
    }
    assert_eq!(answered, CLIENTS * REQUESTS);
    // Every change was saved into the one session.
    let r = inphms_tests::http_get(
        port,
        "/test_http/get/k7",
        &[("Cookie", &format!("session_id={sid}"))],
    );
    assert_eq!(r.text(), (REQUESTS - 1).to_string(), "{}", r.text());
}
