//! Databases (issue 6) against the real PostgreSQL at 127.0.0.1:5432: `-d` creates and
//! installs base, `-i` runs an addon's SQL, a failing SQL file rolls its addon back and names
//! the file; the database list with `%h`/`%d` filters, the single-database rule and
//! `list_db` off; a route of an addon installed in one database is 404 in another; the
//! cursor retries a real serialization failure; pool exhaustion is a clear error; a
//! PostgreSQL restart while serving (against a private server the test starts and stops
//! itself, [`PgInstance`]: the shared one is never stopped).

use inphms_tests::pg::{self, TestDb};
use inphms_tests::pg_instance::PgInstance;
use inphms_tests::{request, wait_until, with_test_addons, TestDir};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// `--addons-path` with the test addons (`test_db`, `test_http`).
fn test_addons() -> String {
    format!("--addons-path={}", with_test_addons(&[]))
}

/// `inphms-host server ARGS --stop-after-init` with the test PostgreSQL and the test addons.
fn init(td: &TestDir, args: &[&str]) -> inphms_tests::Output {
    let mut all: Vec<String> = vec!["server".into(), "--stop-after-init".into()];
    all.extend(pg::server_args());
    all.push(test_addons());
    all.extend(args.iter().map(|s| s.to_string()));
    td.cmd(all).timeout(Duration::from_secs(120)).run()
}

/// A JSON-RPC call; the whole response body.
fn rpc(port: u16, host: &str, path: &str, params: Value) -> (u16, Value) {
    let body = json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": params}).to_string();
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let resp = request(port, raw.as_bytes());
    let v = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    (resp.status, v)
}

fn get(port: u16, host: &str, path: &str) -> inphms_tests::Response {
    inphms_tests::http_get(port, path, &[("Host", host)])
}

/// The server options for the test PostgreSQL and the test addons, then `extra`.
fn server_args(extra: &[&str]) -> Vec<String> {
    let mut a = pg::server_args();
    a.push(test_addons());
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[test]
fn d_creates_the_database_and_installs_base_then_i_runs_the_addon_sql() {
    let td = TestDir::new();
    let db = TestDb::new("create");
    let out = init(&td, &["-d", &db.name]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stderr
            .contains(&format!("Create database `{}`", db.name)),
        "{out}"
    );
    assert_eq!(
        db.sql("SELECT string_agg(name || ':' || state, ',' ORDER BY name) FROM ir_module_module"),
        "base:installed,web:installed"
    );
    assert_eq!(
        db.sql("SELECT latest_version FROM ir_module_module WHERE name = 'base'"),
        "1.0.1.4"
    );
    // database.secret and database.uuid are generated at install.
    let uuid = db.sql("SELECT value FROM ir_config_parameter WHERE key = 'database.uuid'");
    assert_eq!(uuid.len(), 36, "{uuid}");
    assert_ne!(
        uuid,
        db.sql("SELECT value FROM ir_config_parameter WHERE key = 'database.secret'")
    );
    assert_eq!(
        db.sql("SELECT login || ':' || active FROM res_users WHERE id = 2"),
        "admin:true"
    );
    assert_eq!(
        db.sql("SELECT to_regclass('ir_cron_trigger') IS NOT NULL"),
        "t"
    );
    // base's default cron job, from its manifest.
    assert_eq!(
        db.sql("SELECT handler FROM ir_cron WHERE module = 'base'"),
        "base.autovacuum"
    );

    let out = init(&td, &["-d", &db.name, "-i", "test_db"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        db.sql("SELECT state FROM ir_module_module WHERE name = 'test_db'"),
        "installed"
    );
    assert_eq!(db.sql("SELECT v FROM test_db_counter WHERE id = 1"), "0");
    assert_eq!(
        db.sql("SELECT handler || ':' || active FROM ir_cron WHERE module = 'test_db'"),
        "test_db.write_row:false"
    );
    // -u runs the data again (re-runnable) and keeps the data.
    db.sql("INSERT INTO test_db_note (name) VALUES ('kept')");
    let out = init(&td, &["-d", &db.name, "-u", "test_db"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("upgraded test_db"), "{out}");
    assert_eq!(db.sql("SELECT count(*) FROM test_db_note"), "1");
}

#[test]
fn a_failing_sql_file_rolls_its_addon_back_and_names_the_file() {
    let td = TestDir::new();
    let db = TestDb::new("broken");
    let addons = td.addon(
        "addons",
        "test_db_broken",
        "name = \"Broken\"\nlicense = \"LGPL-3\"\ndepends = [\"base\"]\ndata = [\"data/ok.sql\", \"data/broken.sql\"]\n",
    );
    td.write(
        "addons/test_db_broken/data/ok.sql",
        "CREATE TABLE broken_ok (id int);\n",
    );
    td.write(
        "addons/test_db_broken/data/broken.sql",
        "-- a good statement, then a bad one\nINSERT INTO broken_ok VALUES (1);\nINSERT INTO no_such_table\n  VALUES (1);\n",
    );
    let path = format!("--addons-path={}", addons.display());
    let out = init(&td, &[&path, "-d", &db.name, "-i", "test_db_broken"]);
    assert_eq!(out.code, Some(1), "{out}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("Failed to initialize database"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("addon 'test_db_broken'"), "{line}");
    assert!(line.contains("data/broken.sql line 3"), "{line}");
    assert!(
        line.contains("statement `INSERT INTO no_such_table VALUES (1)`"),
        "{line}"
    );
    assert!(
        line.contains("relation \"no_such_table\" does not exist"),
        "{line}"
    );
    // base (installed first) stays; the broken addon left nothing behind.
    assert_eq!(
        db.sql("SELECT state FROM ir_module_module WHERE name = 'base'"),
        "installed"
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM ir_module_module WHERE name = 'test_db_broken'"),
        "0"
    );
    assert_eq!(db.sql("SELECT to_regclass('broken_ok') IS NULL"), "t");
}

#[test]
fn database_list_filters_single_database_rule_and_routes_per_database() {
    let td = TestDir::new();
    let a = TestDb::new("a");
    let b = TestDb::new("b");
    assert_eq!(init(&td, &["-d", &a.name, "-i", "test_db"]).code, Some(0));
    assert_eq!(init(&td, &["-d", &b.name]).code, Some(0));
    let host_a = format!("{}.example.com:8069", a.name);
    let host_b = format!("www.{}.example.com", b.name);

    // %d: one database per domain; test_db is installed in A only.
    let server = td.server(server_args(&["--db-filter", "^%d$"])).start();
    let port = server.port();
    let (status, v) = rpc(port, &host_a, "/web/database/list", json!({}));
    assert_eq!(status, 200);
    assert_eq!(v["result"], json!([a.name]), "{v}");
    let (_, v) = rpc(port, &host_b, "/web/database/list", json!({}));
    assert_eq!(v["result"], json!([b.name]), "{v}");
    let resp = get(port, &host_a, "/test_db/count");
    assert_eq!(
        (resp.status, resp.text()),
        (200, format!("0 notes in {}", a.name))
    );
    assert_eq!(
        get(port, &host_b, "/test_db/count").status,
        404,
        "not installed in B"
    );
    // Server-wide routes are served in both.
    assert_eq!(get(port, &host_b, "/web/health").status, 200);
    // The access line names the request's database, as Odoo's (its thread's `dbname`).
    for (db, request) in [
        (&a.name, "GET /test_db/count"),
        (&b.name, "GET /web/health"),
    ] {
        let (field, line) = (
            format!(" INFO {db} werkzeug: "),
            format!("\"{request} HTTP/1.1\" "),
        );
        let found = |log: &str| log.lines().any(|l| l.contains(&field) && l.contains(&line));
        assert!(
            wait_until(Duration::from_secs(5), || found(&server.stderr())),
            "no access line in {db} for {request}:\n{}",
            server.stderr()
        );
    }
    drop(server);

    // %h: the whole host (port and www. removed), matched from the start.
    let server = td.server(server_args(&["--db-filter", "%h"])).start();
    let host = format!("{}.example.com", a.name);
    let (_, v) = rpc(server.port(), &host, "/web/database/list", json!({}));
    assert_eq!(
        v["result"],
        json!([]),
        "no database is named after the whole host: {v}"
    );
    drop(server);

    // Two visible databases: none is chosen, unless ?db= names one.
    let prefix = format!("^inphms_test_{}_", std::process::id());
    let server = td.server(server_args(&["--db-filter", &prefix])).start();
    let port = server.port();
    let (_, v) = rpc(port, "localhost", "/web/database/list", json!({}));
    let list = v["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .clone();
    assert!(
        list.contains(&json!(a.name)) && list.contains(&json!(b.name)),
        "{v}"
    );
    assert_eq!(get(port, "localhost", "/test_db/count").status, 404);
    let resp = get(port, "localhost", &format!("/test_db/count?db={}", a.name));
    assert_eq!(resp.status, 200, "{}", resp.text());
    drop(server);

    // list_db off: the list is an access error; the single visible database still serves.
    let server = td
        .server(server_args(&[
            "--no-database-list",
            "--db-filter",
            &format!("^{}$", a.name),
        ]))
        .start();
    let (_, v) = rpc(server.port(), "localhost", "/web/database/list", json!({}));
    assert_eq!(
        v["error"]["data"]["name"], "odoo.exceptions.AccessDenied",
        "{v}"
    );
    assert_eq!(
        get(server.port(), "localhost", "/test_db/count").status,
        200
    );
}

#[test]
fn the_cursor_retries_a_real_serialization_failure() {
    let td = TestDir::new();
    let db = TestDb::new("serial");
    assert_eq!(init(&td, &["-d", &db.name, "-i", "test_db"]).code, Some(0));
    let server = td
        .server(server_args(&["-d", &db.name, "--max-cron-threads=0"]))
        .start();
    let port = server.port();
    // Both read 0, both wait, both write: the second to write cannot serialize (REPEATABLE
    // READ) and is run again by the host, on a fresh snapshot.
    let calls: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                rpc(port, "localhost", "/test_db/bump", json!({"wait": 0.5}))
            })
        })
        .collect();
    let mut values: Vec<i64> = calls
        .into_iter()
        .map(|h| {
            let (status, v) = h.join().unwrap();
            assert_eq!(status, 200, "{v}");
            v["result"]["v"].as_i64().unwrap_or_else(|| panic!("{v}"))
        })
        .collect();
    values.sort();
    assert_eq!(values, [1, 2]);
    assert_eq!(db.sql("SELECT v FROM test_db_counter WHERE id = 1"), "2");
    let log = server.stderr();
    assert!(
        log.contains("could not serialize access due to concurrent update"),
        "{log}"
    );
    assert!(log.contains("tries left, try again in"), "{log}");
}

#[test]
fn pool_exhaustion_is_a_clear_error_not_a_hang() {
    let td = TestDir::new();
    let db = TestDb::new("pool");
    assert_eq!(init(&td, &["-d", &db.name, "-i", "test_db"]).code, Some(0));
    let server = td
        .server(server_args(&[
            "-d",
            &db.name,
            "--db_maxconn=2",
            "--max-cron-threads=0",
        ]))
        .start();
    let port = server.port();
    let holders: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                rpc(port, "localhost", "/test_db/hold", json!({"seconds": 9}))
            })
        })
        .collect();
    // Both pool connections are taken once both holders sleep in PostgreSQL.
    let sleeping = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND wait_event = 'PgSleep'",
        db.name
    );
    assert!(
        wait_until(Duration::from_secs(10), || db.sql(&sleeping) == "2"),
        "{}",
        server.stderr()
    );
    let started = Instant::now();
    let (status, v) = rpc(port, "localhost", "/test_db/notes", json!({"name": "x"}));
    let waited = started.elapsed();
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["error"]["data"]["message"], "The Connection Pool Is Full",
        "{v}"
    );
    assert_eq!(v["error"]["data"]["name"], "inphms.sql_db.PoolError", "{v}");
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    for h in holders {
        let (_, v) = h.join().unwrap();
        assert_eq!(v["result"], json!(true), "{v}");
    }
    // Connections are back: the next request works.
    let (_, v) = rpc(port, "localhost", "/test_db/notes", json!({"name": "y"}));
    assert_eq!(v["result"]["count"], 1, "{v}");
}

#[test]
fn postgres_restart_while_serving_fails_cleanly_then_recovers_with_cron() {
    let pg = PgInstance::start_new();
    let td = TestDir::new();
    let db = "restart";
    let mut args = vec!["server".to_string(), "--stop-after-init".into()];
    args.extend(pg.server_args());
    args.push(test_addons());
    args.extend(["-d".into(), db.into(), "-i".into(), "test_db".into()]);
    let out = td.cmd(args).timeout(Duration::from_secs(120)).run();
    assert_eq!(out.code, Some(0), "{out}");
    let mut args = pg.server_args();
    args.push(test_addons());
    args.extend(["-d".into(), db.into(), "--max-cron-threads=1".into()]);
    let server = td.server(args).start();
    let port = server.port();
    assert!(server.wait_for_log("cron worker(s) started", Duration::from_secs(10)));
    assert_eq!(get(port, "localhost", "/test_db/count").status, 200);

    pg.stop_fast();
    // During the outage: a clean error, quickly; what needs no database still works.
    for _ in 0..3 {
        let started = Instant::now();
        let resp = get(port, "localhost", "/test_db/count");
        assert_eq!(resp.status, 500, "{}", resp.text());
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(get(port, "localhost", "/web/health").status, 200);
    }
    pg.start();
    // After it: requests succeed again, without a host restart.
    assert!(
        wait_until(Duration::from_secs(30), || get(
            port,
            "localhost",
            "/test_db/count"
        )
        .status
            == 200),
        "{}",
        server.stderr()
    );
    // Cron resumed: the worker listens again; a due job runs.
    assert!(
        server.wait_for_log(
            "listening on database postgres again",
            Duration::from_secs(10)
        ),
        "{}",
        server.stderr()
    );
    let id = pg.psql(
        db,
        "INSERT INTO ir_cron (cron_name, handler, interval_number, interval_type, nextcall) \
         VALUES ('after restart', 'test_db.write_row', 1, 'days', now() AT TIME ZONE 'UTC') RETURNING id",
    );
    pg.psql(
        "postgres",
        &format!("SELECT pg_notify('cron_trigger', '{db}')"),
    );
    assert!(
        wait_until(Duration::from_secs(10), || pg.psql(
            db,
            &format!("SELECT count(*) FROM test_db_cron_log WHERE job_id = {id}")
        ) == "1"),
        "{}",
        server.stderr()
    );
}

#[test]
fn the_session_records_its_database_and_is_logged_out_when_the_filter_rejects_it() {
    let td = TestDir::new();
    let a = TestDb::new("sa");
    let b = TestDb::new("sb");
    assert_eq!(init(&td, &["-d", &a.name]).code, Some(0));
    assert_eq!(init(&td, &["-d", &b.name]).code, Some(0));
    let only = |db: &str| {
        server_args(&[
            "--db-filter",
            &format!("^{db}$"),
            "--load",
            "base,web,test_http",
        ])
    };
    let cookie_of = |resp: &inphms_tests::Response| {
        resp.header("set-cookie")
            .and_then(|c| c.split(';').next())
            .and_then(|c| c.strip_prefix("session_id="))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no session cookie: {:?}", resp.headers))
    };
    let session_file = |sid: &str| {
        td.home()
            .join(".local/share/Inphms/sessions")
            .join(&sid[..2])
            .join(sid)
    };

    // Only A is visible: the login's session records it.
    let server = td.server(only(&a.name)).start();
    let resp = get(server.port(), "localhost", "/test_http/login/alice");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let sid = cookie_of(&resp);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(session_file(&sid)).unwrap()).unwrap();
    assert_eq!(saved["db"], json!(a.name), "{saved}");
    assert_eq!(saved["login"], json!("alice"));
    drop(server);

    // Now only B is visible: the session's database is rejected, the session logged out.
    let server = td.server(only(&b.name)).start();
    let resp = inphms_tests::http_get(
        server.port(),
        "/test_http/get/login",
        &[("Cookie", &format!("session_id={sid}"))],
    );
    assert_eq!(
        (resp.status, resp.text()),
        (200, String::new()),
        "logged out"
    );
    let rotated = cookie_of(&resp);
    assert_ne!(rotated, sid, "a new id after the logout");
    assert!(
        !session_file(&sid).exists(),
        "the old session file is removed"
    );
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(session_file(&rotated)).unwrap()).unwrap();
    assert_eq!(saved["login"], Value::Null);
    assert!(server.stderr().contains(&format!(
        "Logged into database \"{}\", but dbfilter rejects it; logging session out.",
        a.name
    )));
}

#[test]
fn a_request_past_limit_time_real_has_its_statement_cancelled() {
    let td = TestDir::new();
    let db = TestDb::new("timeout");
    assert_eq!(init(&td, &["-d", &db.name, "-i", "test_db"]).code, Some(0));
    let server = td
        .server(server_args(&[
            "-d",
            &db.name,
            "--limit-time-real=1",
            "--max-cron-threads=0",
        ]))
        .start();
    let started = Instant::now();
    let (status, v) = rpc(
        server.port(),
        "localhost",
        "/test_db/hold",
        json!({"seconds": 30}),
    );
    assert_eq!(status, 200, "{v}");
    assert!(
        v["error"].is_object(),
        "a JSON-RPC error at the time limit: {v}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // PostgreSQL cancels the statement itself (statement_timeout): nothing keeps sleeping.
    let sleeping = || {
        pg::psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE '%pg_sleep%' AND state = 'active'",
                db.name
            ),
        )
    };
    assert!(
        wait_until(Duration::from_secs(5), || sleeping().trim() == "0"),
        "the statement still runs: {}",
        sleeping()
    );
    // The server goes on.
    let resp = get(server.port(), "localhost", "/test_db/count");
    assert_eq!(resp.status, 200, "{}", resp.text());
}
