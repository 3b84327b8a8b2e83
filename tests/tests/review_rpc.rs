//! Review fixes of the RPC services and the database manager, through the real binary,
//! `base` and the real PostgreSQL: database names that are no database are refused before
//! anything is loaded (no pool, no metrics series), `db_exist` answers from pooled
//! connections (never more than `db_maxconn` open).

mod rpc_support;

use inphms_tests::{http_get, pg};
use rpc_support::Site;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `/jsonrpc` with `service`, `method` and `args`: the whole answer.
fn call(site: &Site, service: &str, method: &str, args: Value) -> Value {
    site.client("127.0.0.1").rpc(
        "/jsonrpc",
        json!({"service": service, "method": method, "args": args}),
    )
}

/// The connections the server with `pid` has open to PostgreSQL (its `application_name`).
fn server_connections(pid: u32) -> usize {
    pg::psql(
        "postgres",
        &format!("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'inphms-{pid}'"),
    )
    .trim()
    .parse()
    .expect("a count")
}

#[test]
fn unknown_databases_leave_nothing_behind() {
    let site = Site::start("rvrpcdb", &["--metrics"]);
    let tag = format!("nodb{}", std::process::id());
    for i in 0..20 {
        let name = format!("{tag}_{i}");
        for (service, method, args) in [
            (
                "object",
                "execute_kw",
                json!([name, 2, "secret", "res.users", "search", [[]]]),
            ),
            ("common", "login", json!([name, "admin", "secret"])),
        ] {
            let answer = call(&site, service, method, args);
            assert_eq!(
                answer["error"]["data"]["name"], "psycopg2.OperationalError",
                "{answer}"
            );
            let message = answer["error"]["data"]["message"].as_str().unwrap();
            assert!(
                message.contains(&format!("database \"{name}\" does not exist")),
                "{answer}"
            );
        }
    }
    let metrics = http_get(site.port(), "/metrics", &[]);
    assert_eq!(metrics.status, 200, "{}", metrics.text());
    assert!(
        metrics.text().contains("db_pool_connections_in_use"),
        "{}",
        metrics.text()
    );
    assert!(!metrics.text().contains(&tag), "{}", metrics.text());
    // The real database still answers.
    let db = site.db.name.as_str();
    let uid = call(
        &site,
        "common",
        "login",
        json!([db, "admin", rpc_support::ADMIN_PW]),
    );
    assert!(uid["result"].as_i64().is_some(), "{uid}");
}

#[test]
fn db_exist_uses_pooled_connections() {
    let site = Site::start("rvrpcex", &["--db_maxconn=6"]);
    let db = site.db.name.clone();
    assert_eq!(
        call(&site, "db", "db_exist", json!([db]))["result"],
        json!(true)
    );
    assert_eq!(
        call(&site, "db", "db_exist", json!(["no_such_db_rvrpc"]))["result"],
        json!(false)
    );
    let pid = site.server.pid();
    let port = site.port();
    let done = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..8)
        .map(|i| {
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut calls = 0;
                while !done.load(Ordering::Relaxed) {
                    let body = json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
                        "service": "db", "method": "db_exist", "args": [format!("missing_{i}_{calls}")]}});
                    let resp = inphms_tests::rpc(port, "/jsonrpc", body.to_string());
                    assert_eq!(resp.status, 200, "{}", resp.text());
                    let v: Value = serde_json::from_slice(&resp.body).unwrap();
                    // Under load a caller may wait out the pool (Odoo's PoolError too):
                    // bounded, never an extra connection.
                    if v["result"] == json!(false) {
                        calls += 1;
                    } else {
                        assert_eq!(
                            v["error"]["data"]["message"], "The Connection Pool Is Full",
                            "{v}"
                        );
                    }
                }
                calls
            })
        })
        .collect();
    // The connections outside the pools (LISTEN ones) plus any idle pooled ones, before.
    let before = server_connections(pid);
    let mut most = 0;
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        most = most.max(server_connections(pid));
    }
    done.store(true, Ordering::Relaxed);
    let calls: usize = callers.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(calls > 8, "only {calls} calls answered");
    assert!(
        most <= before + 6,
        "{most} connections open with db_maxconn 6 ({before} before the calls)"
    );
}

/// `/web/health?db_server_status=1` answers 500 within seconds when the database server
/// accepts connections and never answers (it used to wait for the pool's connect timeout).
#[test]
fn health_check_does_not_hang_on_a_silent_server() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    // Accepts and keeps every connection, answering nothing.
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        for s in silent.incoming().flatten() {
            kept.push(s);
        }
    });
    let td = inphms_tests::TestDir::new();
    let port_arg = format!("--db_port={silent_port}");
    let server = td
        .test_http_server(&["--db_host=127.0.0.1", &port_arg])
        .start_healthy();
    let started = Instant::now();
    let resp = http_get(server.port(), "/web/health?db_server_status=1", &[]);
    let took = started.elapsed();
    assert_eq!(
        (resp.status, resp.text().as_str()),
        (500, r#"{"status":"fail","db_server_status":false}"#),
        "{}",
        server.stderr()
    );
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
}

/// `/web/database/restore` checks the master password before it writes the upload
/// anywhere: with a temporary folder that cannot be written, a wrong password is still
/// "Access Denied" (the upload used to be written first, and fail there).
#[test]
fn restore_checks_the_master_password_before_writing() {
    let td = inphms_tests::TestDir::new();
    let conf = td.config(
        "etc/inphms.conf",
        &format!(
            "[options]\nadmin_passwd = \"s3cr3t\"\ndata_dir = \"{}\"\n",
            td.join("data").display()
        ),
    );
    let mut args = vec![format!("--config={}", conf.display())];
    args.extend(pg::server_args());
    let server = td
        .server(args)
        .env("TMPDIR", td.join("no-such-folder"))
        .start_timeout(Duration::from_secs(120))
        .start();
    let boundary = "----inphmsReviewBoundary";
    let mut body = Vec::new();
    for (k, v) in [
        ("master_pwd", "wrong"),
        ("name", "rv_restore_x"),
        ("copy", "false"),
    ] {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"backup_file\"; filename=\"b.zip\"\r\nContent-Type: application/zip\r\n\r\nPK not really a zip\r\n--{boundary}--\r\n").as_bytes(),
    );
    let ct = format!("multipart/form-data; boundary={boundary}");
    let resp = inphms_tests::send(
        server.port(),
        "POST",
        "/web/database/restore",
        &[("Content-Type", ct.as_str())],
        &body,
    );
    let text = resp.text();
    assert!(
        text.contains("Database restore error: Access Denied"),
        "{}: {text}",
        resp.status
    );
    assert!(!text.contains("cannot keep the upload"), "{text}");
}

/// The registry signaling of a copy made by the database manager moves past the
/// original's (a copy has the same sequence values; a host holding a registry of a
/// database dropped and made again under that name must see a change).
#[test]
fn database_copies_bump_the_registry_signaling() {
    let site = Site::start("rvrpcsig", &[]);
    let db = site.db.name.clone();
    let copy = pg::TestDb::new("rvrpcsigcopy");
    let last = |name: &str| -> i64 {
        pg::psql(name, "SELECT last_value FROM base_registry_signaling")
            .parse()
            .unwrap()
    };
    let before = last(&db);
    let answer = call(
        &site,
        "db",
        "duplicate_database",
        json!(["admin", db, copy.name, false]),
    );
    assert_eq!(answer["result"], json!(true), "{answer}");
    assert!(
        last(&copy.name) > before,
        "copy {} vs original {before}",
        last(&copy.name)
    );
}

/// A master password changed in the config file by another process (another host, a
/// worker's `change_admin_password`) is the one checked from then on.
#[test]
fn master_password_follows_the_config_file() {
    let td = inphms_tests::TestDir::new();
    let write = |master: &str| {
        td.config(
            "etc/inphms.conf",
            &format!(
                "[options]\nadmin_passwd = \"{master}\"\ndata_dir = \"{}\"\n",
                td.join("data").display()
            ),
        )
    };
    let conf = write("s3cr3t");
    let mut args = vec![format!("--config={}", conf.display())];
    args.extend(pg::server_args());
    let server = td
        .server(args)
        .start_timeout(Duration::from_secs(120))
        .start();
    let countries = |master: &str| -> Value {
        let body = json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
            "service": "db", "method": "list_countries", "args": [master]}});
        let resp = inphms_tests::rpc(server.port(), "/jsonrpc", body.to_string());
        assert_eq!(resp.status, 200, "{}", resp.text());
        serde_json::from_slice(&resp.body).unwrap()
    };
    assert!(countries("s3cr3t")["result"].is_array());
    // Another process writes the file (a plain-text password, as an operator would).
    write("n3w-master");
    let answer = countries("n3w-master");
    assert!(answer["result"].is_array(), "{answer}");
    let answer = countries("s3cr3t");
    assert_eq!(
        answer["error"]["data"]["name"], "odoo.exceptions.AccessDenied",
        "{answer}"
    );
}

/// The RPC routes refuse a body over 32 MiB from its `Content-Length` (the server's
/// default, 128 MiB, is more than a call parsed before its password check should hold).
#[test]
fn rpc_routes_take_smaller_bodies() {
    let td = inphms_tests::TestDir::new();
    let server = td.server(pg::server_args()).start_healthy();
    for path in ["/xmlrpc/2/common", "/xmlrpc/common", "/jsonrpc"] {
        let resp = inphms_tests::bodies::declare_only(
            server.port(),
            path,
            40 << 20,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(resp.status, 413, "{path}: {}", resp.text());
    }
}
