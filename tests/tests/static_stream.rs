//! Static files are streamed from the file, never held whole in memory (issue 15, "Found
//! broken 5"): 48 clients reading a 60 MiB static file slowly, at once, keep the host's
//! resident memory under 128 MiB (VmRSS sampled throughout, VmHWM at the end), each gets
//! the whole file byte for byte, `/web/health` answers throughout (every check within 5 s,
//! nine in ten within 1 s), and a `Range` request on
//! the big file gets exactly its slice. A file truncated while it is being sent ends its
//! response short (the connection closed, never a wrong byte), logged once, and the host
//! goes on serving.
//!
//! Build first: `cargo build --workspace`, then `cargo test -p inphms-tests --test
//! static_stream`.

use inphms_tests::bodies::status_kib;
use inphms_tests::{http_get, test_addon_src, Server, TestDir};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const BIG_SIZE: usize = 60 * 1024 * 1024;
const READERS: usize = 48;
const RSS_LIMIT_KIB: u64 = 128 * 1024;
/// Each reader's pace: at most this many bytes per read, then a pause. 64 KiB per 25 ms is
/// about 2.5 MiB/s, so a reader takes 25 s at least for the 60 MiB.
const READ_SIZE: usize = 64 * 1024;
const PAUSE: Duration = Duration::from_millis(25);
/// `/web/health` during the readers: the slowest of its answers within this...
const HEALTH_SLOWEST: Duration = Duration::from_secs(5);
/// ...and nine in ten within this.
const HEALTH_MOST: Duration = Duration::from_secs(1);
/// The bound on the whole run (a reader that gets nothing for this long fails too).
const RUN_LIMIT: Duration = Duration::from_secs(150);

/// The big file's bytes: a cheap pseudo-random sequence (xorshift), so that a misplaced
/// chunk cannot compare equal.
fn big_content() -> Vec<u8> {
    let mut out = Vec::with_capacity(BIG_SIZE);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while out.len() < BIG_SIZE {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(BIG_SIZE);
    out
}

/// A server with `base,web,test_http` loaded from a copy of `test_http` whose static folder
/// holds `big.bin` (the bytes of [`big_content`]).
fn start_with_big_file(td: &TestDir, big: &[u8]) -> Server {
    let copy = td.copy_addon(&test_addon_src("test_http"), "addons");
    std::fs::copy(
        inphms_tests::built_lib("test_http"),
        copy.join("libtest_http.so"),
    )
    .expect("copy the test_http library");
    std::fs::write(copy.join("static/big.bin"), big).expect("write the big static file");
    let addons = td.join("addons");
    let data = td.join("data");
    td.server([
        "--load",
        "base,web,test_http",
        "-D",
        data.to_str().unwrap(),
        "--addons-path",
        addons.to_str().unwrap(),
    ])
    .start_healthy()
}

/// What one slow reader got.
struct Got {
    status: u16,
    content_length: Option<usize>,
    /// Bytes of body received.
    len: usize,
    /// The first offset where the bytes differ from the file's, if any.
    first_mismatch: Option<usize>,
}

/// GETs `path` on a new connection and reads the body in reads of at most [`READ_SIZE`]
/// with a [`PAUSE`] after each, comparing each piece with `expected` as it comes (every
/// byte, so no checksum is needed besides).
fn slow_read(port: u16, path: &str, expected: &[u8]) -> std::io::Result<Got> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reader = BufReader::with_capacity(READ_SIZE, stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut content_length = None;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().ok();
            }
        }
    }
    let deadline = Instant::now() + RUN_LIMIT;
    let mut buf = vec![0u8; READ_SIZE];
    let mut len = 0usize;
    let mut first_mismatch = None;
    while Instant::now() < deadline {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let got = &buf[..n];
        if first_mismatch.is_none() {
            let want = expected.get(len..len + n).unwrap_or(&[]);
            if want != got {
                let at = got.iter().zip(want).take_while(|(a, b)| a == b).count();
                first_mismatch = Some(len + at);
            }
        }
        len += n;
        thread::sleep(PAUSE);
    }
    Ok(Got {
        status,
        content_length,
        len,
        first_mismatch,
    })
}

#[test]
fn slow_readers_of_a_big_static_file_keep_memory_bounded() {
    let td = TestDir::new();
    let big = Arc::new(big_content());
    let server = start_with_big_file(&td, &big);
    let (port, pid) = (server.port(), server.pid());
    let path = "/test_http/static/big.bin";

    // A range of the big file: exactly its slice (streamed, as it is past one chunk).
    let (start, end) = (1_000_003usize, 5_000_010usize);
    let r = http_get(port, path, &[("Range", &format!("bytes={start}-{end}"))]);
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes {start}-{end}/{BIG_SIZE}").as_str())
    );
    assert_eq!(
        r.header("content-length"),
        Some((end - start + 1).to_string().as_str())
    );
    assert!(r.body == big[start..=end], "the range's bytes differ");
    let r = http_get(port, path, &[("Range", "bytes=-300000")]);
    assert_eq!(r.status, 206);
    assert!(
        r.body == big[BIG_SIZE - 300_000..],
        "the suffix range's bytes differ"
    );
    // HEAD: the size, no body; revalidation: 304.
    let r = inphms_tests::request(
        port,
        format!("HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some(BIG_SIZE.to_string().as_str())
    );
    assert!(r.body.is_empty());
    let etag = r.header("etag").expect("an ETag").to_owned();
    assert_eq!(
        http_get(port, path, &[("If-None-Match", &etag)]).status,
        304
    );
    let idle_rss = status_kib(pid, "VmRSS").expect("the host's VmRSS");

    let done = Arc::new(AtomicBool::new(false));
    // VmRSS every 50 ms while the readers run.
    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak) = (Arc::clone(&done), Arc::clone(&peak_rss));
        thread::spawn(move || {
            let mut samples = 0u32;
            while !done.load(Ordering::Relaxed) {
                if let Some(kib) = status_kib(pid, "VmRSS") {
                    peak.fetch_max(kib, Ordering::Relaxed);
                    samples += 1;
                }
                thread::sleep(Duration::from_millis(50));
            }
            samples
        })
    };
    // /web/health every 200 ms while the readers run: each answered 200, promptly.
    let health = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let mut answers = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let asked = Instant::now();
                let status = inphms_tests::try_request(
                    port,
                    b"GET /web/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                )
                .map_or(0, |r| r.status);
                answers.push((status, asked.elapsed()));
                thread::sleep(Duration::from_millis(200));
            }
            answers
        })
    };

    let started = Instant::now();
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let big = Arc::clone(&big);
            thread::spawn(move || slow_read(port, path, &big))
        })
        .collect();
    let results: Vec<_> = readers
        .into_iter()
        .map(|r| r.join().expect("a reader thread panicked"))
        .collect();
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap();
    let answers = health.join().unwrap();
    let hwm = status_kib(pid, "VmHWM").expect("the host's VmHWM");
    let peak = peak_rss.load(Ordering::Relaxed);
    eprintln!(
        "{READERS} readers of {BIG_SIZE} bytes in {elapsed:?}: VmRSS {idle_rss} KiB before, \
         peak {peak} KiB over {samples} samples, VmHWM {hwm} KiB, {} health checks",
        answers.len()
    );

    for (i, result) in results.iter().enumerate() {
        let got = result
            .as_ref()
            .unwrap_or_else(|e| panic!("reader {i} failed: {e}\n{}", server.stderr()));
        assert_eq!(got.status, 200, "reader {i}");
        assert_eq!(got.content_length, Some(BIG_SIZE), "reader {i}");
        assert_eq!(
            got.len,
            BIG_SIZE,
            "reader {i} got {} bytes\n{}",
            got.len,
            server.stderr()
        );
        assert_eq!(got.first_mismatch, None, "reader {i}'s bytes differ");
    }
    assert!(samples >= 10, "only {samples} RSS samples");
    assert!(
        peak < RSS_LIMIT_KIB && hwm < RSS_LIMIT_KIB,
        "the host's memory went past {RSS_LIMIT_KIB} KiB: peak VmRSS {peak} KiB, VmHWM {hwm} KiB"
    );
    // Every health check answered 200, the slowest within HEALTH_SLOWEST and nine in ten
    // within HEALTH_MOST. Why two bounds: the machine's two cores are shared with the 48
    // reader threads and other work, so one check may wait on the scheduler for a second
    // or so now and then; what this test must catch is the host failing to answer while
    // it streams (its workers blocked by file reads, a queue behind the readers), which
    // makes most checks slow, or one very slow.
    assert!(answers.len() >= 10, "only {} health checks", answers.len());
    let mut times: Vec<Duration> = answers
        .iter()
        .map(|(status, took)| {
            assert_eq!(*status, 200, "/web/health during the readers");
            *took
        })
        .collect();
    times.sort();
    let slowest = times[times.len() - 1];
    let ninth_decile = times[times.len() * 9 / 10];
    assert!(
        slowest < HEALTH_SLOWEST && ninth_decile < HEALTH_MOST,
        "/web/health during the readers: slowest {slowest:?} (bound {HEALTH_SLOWEST:?}), \
         9 in 10 within {ninth_decile:?} (bound {HEALTH_MOST:?}), of {}",
        times.len()
    );
    assert!(
        !server.stderr().contains("out of memory"),
        "{}",
        server.stderr()
    );
}

#[test]
fn a_file_truncated_mid_response_ends_it_short_logged_once() {
    let td = TestDir::new();
    let big = Arc::new(big_content());
    let server = start_with_big_file(&td, &big);
    let port = server.port();
    let file = td.join("addons/test_http/static/big.bin");

    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET /test_http/static/big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        assert!(reader.read_line(&mut head).unwrap() > 0, "no head: {head}");
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("content-length: {BIG_SIZE}\r\n")),
        "{head}"
    );
    // The first MiB, then the file loses its tail while the host is still reading it (the
    // client has not read on, so the host cannot be more than its buffers ahead).
    let mut got = vec![0u8; 1024 * 1024];
    reader.read_exact(&mut got).unwrap();
    assert!(got == big[..got.len()]);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .and_then(|f| f.set_len(2 * 1024 * 1024))
        .unwrap();
    let mut rest = Vec::new();
    // Whether the end is a clean EOF or a reset, the body stops short.
    let _ = reader.read_to_end(&mut rest);
    let total = got.len() + rest.len();
    assert!(total < BIG_SIZE, "the whole body arrived ({total} bytes)");
    // What was sent was read before the truncation (a chunk is sent whole or not at all).
    assert!(rest == big[got.len()..total], "wrong bytes sent");

    let line = "static file read failed mid-response";
    assert!(
        server.wait_for_log(line, Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
    let health = http_get(port, "/web/health", &[]);
    assert_eq!(health.status, 200);
    // The file as it is now is served whole.
    let r = http_get(port, "/test_http/static/big.bin", &[]);
    assert_eq!(r.status, 200);
    assert!(r.body == big[..2 * 1024 * 1024]);
    assert_eq!(
        server.stderr().matches(line).count(),
        1,
        "{}",
        server.stderr()
    );
}
