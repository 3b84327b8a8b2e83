//! The process-wide budgets `limit_memory_bodies` and `limit_disk_bodies`: a body that
//! cannot fit refused before it is sent (503 with `Retry-After`), one larger than a budget
//! 413, and every body served again once the holder has gone.

use crate::support::{digest, hold, json_of, pattern, start, tail, MIB};
use inphms_tests::bodies::{declare_only, fnv_hex, upload_chunked, Upload};
use inphms_tests::{http_get, TestDir};
use serde_json::json;
use std::time::Duration;

/// A server whose budget `args` hold `whole` (12 MiB) for bodies, holding a spooled body of
/// 6 MiB while its handler sleeps; checks that a body that cannot fit beside it is refused
/// before it is sent (declared: 503 before a byte of it; chunked: 503 once the bytes
/// received cannot fit), that one larger than the budget `whole` is 413 at once, and that
/// all fit again once the holder has gone.
fn refused_before_sent(args: &[&str], whole: u64) {
    let td = TestDir::new();
    let mut all = vec!["--http-body-spool", "65536"];
    all.extend_from_slice(args);
    let server = start(&td, &all);
    let port = server.port();
    let wait = Duration::from_secs(5);
    let resp = declare_only(port, "/test_http/body_digest", whole + 1, wait)
        .expect("an answer to a body larger than the budget, before it is sent");
    assert_eq!(resp.status, 413, "{}", resp.text());
    let held = pattern(6 * MIB as usize);
    let holder = hold(port, held.clone(), 4000);
    assert!(
        server.wait_for_log(
            &format!("body_digest: started, {} bytes", 6 * MIB),
            Duration::from_secs(20)
        ),
        "{}",
        tail(&server.stderr())
    );
    // Declared: refused from the head alone (the client sent no byte of its body).
    let resp = declare_only(port, "/test_http/body_digest", 8 * MIB, wait)
        .expect("an answer before the body is sent");
    assert_eq!(resp.status, 503, "{}", resp.text());
    assert_eq!(resp.header("retry-after"), Some("5"));
    // Chunked: refused once past what is left (6 MiB), long before its 64 MiB are sent.
    let up = upload_chunked(
        port,
        "/test_http/body_digest",
        &[],
        &Upload::filled(b'c', 64 * MIB),
    );
    assert!(up.refused_early(), "{up:?}");
    assert!(
        up.sent < 32 * MIB,
        "{} bytes sent before the answer",
        up.sent
    );
    if let Ok(resp) = &up.answer {
        assert_eq!(resp.status, 503, "{}", resp.text());
        assert_eq!(resp.header("retry-after"), Some("5"));
    }
    // Other requests go on.
    assert_eq!(http_get(port, "/web/health", &[]).status, 200);
    let resp = holder.join().expect("the holder");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(json_of(&resp)["fnv"], json!(fnv_hex(&held)));
    // Released with its request: the 8 MiB body fits again.
    let body = pattern(8 * MIB as usize);
    let resp = digest(port, &body);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(json_of(&resp)["fnv"], json!(fnv_hex(&body)));
}

#[test]
fn a_body_that_cannot_fit_the_memory_budget_is_refused_before_it_is_sent() {
    // 12 MiB of memory for bodies (a mapped spool file counts), no disk limit to speak of.
    refused_before_sent(
        &[
            "--limit-memory-bodies",
            "12582912",
            "--limit-disk-bodies",
            "0",
        ],
        12 * MIB,
    );
}

#[test]
fn spooled_bodies_are_bounded_on_disk_as_they_arrive() {
    // 12 MiB of disk for spool files, plenty of memory.
    refused_before_sent(
        &[
            "--limit-disk-bodies",
            "12582912",
            "--limit-memory-bodies",
            "268435456",
        ],
        12 * MIB,
    );
}

#[test]
fn the_memory_budget_answers_503_with_retry_after_then_serves_again() {
    let td = TestDir::new();
    // 1000 bytes for every body in memory; bodies past 512 bytes spooled, then mapped.
    let server = start(
        &td,
        &["--limit-memory-bodies", "1000", "--http-body-spool", "512"],
    );
    let port = server.port();
    // A holds 900 bytes (mapped) while its handler sleeps.
    let a_body = pattern(900);
    let holder = hold(port, a_body.clone(), 3000);
    assert!(
        server.wait_for_log("body_digest: started, 900 bytes", Duration::from_secs(20)),
        "{}",
        server.stderr()
    );
    // Meanwhile, neither a mapped body nor one in memory fits.
    for n in [900, 300] {
        let resp = digest(port, &pattern(n));
        assert_eq!(resp.status, 503, "{n} bytes: {}", resp.text());
        assert_eq!(resp.header("retry-after"), Some("5"), "{n} bytes");
    }
    // Bodies the budget does not hold still pass: a GET, the health check.
    assert_eq!(http_get(port, "/web/health", &[]).status, 200);
    let a = holder.join().expect("the holder's thread");
    assert_eq!(a.status, 200, "{}", a.text());
    let got = json_of(&a);
    assert_eq!(got["fnv"], json!(fnv_hex(&a_body)));
    assert!(got["mapped"].is_string(), "{got}");
    // A body larger than the whole budget could never be held: too large, not busy.
    let resp = digest(port, &pattern(1001));
    assert_eq!(resp.status, 413, "{}", resp.text());
    // Released with its request: both fit again, one after the other.
    for (n, mapped) in [(900, true), (300, false)] {
        let body = pattern(n);
        let resp = digest(port, &body);
        assert_eq!(resp.status, 200, "{n} bytes: {}", resp.text());
        let got = json_of(&resp);
        assert_eq!(got["fnv"], json!(fnv_hex(&body)));
        assert_eq!(got["mapped"].is_string(), mapped, "{got}");
    }
}
