//! 24 concurrent 127 MiB chunked bodies with the default limits: most refused while
//! sending, the host up and under 512 MiB, `/web/health` answering throughout, every spool
//! file gone after.

use crate::support::{spool_dir, start, MIB};
use inphms_tests::bodies::{open_files_under, status_kib, upload_chunked, Upload};
use inphms_tests::{http_get, wait_until, TestDir};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn concurrent_127_mib_bodies_are_mostly_refused_early_leaving_the_host_up_and_under_512_mib() {
    const CLIENTS: usize = 24;
    const SIZE: u64 = 127 * MIB;
    let td = TestDir::new();
    let server = start(&td, &[]);
    let (port, pid) = (server.port(), server.pid());
    let uploading = Arc::new(AtomicBool::new(true));
    // `/web/health` from another thread throughout; the RSS sampled with it.
    let prober = {
        let uploading = Arc::clone(&uploading);
        std::thread::spawn(move || {
            let (mut slowest, mut probes, mut peak_rss) = (Duration::ZERO, 0u32, 0u64);
            let deadline = Instant::now() + Duration::from_secs(600);
            while uploading.load(Ordering::Acquire) && Instant::now() < deadline {
                let t = Instant::now();
                let resp = inphms_tests::try_request(
                    port,
                    b"GET /web/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                );
                assert!(
                    resp.as_ref().is_ok_and(|r| r.status == 200),
                    "/web/health failed during the uploads: {resp:?}"
                );
                slowest = slowest.max(t.elapsed());
                probes += 1;
                peak_rss = peak_rss.max(status_kib(pid, "VmRSS").unwrap_or(0));
                std::thread::sleep(Duration::from_millis(100));
            }
            (slowest, probes, peak_rss)
        })
    };
    let started = Instant::now();
    // A valid JSON-RPC call padded with spaces: the route's answer is a 200.
    let call = br#"{"jsonrpc":"2.0","method":"call","params":{},"id":1}"#;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::thread::spawn(move || {
                upload_chunked(
                    port,
                    "/web/webclient/version_info",
                    &[("Content-Type", "application/json")],
                    &Upload {
                        prefix: call,
                        chunk: 256 * 1024,
                        ..Upload::filled(b' ', SIZE)
                    },
                )
            })
        })
        .collect();
    let (mut statuses, mut early, mut late, mut sent) =
        (std::collections::BTreeMap::new(), 0, 0, 0u64);
    for c in clients {
        let up = c.join().expect("a client thread");
        sent += up.sent;
        if up.refused_early() {
            early += 1;
        }
        let status = match &up.answer {
            Ok(resp) => {
                assert!(
                    [200, 413, 503].contains(&resp.status),
                    "{} {}",
                    resp.status,
                    resp.text()
                );
                if resp.status == 200 {
                    assert!(resp.text().contains("server_version"), "{}", resp.text());
                } else {
                    assert_eq!(
                        resp.header("retry-after"),
                        (resp.status == 503).then_some("5")
                    );
                    // Refused once the whole body had come: it could have been told sooner.
                    if up.finished {
                        late += 1;
                    }
                }
                resp.status
            }
            // A connection cut under the client is an early refusal; any other failure
            // (no answer to a body sent whole) is not an answer.
            Err(e) => {
                assert!(!up.finished, "no answer to a whole body: {e}");
                0
            }
        };
        *statuses.entry(status).or_insert(0) += 1;
    }
    let took = started.elapsed();
    uploading.store(false, Ordering::Release);
    let (slowest, probes, peak_rss) = prober.join().expect("the prober");
    let hwm = status_kib(pid, "VmHWM").expect("VmHWM of the server");
    eprintln!(
        "{CLIENTS} x 127 MiB in {took:?}: answers {statuses:?} (0: cut while sending), {early} refused before their body was sent, {late} after; {} MiB sent in all; /web/health {probes} probes, slowest {slowest:?}; peak RSS {} MiB (sampled {} MiB)",
        sent / MIB,
        hwm / 1024,
        peak_rss / 1024
    );
    assert!(
        statuses.get(&200).is_some_and(|n| *n > 0),
        "no upload served: {statuses:?}"
    );
    // 1 GiB of disk holds 8 of these bodies at once and 256 MiB of memory maps 2: most
    // clients are told while sending (the budgets are checked as the bytes arrive), not
    // after uploading 127 MiB for nothing (before, all 24 sent their 3048 MiB).
    assert!(
        early >= CLIENTS / 2,
        "only {early} of {CLIENTS} refused early: {statuses:?}"
    );
    assert!(
        sent < CLIENTS as u64 * SIZE,
        "{} MiB of {} sent",
        sent / MIB,
        CLIENTS as u64 * SIZE / MIB
    );
    assert!(hwm < 512 * 1024, "peak RSS {} MiB", hwm / 1024);
    assert!(probes > 0);
    assert_eq!(http_get(port, "/web/health", &[]).status, 200);
    // Every spool file went with its request.
    let spool = spool_dir(&td);
    assert!(
        wait_until(Duration::from_secs(5), || open_files_under(pid, &spool)
            .is_empty()
            && std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0) == 0),
        "spool files left: {:?}",
        open_files_under(pid, &spool)
    );
}
