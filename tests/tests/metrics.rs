//! The Prometheus endpoint (issue 21): `/metrics` is off by default (404); with `--metrics`
//! it is parsed by a Prometheus text-format parser (Python's
//! `prometheus_client.parser.text_string_to_metric_families`, not a grep), and its series
//! move as requests are made: requests by route pattern (never the raw path), method and
//! status class, the latency histogram's count, body bytes, requests in flight, websockets
//! open (up, then down), sessions read and written by store, the generation, swaps (SIGHUP)
//! and re-execs (counted across the re-exec); and cron runs and failures per job on a real
//! database. It is refused (403) to a client outside loopback
//! and `proxy_trusted`, as proxy mode resolves it.

use inphms_tests::cron::{add_job, install_test_db, server_args};
use inphms_tests::pg::TestDb;
use inphms_tests::swap::{install_swap_lib, swap_build, swap_server};
use inphms_tests::ws::{close_code, ws_connect, ws_next};
use inphms_tests::{http_get, rpc, send, wait_until, Server, TestDir};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Reads the samples of a Prometheus text exposition on stdin with `prometheus_client`'s
/// parser; prints one JSON line per family: name, type and samples.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
for f in text_string_to_metric_families(sys.stdin.read()):
    print(json.dumps({"name": f.name, "type": f.type,
        "samples": [[s.name, s.labels, s.value] for s in f.samples]}))
"#;

/// One scrape, parsed: each family's type, and each sample's value by name and labels.
#[derive(Debug, Default)]
struct Scrape {
    types: BTreeMap<String, String>,
    samples: BTreeMap<(String, BTreeMap<String, String>), f64>,
}

impl Scrape {
    /// The sample `name{labels}`, if present.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples.get(&(name.to_owned(), labels)).copied()
    }

    /// The sample `name{labels}`, 0 when absent (a series not created yet).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// Whether any sample's labels have `label` = `value`.
    fn any_label(&self, label: &str, value: &str) -> bool {
        self.samples
            .keys()
            .any(|(_, l)| l.get(label).is_some_and(|v| v == value))
    }
}

/// `/metrics` of the server on `port` (asserting the 200 and the content type), parsed.
fn scrape(port: u16) -> Scrape {
    let resp = http_get(port, "/metrics", &[]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse(&resp.text())
}

/// `text` parsed by Python's `prometheus_client`; panics with its error on a malformed one.
fn parse(text: &str) -> Scrape {
    let mut child = Command::new("python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3 (prometheus_client: .ci/test-deps installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write the exposition to the parser");
    let out = child.wait_with_output().expect("the parser's output");
    assert!(
        out.status.success(),
        "prometheus_client refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut scrape = Scrape::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let family: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let name = family["name"].as_str().expect("a name").to_owned();
        scrape
            .types
            .insert(name, family["type"].as_str().expect("a type").to_owned());
        for s in family["samples"].as_array().expect("samples") {
            let labels = s[1]
                .as_object()
                .expect("labels")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            let value = s[2].as_f64().expect("a value");
            scrape
                .samples
                .insert((s[0].as_str().expect("a name").to_owned(), labels), value);
        }
    }
    scrape
}

fn metrics_server(td: &TestDir, args: &[&str]) -> Server {
    let mut all = vec!["--metrics"];
    all.extend_from_slice(args);
    td.test_http_server(&all).start_healthy()
}

#[test]
fn metrics_are_off_by_default() {
    let td = TestDir::new();
    let server = td.test_http_server(&[]).start_healthy();
    let resp = http_get(server.port(), "/metrics", &[]);
    assert_eq!(resp.status, 404, "{}", resp.text());
}

#[test]
fn request_series_move_per_route_pattern_method_and_status_class() {
    let td = TestDir::new();
    let server = metrics_server(&td, &[]);
    let port = server.port();
    let before = scrape(port);
    for (family, kind) in [
        ("inphms_http_requests", "counter"),
        ("inphms_http_request_duration_seconds", "histogram"),
        ("inphms_http_requests_in_flight", "gauge"),
        ("inphms_websockets_open", "gauge"),
        ("inphms_generation", "gauge"),
        ("inphms_sessions_read", "counter"),
        ("inphms_sessions_written", "counter"),
        ("inphms_swaps", "counter"),
        ("inphms_reexecs", "counter"),
        ("inphms_db_pool_waits", "counter"),
    ] {
        assert_eq!(
            before.types.get(family).map(String::as_str),
            Some(kind),
            "{family}: {:?}",
            before.types
        );
    }
    let health = [
        ("route", "/web/health"),
        ("method", "GET"),
        ("status", "2xx"),
    ];
    let item = [
        ("route", "/test_http/item/<int:id>"),
        ("method", "GET"),
        ("status", "2xx"),
    ];
    let unmatched = [("route", "none"), ("method", "POST"), ("status", "4xx")];
    let echo = [("route", "/test_http/json_echo")];

    for _ in 0..3 {
        assert_eq!(http_get(port, "/web/health", &[]).status, 200);
    }
    for id in [1, 22, 333] {
        assert_eq!(
            http_get(port, &format!("/test_http/item/{id}"), &[]).status,
            200
        );
    }
    assert_eq!(send(port, "POST", "/no/such/route", &[], b"").status, 404);
    let body = br#"{"jsonrpc":"2.0","method":"call","params":{"a":1},"id":1}"#;
    let resp = rpc(port, "/test_http/json_echo", body);
    assert_eq!(resp.status, 200, "{}", resp.text());
    // A session written (saved with its cookie), then read back.
    let resp = http_get(port, "/test_http/set/k/v", &[]);
    let sid = resp.cookie("session_id").expect("a session cookie");
    let cookie = format!("session_id={sid}");
    assert_eq!(
        http_get(port, "/test_http/get/k", &[("Cookie", &cookie)]).text(),
        "v"
    );

    let after = scrape(port);
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    assert_eq!(delta("inphms_http_requests_total", &health), 3.0);
    assert_eq!(
        delta(
            "inphms_http_request_duration_seconds_count",
            &[("route", "/web/health")]
        ),
        3.0
    );
    assert_eq!(
        delta(
            "inphms_http_response_body_bytes_total",
            &[("route", "/web/health")]
        ),
        3.0 * r#"{"status":"pass"}"#.len() as f64
    );
    // The route's pattern, one series for three paths; no raw path as a label.
    assert_eq!(delta("inphms_http_requests_total", &item), 3.0);
    assert!(!after.any_label("route", "/test_http/item/22"));
    assert!(!after.any_label("route", "/no/such/route"));
    assert_eq!(delta("inphms_http_requests_total", &unmatched), 1.0);
    assert_eq!(
        delta("inphms_http_request_body_bytes_total", &echo),
        body.len() as f64
    );
    // The histogram's buckets are cumulative and end with the count.
    let inf = after.value(
        "inphms_http_request_duration_seconds_bucket",
        &[("route", "/web/health"), ("le", "+Inf")],
    );
    assert_eq!(
        inf,
        after.value(
            "inphms_http_request_duration_seconds_count",
            &[("route", "/web/health")]
        )
    );
    let store = [("store", "filesystem")];
    assert!(delta("inphms_sessions_written_total", &store) >= 1.0);
    assert!(delta("inphms_sessions_read_total", &store) >= 1.0);
    // The scrape itself is in flight while it is encoded; generation 1 serves.
    assert_eq!(after.value("inphms_http_requests_in_flight", &[]), 1.0);
    assert_eq!(after.value("inphms_generation", &[]), 1.0);
    assert_eq!(
        after.value(
            "inphms_http_requests_total",
            &[("route", "/metrics"), ("method", "GET"), ("status", "2xx")]
        ),
        1.0,
        "the first scrape is counted once it is answered"
    );
}

#[test]
fn the_websocket_gauge_goes_up_and_down() {
    let td = TestDir::new();
    let server = metrics_server(&td, &[]);
    let port = server.port();
    assert_eq!(scrape(port).value("inphms_websockets_open", &[]), 0.0);
    let mut ws = ws_connect(port, "/websocket/echo", None);
    let _hello = ws_next(&mut ws);
    assert_eq!(scrape(port).value("inphms_websockets_open", &[]), 1.0);
    let upgrades = scrape(port).value(
        "inphms_http_requests_total",
        &[
            ("route", "/websocket/echo"),
            ("method", "GET"),
            ("status", "1xx"),
        ],
    );
    assert_eq!(upgrades, 1.0);
    ws.close(None).expect("send a close");
    let closed = ws_next(&mut ws);
    assert!(
        matches!(closed, tungstenite::Message::Close(_)),
        "{closed:?} {:?}",
        close_code(&closed)
    );
    assert!(
        wait_until(Duration::from_secs(10), || scrape(port)
            .value("inphms_websockets_open", &[])
            == 0.0),
        "{}",
        server.stderr()
    );
}

#[test]
fn refused_to_a_client_outside_loopback_and_proxy_trusted() {
    let td = TestDir::new();
    // nginx at 127.0.0.1 relays for clients; the scraper sits in 10.0.0.0/8.
    let server = metrics_server(
        &td,
        &["--proxy-mode", "--proxy-trusted=127.0.0.0/8,10.0.0.0/8"],
    );
    let port = server.port();
    let relayed = |client: &str| {
        http_get(
            port,
            "/metrics",
            &[
                ("X-Forwarded-For", client),
                ("X-Forwarded-Host", "erp.example.com"),
            ],
        )
    };
    let outside = relayed("203.0.113.9");
    assert_eq!(outside.status, 403, "{}", outside.text());
    assert!(!outside.text().contains("inphms_"), "{}", outside.text());
    assert_eq!(relayed("10.1.2.3").status, 200);
    assert_eq!(relayed("127.0.0.1").status, 200);
    // Not relayed: the peer itself (loopback).
    assert_eq!(http_get(port, "/metrics", &[]).status, 200);
    // Only GET and HEAD.
    assert_eq!(send(port, "POST", "/metrics", &[], b"").status, 405);
    // The refusals are counted too, under the endpoint's own route.
    let s = scrape(port);
    assert_eq!(
        s.value(
            "inphms_http_requests_total",
            &[("route", "/metrics"), ("method", "GET"), ("status", "4xx")]
        ),
        1.0
    );
}

#[test]
fn cron_runs_and_failures_are_counted_per_job() {
    let td = TestDir::new();
    let db = TestDb::new("metrics_cron");
    install_test_db(&td, &db);
    add_job(&db, "metrics ok", "test_db.write_row", "1 days", true);
    add_job(
        &db,
        "metrics fail",
        "test_db.commit_then_fail",
        "1 days",
        true,
    );
    let mut args = server_args();
    args.extend([
        "--metrics".into(),
        "-d".into(),
        db.name.clone(),
        "--max-cron-threads=1".into(),
        "-D".into(),
        td.join("data").to_string_lossy().into_owned(),
    ]);
    let server = td.server(args).start();
    let port = server.port();
    let runs = |job: &str| {
        let s = scrape(port);
        let labels = [("db", db.name.as_str()), ("job", job)];
        (
            s.value("inphms_cron_runs_total", &labels),
            s.value("inphms_cron_failures_total", &labels),
            s.value("inphms_cron_run_duration_seconds_count", &labels),
        )
    };
    assert!(
        wait_until(Duration::from_secs(30), || runs("metrics ok").0 >= 1.0
            && runs("metrics fail").0 >= 1.0),
        "ok {:?}, fail {:?}\n{}",
        runs("metrics ok"),
        runs("metrics fail"),
        server.stderr()
    );
    assert_eq!(runs("metrics ok"), (1.0, 0.0, 1.0));
    assert_eq!(runs("metrics fail"), (1.0, 1.0, 1.0));
    // The pool of the database served is seen at the scrape.
    let s = scrape(port);
    assert!(
        s.get("inphms_db_pool_connections_idle", &[("db", &db.name)])
            .is_some(),
        "{:?}",
        s.samples
            .keys()
            .filter(|(n, _)| n.starts_with("inphms_db_pool"))
    );
}

/// `GET path` as text, once it answers 200 (a re-exec may refuse nothing but still be
/// loading).
fn text_of(port: u16, path: &str) -> Option<String> {
    inphms_tests::try_request(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()
    .filter(|r| r.status == 200)
    .map(|r| r.text())
}

#[test]
fn swaps_move_the_generation_and_reexecs_are_counted_across_the_reexec() {
    let td = TestDir::new();
    // One in-process swap allowed: the second change re-execs the process.
    let server = swap_server(
        &td,
        "base,web,test_swap",
        &["--metrics", "--limit-swaps", "1"],
    );
    let port = server.port();
    let s = scrape(port);
    assert_eq!(
        (
            s.value("inphms_generation", &[]),
            s.value("inphms_swaps_total", &[]),
            s.value("inphms_reexecs_total", &[])
        ),
        (1.0, 0.0, 0.0)
    );
    let addons = td.join("addons");
    install_swap_lib(&addons, &swap_build("v2"));
    server.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(20), || text_of(
            port,
            "/test_swap/version"
        )
        .as_deref()
            == Some("v2")),
        "{}",
        server.stderr()
    );
    let s = scrape(port);
    assert_eq!(
        (
            s.value("inphms_generation", &[]),
            s.value("inphms_swaps_total", &[])
        ),
        (2.0, 1.0)
    );
    // Past the swap limit: a re-exec (same pid), whose new image counts it.
    install_swap_lib(&addons, &swap_build("v1"));
    server.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(30), || text_of(
            port,
            "/test_swap/version"
        )
        .as_deref()
            == Some("v1")),
        "{}",
        server.stderr()
    );
    let s = scrape(port);
    assert_eq!(
        (
            s.value("inphms_generation", &[]),
            s.value("inphms_swaps_total", &[]),
            s.value("inphms_reexecs_total", &[])
        ),
        (1.0, 0.0, 1.0),
        "{}",
        server.stderr()
    );
}
