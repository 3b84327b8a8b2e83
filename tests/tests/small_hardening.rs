//! Smaller hardening items of issue 15 ("Also found"), each against the real binary: a
//! `--limit-memory-soft` below the RSS after start-up is one warning, not a re-exec loop;
//! temporary session files left by a write cut short are removed at start; the SIGQUIT dump
//! lists a handler stuck past `limit_time_real` with its method, path and database.

use inphms_tests::{http_get, wait_until, TestDir};
use std::time::{Duration, Instant, SystemTime};

/// The host's `limits::MIN_RECYCLE_UPTIME`: the least an image serves before the soft limit
/// may recycle it.
const RECYCLE_UPTIME: Duration = Duration::from_secs(10);
/// The host's `limits::CHECK_INTERVAL`: how often the soft limit is checked.
const CHECK_INTERVAL: Duration = Duration::from_secs(2);

#[test]
fn a_soft_limit_below_the_startup_rss_warns_once_and_does_not_loop() {
    let td = TestDir::new();
    let server = td
        .test_http_server(&["--limit-memory-soft", "1048576"])
        .start_healthy();
    let ready = Instant::now();
    let warning =
        "limit_memory_soft (1048576 bytes) is below the memory the server uses after start-up";
    assert!(
        server.wait_for_log(warning, Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
    // The soft limit is checked every 2 s (CHECK_INTERVAL), and never recycles an image
    // that has served less than 10 s (MIN_RECYCLE_UPTIME): so watch until the image has
    // served past that and two more checks, with a second to spare. Before the fix, a
    // re-exec came at every check; with the baseline decision lost (the limit enforced
    // from an RSS that starts over it), one would come at the first check past 10 s.
    // The image started serving before `start` saw /web/health answer.
    let watch = RECYCLE_UPTIME + 2 * CHECK_INTERVAL + Duration::from_secs(1);
    let observed = wait_until(watch.saturating_sub(ready.elapsed()), || {
        server.stderr().contains("Initiating server reload")
    });
    let log = server.stderr();
    assert!(!observed, "a re-exec for memory:\n{log}");
    assert_eq!(log.matches(warning).count(), 1, "{log}");
    assert_eq!(log.matches("generation 1:").count(), 1, "one image\n{log}");
    assert_eq!(http_get(server.port(), "/web/health", &[]).status, 200);
}

#[test]
fn stale_temporary_session_files_are_removed_at_start() {
    let td = TestDir::new();
    let shard = td.join("data/sessions/ab");
    std::fs::create_dir_all(&shard).expect("the shard folder");
    let sid = format!("ab{}", "c".repeat(82));
    let session = td.write(format!("data/sessions/ab/{sid}"), r#"{"uid": null}"#);
    let stale = td.write(format!("data/sessions/ab/.{sid}.Zm9vYmFy.tmp"), "");
    let fresh = td.write(format!("data/sessions/ab/.{sid}.YmF6cXV4.tmp"), "");
    let two_minutes_ago = SystemTime::now() - Duration::from_secs(120);
    for path in [&session, &stale] {
        std::fs::File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(two_minutes_ago))
            .expect("set the mtime");
    }
    let server = td.test_http_server(&[]).start_healthy();
    assert!(
        server.wait_for_log(
            "removed 1 stale temporary session file(s)",
            Duration::from_secs(10)
        ),
        "{}",
        server.stderr()
    );
    assert!(!stale.exists(), "the stale temporary file is gone");
    assert!(
        fresh.exists(),
        "a temporary file under a minute old may be a write in progress"
    );
    assert!(session.exists(), "a session file stays");
}

#[test]
fn the_sigquit_dump_lists_a_stuck_handler_with_its_path() {
    let td = TestDir::new();
    let server = td
        .test_http_server(&["--limit-time-real", "1"])
        .start_healthy();
    let port = server.port();
    let r = http_get(port, "/test_http/sleep/8000?why=stuck", &[]);
    assert_eq!(r.status, 504, "{}", r.text());
    server.signal("QUIT");
    let line = "stuck handler: GET /test_http/sleep/8000?why=stuck database - for ";
    assert!(
        server.wait_for_log(line, Duration::from_secs(5)),
        "{}",
        server.stderr()
    );
    assert!(server
        .stderr()
        .contains("SIGQUIT: 0 request(s) in flight, 1 stuck handler(s)"));
    assert_eq!(http_get(port, "/web/health", &[]).status, 200);
}
