//! Streamed response bodies (issue 17), through the real binary and `test_http`'s routes: a
//! 1 GiB pulled download with the host's RSS growth under 32 MiB, a chunked pull stream,
//! server-sent events delivered one by one (each read before the next is pushed), a file
//! sent from disk, a request body read incrementally or taken as its spooled file, and a
//! stream in flight across a SIGHUP swap finishing on the build that started it.

use inphms_tests::bodies::status_kib;
use inphms_tests::swap::{install_swap_lib, swap_build, swap_server};
use inphms_tests::{http_get, post, wait_until, TestDir};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A response being read: its head (lower-cased), and the connection positioned at the
/// body.
struct Streaming {
    head: String,
    reader: BufReader<TcpStream>,
}

impl Streaming {
    fn get(port: u16, path: &str) -> Streaming {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        (&stream)
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            assert!(
                reader.read_line(&mut line).unwrap() > 0,
                "closed mid-head: {head}"
            );
            if line == "\r\n" {
                break;
            }
            head.push_str(&line.to_ascii_lowercase());
        }
        Streaming { head, reader }
    }

    fn status(&self) -> u16 {
        self.head[9..12].parse().unwrap()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            l.strip_prefix(name)
                .and_then(|r| r.strip_prefix(':'))
                .map(str::trim)
        })
    }

    /// The next chunk of a chunked body (`None` at its end).
    fn chunk(&mut self) -> Option<Vec<u8>> {
        let mut size = String::new();
        self.reader.read_line(&mut size).unwrap();
        let size = usize::from_str_radix(size.trim(), 16)
            .unwrap_or_else(|_| panic!("a chunk size, got {size:?}"));
        let mut data = vec![0u8; size + 2];
        self.reader.read_exact(&mut data).unwrap();
        assert!(data.ends_with(b"\r\n"));
        data.truncate(size);
        (size > 0).then_some(data)
    }
}

#[test]
fn a_gib_pulled_download_grows_the_hosts_rss_by_less_than_32_mib() {
    let td = TestDir::new();
    let server = td.test_http_server(&[]).start_healthy();
    let port = server.port();
    let pid = server.pid();
    // Warm up: the first stream starts what streams use (a thread of the pool, buffers).
    let warm = http_get(port, "/test_http/stream_bytes/4", &[]);
    assert_eq!(warm.body.len(), 4 << 20);
    let before = status_kib(pid, "VmRSS").unwrap();
    let mut s = Streaming::get(port, "/test_http/stream_bytes/1024");
    assert_eq!(s.status(), 200, "{}", s.head);
    assert_eq!(s.header("content-length"), Some("1073741824"), "{}", s.head);
    let mut buf = vec![0u8; 1 << 20];
    let (mut total, mut peak) = (0u64, before);
    loop {
        let n = s.reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(
            buf[..n].iter().all(|b| *b == b'z'),
            "a wrong byte near {total}"
        );
        total += n as u64;
        if total % (32 << 20) < n as u64 {
            peak = peak.max(status_kib(pid, "VmRSS").unwrap());
        }
    }
    assert_eq!(total, 1 << 30);
    let growth_kib = peak.saturating_sub(before);
    eprintln!("host RSS {before} KiB before, peak {peak} KiB during a 1 GiB stream");
    assert!(
        growth_kib < 32 * 1024,
        "the host's RSS grew by {growth_kib} KiB streaming 1 GiB"
    );
}

#[test]
fn a_pull_stream_without_length_is_chunked() {
    let td = TestDir::new();
    let server = td.test_http_server(&[]).start_healthy();
    let r = http_get(server.port(), "/test_http/stream_lines/500", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    let expected: String = (0..500).map(|i| format!("line {i}\n")).collect();
    assert_eq!(r.text(), expected);
    let empty = http_get(server.port(), "/test_http/stream_lines/0", &[]);
    assert_eq!((empty.status, empty.text()), (200, String::new()));
}

#[test]
fn a_panicking_producer_cuts_its_response_and_the_host_serves_on() {
    let td = TestDir::new();
    let server = td.test_http_server(&[]).start_healthy();
    let port = server.port();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(b"GET /test_http/stream_panic HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // The connection is cut: at most the head and the two chunks made before the panic
    // (hyper may cut it with them still in its buffer), and never the terminating chunk,
    // so the body is never taken as whole.
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 200 OK\r\n"),
        "{text:?}"
    );
    assert!(text.matches("chunk\n").count() <= 2, "{text:?}");
    assert!(!text.contains("\r\n0\r\n\r\n"), "{text:?}");
    assert!(
        server.wait_for_log(
            "streamed response of addon test_http cut",
            Duration::from_secs(10)
        ),
        "{}",
        server.stderr()
    );
    assert_eq!(http_get(port, "/web/health", &[]).status, 200);
}

#[test]
fn server_sent_events_arrive_one_by_one() {
    let td = TestDir::new();
    let server = td.test_http_server(&[]).start_healthy();
    let port = server.port();
    let mut sse = Streaming::get(port, "/test_http/sse");
    assert_eq!(sse.status(), 200, "{}", sse.head);
    assert_eq!(sse.header("content-type"), Some("text/event-stream"));
    assert_eq!(sse.header("transfer-encoding"), Some("chunked"));
    let hello = String::from_utf8(sse.chunk().unwrap()).unwrap();
    let id: u64 = hello
        .strip_prefix("event: hello\ndata: ")
        .and_then(|r| r.strip_suffix("\n\n"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{hello:?}"));
    for i in 0..100 {
        let r = http_get(port, &format!("/test_http/sse_push/{id}?data=e{i}"), &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        // This event is on the wire before the next is pushed.
        let event = String::from_utf8(sse.chunk().unwrap()).unwrap();
        assert_eq!(event, format!("event: tick\ndata: e{i}\n\n"));
    }
    assert_eq!(
        http_get(port, &format!("/test_http/sse_close/{id}"), &[]).status,
        200
    );
    assert_eq!(sse.chunk(), None, "the stream ends once closed");
    // The stream is gone: pushing to it fails.
    assert_ne!(
        http_get(port, &format!("/test_http/sse_push/{id}?data=late"), &[]).status,
        200
    );
}

#[test]
fn a_file_is_sent_from_disk_and_a_body_read_in_pieces() {
    let td = TestDir::new();
    let server = td.test_http_server(&[]).start_healthy();
    let port = server.port();
    let path = td.join("export.bin");
    let bytes: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &bytes).unwrap();
    let r = http_get(
        port,
        &format!("/test_http/send_file?path={}", path.display()),
        &[],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("3145728"));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert!(r.body == bytes, "the file's bytes");
    let missing = http_get(
        port,
        &format!("/test_http/send_file?path={}", td.join("nope").display()),
        &[],
    );
    assert_eq!(missing.status, 404);
    // A 3 MiB body (spooled to a file: past http_body_spool) read through body_reader.
    let sum: u64 = bytes.iter().map(|b| u64::from(*b)).sum();
    let r = post(
        port,
        "/test_http/body_sum",
        "application/octet-stream",
        &bytes,
    );
    assert_eq!(r.text(), format!("{} {sum}", bytes.len()));
    // The same body taken as its spooled file (read from another thread), and a small one
    // that stayed in memory.
    let r = post(
        port,
        "/test_http/body_file",
        "application/octet-stream",
        &bytes,
    );
    assert_eq!(r.text(), format!("spooled {} {sum}", bytes.len()));
    let r = post(
        port,
        "/test_http/body_file",
        "application/octet-stream",
        b"small",
    );
    assert_eq!(r.text(), "in memory 5");
}

#[test]
fn a_stream_in_flight_during_a_swap_finishes_on_its_build() {
    let td = TestDir::new();
    let server = swap_server(&td, "base,web,test_swap", &[]);
    let port = server.port();
    // 128 MiB, pulled as the client reads: most of it is produced after the swap.
    let mut s = Streaming::get(port, "/test_swap/stream/2048");
    assert_eq!(s.status(), 200, "{}", s.head);
    let mut first = vec![0u8; 1 << 20];
    s.reader.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"v1v1"));
    install_swap_lib(&td.join("addons"), &swap_build("v2"));
    server.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(20), || {
            http_get(port, "/test_swap/version", &[]).text() == "v2"
        }),
        "{}",
        server.stderr()
    );
    let mut rest = Vec::new();
    s.reader.read_to_end(&mut rest).unwrap();
    assert_eq!(first.len() + rest.len(), 128 << 20, "the whole stream");
    assert!(
        rest.chunks(2).all(|c| c == b"v1"),
        "every chunk from the v1 build"
    );
    // A new stream is v2's.
    let mut fresh = Streaming::get(port, "/test_swap/stream/1");
    let mut head = [0u8; 4];
    fresh.reader.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"v2v2");
}
