//! Regression tests of the review of issue 17's streamed bodies (review R1, finding 4),
//! through the real binary and `test_http`: a pull producer is dropped when its client
//! leaves in the middle of a chunk (`/test_http/stream_slow` counts its producers alive in
//! `/test_http/producers_alive`).

use inphms_tests::{http_get, wait_until, TestDir};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn alive(port: u16) -> u64 {
    let r = http_get(port, "/test_http/producers_alive", &[]);
    assert_eq!(r.status, 200);
    r.text().trim().parse().expect("a count")
}

#[test]
fn a_producer_is_dropped_when_its_client_leaves_mid_chunk() {
    let td = TestDir::new();
    let server = td.test_http_server(&[]).start_healthy();
    let port = server.port();
    assert_eq!(alive(port), 0);
    for _ in 0..5 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let raw = format!(
            "GET /test_http/stream_slow/1000 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(raw.as_bytes()).unwrap();
        // The head and a first piece of the body: the producer is being polled.
        let mut got = vec![0u8; 4096];
        let n = stream.read(&mut got).unwrap();
        assert!(n > 0);
        assert!(String::from_utf8_lossy(&got[..n]).starts_with("HTTP/1.1 200"));
        assert!(alive(port) >= 1);
        // Leaves with unread data (a reset), while the next chunk is being produced.
        drop(stream);
    }
    assert!(
        wait_until(Duration::from_secs(20), || alive(port) == 0),
        "{} producers still alive after their clients left: {}",
        alive(port),
        server.stderr()
    );
}
