//! `/web/health` as Odoo 18's (issue 21), for load balancers: `{"status":"pass"}` without a
//! database; with `?db_server_status=1` the PostgreSQL server is checked too: 200
//! `{"status":"pass","db_server_status":true}` while it answers, 500
//! `{"status":"fail","db_server_status":false}` once it is stopped, and 200 again once it is
//! back (no restart of the host). Against a private PostgreSQL the test stops itself
//! ([`PgInstance`]), never the shared one.

use inphms_tests::pg_instance::PgInstance;
use inphms_tests::{http_get, wait_until, TestDir};
use std::time::Duration;

const PASS: &str = r#"{"status":"pass","db_server_status":true}"#;
const FAIL: &str = r#"{"status":"fail","db_server_status":false}"#;

#[test]
fn db_server_status_follows_the_postgresql_server() {
    let pg = PgInstance::start_new();
    let td = TestDir::new();
    let args = pg.server_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = td.test_http_server(&args).start_healthy();
    let port = server.port();
    let check = || http_get(port, "/web/health?db_server_status=1", &[]);

    let resp = check();
    assert_eq!((resp.status, resp.text().as_str()), (200, PASS));
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    assert_eq!(resp.cookie("session_id"), None, "never a session");
    // Without the parameter (or with an empty one), PostgreSQL is not asked.
    for path in ["/web/health", "/web/health?db_server_status="] {
        let resp = http_get(port, path, &[]);
        assert_eq!(
            (resp.status, resp.text().as_str()),
            (200, r#"{"status":"pass"}"#)
        );
    }

    pg.stop_fast();
    let resp = check();
    assert_eq!(
        (resp.status, resp.text().as_str()),
        (500, FAIL),
        "{}",
        server.stderr()
    );
    assert_eq!(resp.header("content-type"), Some("application/json"));
    // The host itself stays healthy for a check that does not ask for the database.
    assert_eq!(http_get(port, "/web/health", &[]).status, 200);

    pg.start();
    // Back within the pools' reconnection backoff (5 s at most).
    assert!(
        wait_until(Duration::from_secs(15), || check().status == 200),
        "{}",
        server.stderr()
    );
    assert_eq!(check().text(), PASS);
}
