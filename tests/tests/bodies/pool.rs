//! Requests given up at `limit_time_real` while queued for the blocking pool: their
//! handlers never run, their bodies are freed with the 504.

use crate::support::{pattern, start, tail};
use inphms_tests::{http_get, post, wait_until, HttpConn, TestDir};
use std::time::{Duration, Instant};

#[test]
fn a_request_given_up_while_queued_for_the_pool_never_runs_and_frees_its_body_at_once() {
    // tokio's blocking pool has 512 threads: of 560 handlers sleeping 8 s, 48 are queued
    // when `limit_time_real` (2 s) answers them all 504 (sending the 560 requests takes
    // a second or two: the last ones are given up long before a thread frees). Each one
    // carries a body of its own size (1000 + i bytes, in memory), which its handler logs.
    const SLEEPERS: u64 = 560;
    const PROBE: u64 = 32 * 1024;
    let sizes = 1000..1000 + SLEEPERS;
    // The memory budget holds every sleeper's body and the probe's but one byte: the probe
    // fits only once a body is given back, and the bodies of running handlers are held
    // until they return, after 8 s. So the probe, sent right after the 504s, fits only if
    // the bodies of the requests given up while queued went with their 504.
    let budget = sizes.clone().sum::<u64>() + PROBE - 1;
    let td = TestDir::new();
    let budget_arg = budget.to_string();
    let server = start(
        &td,
        &[
            "--limit-time-real",
            "2",
            // Stuck handlers would otherwise re-exec the server mid-test.
            "--limit-time-stuck",
            "100000",
            // 512 threads' stacks: no address-space cap in the way.
            "--limit-memory-hard",
            "0",
            "--limit-memory-bodies",
            &budget_arg,
        ],
    );
    let port = server.port();
    let first_sent = Instant::now();
    let mut conns: Vec<(u64, HttpConn)> = sizes
        .clone()
        .map(|n| {
            let mut c = HttpConn::connect(port).expect("connect");
            let mut raw = format!(
                "POST /test_http/body_digest?sleep_ms=8000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {n}\r\n\r\n"
            )
            .into_bytes();
            raw.resize(raw.len() + n as usize, b'b');
            c.send(&raw).expect("send");
            (n, c)
        })
        .collect();
    for (n, c) in &mut conns {
        let resp = c.read_response(false).expect("an answer");
        assert_eq!(resp.status, 504, "body of {n} bytes: {}", resp.text());
    }
    // The probe: an inline route, so that the budget alone decides its answer.
    let probe = post(
        port,
        "/test_http/inline/cors",
        "application/octet-stream",
        &pattern(PROBE as usize),
    );
    let probed = first_sent.elapsed();
    assert!(
        probed < Duration::from_secs(8),
        "the probe came {probed:?} after the first sleeper: too late to tell (the running handlers had returned)"
    );
    assert_eq!(
        probe.status,
        200,
        "the bodies of the requests given up while queued are still held: {}",
        probe.text()
    );
    // Another blocking route, asked until it is served: queued after every sleeper (the
    // pool's queue is in order), it runs once the pool has taken each given-up one.
    let served = wait_until(Duration::from_secs(30), || {
        http_get(port, "/test_http/item/1", &[]).status == 200
    });
    assert!(
        served,
        "the pool never served again\n{}",
        tail(&server.stderr())
    );
    let log = server.stderr();
    let given_up = log
        .lines()
        .filter(|l| l.contains("request to test_http::body_digest waited past limit_time_real (2s) for a worker thread; answered 504, its handler not run"))
        .count() as u64;
    let started: Vec<u64> = sizes
        .filter(|n| log.contains(&format!("body_digest: started, {n} bytes")))
        .collect();
    assert!(
        given_up > 0,
        "the pool was never full: {} of {SLEEPERS} handlers started\n{}",
        started.len(),
        tail(&log)
    );
    assert_eq!(
        started.len() as u64 + given_up,
        SLEEPERS,
        "{} started, {given_up} given up\n{}",
        started.len(),
        tail(&log)
    );
}
