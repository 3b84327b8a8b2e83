//! `post_load` runs once per process (issue 18): the `test_sdk` addon logs each run of its
//! hook with a count kept in its image. A server with two databases initialised and a swap
//! of another addon (`test_swap` v1 to v2, `test_sdk` unchanged and reused) logs one run;
//! so does a command (its own process).

use inphms_tests::pg::{self, TestDb};
use inphms_tests::swap::{install_swap_lib, swap_build, swap_server};
use inphms_tests::{http_get, with_test_addons, TestDir};
use std::time::Duration;

const RUN_LINE: &str = "test_sdk post_load run";

#[test]
fn post_load_runs_once_across_databases_and_swaps() {
    pg::require();
    let td = TestDir::new();
    let (a, b) = (TestDb::new("postload_a"), TestDb::new("postload_b"));
    let mut extra: Vec<String> = pg::server_args();
    extra.extend(["-d".to_owned(), format!("{},{}", a.name, b.name)]);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let server = swap_server(&td, "base,web,test_sdk,test_swap", &extra);
    let port = server.port();
    assert!(
        server.wait_for_log(&format!("{RUN_LINE} 1"), Duration::from_secs(20)),
        "{}",
        server.stderr()
    );

    install_swap_lib(&td.join("addons"), &swap_build("v2"));
    server.signal("HUP");
    assert!(
        server.wait_for_log("reloaded: test_swap", Duration::from_secs(30)),
        "{}",
        server.stderr()
    );
    assert!(
        server.wait_for_log("generation 2 serving", Duration::from_secs(30)),
        "{}",
        server.stderr()
    );
    assert_eq!(http_get(port, "/web/health", &[]).status, 200);
    let log = server.stderr();
    assert_eq!(log.matches(RUN_LINE).count(), 1, "{log}");
    assert!(log.contains("inphms.addons.test_sdk"), "{log}");
}

#[test]
fn a_command_runs_post_load_once() {
    let td = TestDir::new();
    let path = format!("--addons-path={}", with_test_addons(&[]));
    let out = td
        .cmd([
            path.as_str(),
            "test_sdk_greet",
            "--name",
            "ada",
            "--log-level",
            "info",
        ])
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stderr.matches(RUN_LINE).count(), 1, "{out}");
    assert_eq!(out.stdout, "hello ada\n", "{out}");
}
