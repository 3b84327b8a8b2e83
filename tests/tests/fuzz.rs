//! A short, bounded fuzz of the real binary over loopback (issue 15): mutated HTTP request
//! heads (request lines, header names and values, odd and conflicting lengths, chunked
//! encodings, huge values, bare LFs, truncations, random bytes) and JSON-RPC bodies
//! (mutations of valid ones, deep nesting, odd numbers, lone surrogates, invalid UTF-8)
//! sent to `base`, `web` and `test_http` routes.
//!
//! Random but repeatable: the seed is fixed, printed, and taken from `INPHMS_FUZZ_SEED`
//! when set (decimal or `0x` hex); `INPHMS_FUZZ_MILLIS` changes the time spent sending
//! (default 4000 ms, at most 4000 cases). It asserts, for every case: the process is alive;
//! the request is answered or its connection closed within [`CASE_BOUND`] (no hang); an
//! answer starts with a valid HTTP status line; a JSON-RPC body that is not JSON (by
//! serde_json, whose limits the host shares) to a json route is a 400, never a 200. After
//! the run, `/web/health` answers and the log holds no panic.

use inphms_tests::{http_get, Server, TestDir};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// The seed used when `INPHMS_FUZZ_SEED` is not set.
const DEFAULT_SEED: u64 = 0x1515_f022_0000_0015;
/// How long one case may take, from connecting to the end of the answer.
const CASE_BOUND: Duration = Duration::from_secs(10);
/// At most this many cases, whatever the time budget.
const MAX_CASES: usize = 4000;

/// The json routes: without arguments, with handler arguments, with URL arguments, inline.
const JSON_ROUTES: [&str; 4] = [
    "/test_http/json_echo",
    "/test_http/add",
    "/test_http/rpc_error/user",
    "/web/webclient/version_info",
];

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// `bytes` for a failure message: at most 300 of them, escaped.
fn show(bytes: &[u8]) -> String {
    let shown: String = bytes[..bytes.len().min(300)].escape_ascii().to_string();
    if bytes.len() > 300 {
        format!("{shown}... ({} bytes)", bytes.len())
    } else {
        shown
    }
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

// ---------------------------------------------------------------------------------------------
// JSON-RPC bodies

/// A valid JSON-RPC body for `route`.
fn valid_body(rng: &mut StdRng, route: &str) -> String {
    let id = rng.random_range(0..1000);
    let params = if route == "/test_http/add" {
        format!(
            r#"{{"a": {}, "b": {}}}"#,
            rng.random_range(-99..99),
            rng.random_range(-99..99)
        )
    } else {
        r#"{"k": [1, 2.5, -3e2, true, null, "\u00e9\ud83d\ude00", {"n": {"m": []}}], "s": "x\"y\\z"}"#.to_owned()
    };
    format!(r#"{{"jsonrpc": "2.0", "id": {id}, "method": "call", "params": {params}}}"#)
}

/// Odd values to put in a body.
fn odd_value(rng: &mut StdRng) -> Vec<u8> {
    let depth = *pick(
        rng,
        &[10usize, 120, 126, 127, 128, 129, 500, 20_000, 100_000],
    );
    match rng.random_range(0..16) {
        0 => format!("{}1{}", "[".repeat(depth), "]".repeat(depth)).into_bytes(),
        1 => format!("{}1{}", "{\"a\": ".repeat(depth), "}".repeat(depth)).into_bytes(),
        // Unclosed nesting.
        2 => "[".repeat(depth).into_bytes(),
        3 => pick(
            rng,
            &["1e999999", "-1e400", "1e-999999", "-0", "0.0e0", "1E+2"],
        )
        .as_bytes()
        .to_vec(),
        4 => format!("1{}", "0".repeat(*pick(rng, &[300usize, 400, 10_000]))).into_bytes(),
        5 => pick(
            rng,
            &[
                "NaN",
                "Infinity",
                "-Infinity",
                "0x10",
                "01",
                "1.",
                ".5",
                "+1",
                "1e",
                "--1",
            ],
        )
        .as_bytes()
        .to_vec(),
        6 => pick(
            rng,
            &[
                r#""\ud800""#,
                r#""\udfff""#,
                r#""\ud800\u0041""#,
                r#""\ud83d\ude00""#,
                r#""\u12""#,
                r#""\x41""#,
            ],
        )
        .as_bytes()
        .to_vec(),
        7 => {
            // Invalid UTF-8 inside a string: a stray continuation, a truncated sequence,
            // an overlong form, an encoded surrogate, bytes never used in UTF-8.
            let bad: &[u8] = pick::<&[u8]>(
                rng,
                &[
                    &b"\x80"[..],
                    b"\xc3(",
                    b"\xc0\xaf",
                    b"\xed\xa0\x80",
                    b"\xf8\x88\x80\x80\x80",
                    b"\xff\xfe",
                ],
            );
            [&b"\"a"[..], bad, b"b\""].concat()
        }
        8 => "9".repeat(rng.random_range(19..25)).into_bytes(),
        9 => b"\"\x00\x01\x1f\"".to_vec(),
        10 => b"\"\\".to_vec(),
        11 => format!("\"{}\"", "\\u00e9".repeat(rng.random_range(1..2000))).into_bytes(),
        12 => b"[1,]".to_vec(),
        13 => b"{\"a\" 1}".to_vec(),
        14 => b"tru".to_vec(),
        _ => b"{}".to_vec(),
    }
}

/// A JSON-RPC body: a valid one, mutated.
fn json_body(rng: &mut StdRng, route: &str) -> Vec<u8> {
    let mut body = valid_body(rng, route).into_bytes();
    for _ in 0..rng.random_range(1..4) {
        let at = rng.random_range(0..=body.len());
        match rng.random_range(0..8) {
            0 => {
                if let Some(b) = body.get_mut(at) {
                    *b = rng.random();
                }
            }
            1 => {
                let c = *pick(rng, b"{}[]\",:\\0123456789eE.-+ \x00\xff\n");
                body.insert(at, c);
            }
            2 => {
                let end = (at + rng.random_range(1..8)).min(body.len());
                body.drain(at..end);
            }
            3 => body.truncate(at),
            // An odd value in `params` (as `a`), or anywhere.
            4 | 5 => {
                let value = odd_value(rng);
                let marker = if route == "/test_http/add" {
                    &b"\"a\": "[..]
                } else {
                    b"\"k\": "
                };
                let pos = body
                    .windows(marker.len())
                    .position(|w| w == marker)
                    .map(|p| p + marker.len())
                    .filter(|_| rng.random_bool(0.8))
                    .unwrap_or(at);
                // `"a": <odd>, "z": <what a was>`: well formed around the odd value.
                body.splice(pos..pos, [&value[..], b", \"z\": "].concat());
            }
            6 => {
                // The whole body deep.
                let depth = rng.random_range(100..3000);
                body = format!(
                    "{}{}{}",
                    "[".repeat(depth),
                    String::from_utf8_lossy(&body),
                    "]".repeat(depth)
                )
                .into_bytes();
            }
            _ => body = odd_value(rng),
        }
    }
    body
}

// ---------------------------------------------------------------------------------------------
// Request heads

/// A request that is well formed, to mutate.
fn template(rng: &mut StdRng) -> Vec<u8> {
    let route = *pick(rng, &JSON_ROUTES);
    match rng.random_range(0..5) {
        0 => b"GET /web/health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: fuzz\r\n\r\n".to_vec(),
        1 => b"GET /test_http/item/42?x=1&y=%C3%A9 HTTP/1.1\r\nHost: x\r\nCookie: session_id=abc; a=b\r\nAccept: */*\r\n\r\n".to_vec(),
        2 => {
            let body = valid_body(rng, route);
            format!(
                "POST {route} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        }
        3 => {
            let body = valid_body(rng, route);
            let (a, b) = body.split_at(body.len() / 2);
            format!(
                "POST {route} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                a.len(),
                b.len()
            )
            .into_bytes()
        }
        _ => b"POST /test_http/form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\na=1&b=2".to_vec(),
    }
}

/// The end of the head (the blank line), if any.
fn head_end(req: &[u8]) -> usize {
    req.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(req.len(), |p| p + 2)
}

/// Inserts a header line before the blank line.
fn add_header(req: &mut Vec<u8>, line: &[u8]) {
    let at = head_end(req);
    let mut bytes = line.to_vec();
    bytes.extend_from_slice(b"\r\n");
    req.splice(at..at, bytes);
}

/// Replaces the first line.
fn replace_request_line(req: &mut Vec<u8>, line: &[u8]) {
    let end = req
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(req.len());
    req.splice(0..end, line.iter().copied());
}

/// Replaces everything after the head.
fn replace_body(req: &mut Vec<u8>, body: &[u8]) {
    let at = (head_end(req) + 2).min(req.len());
    req.truncate(at);
    req.extend_from_slice(body);
}

/// A request head (and body), mutated.
fn mutated_request(rng: &mut StdRng) -> Vec<u8> {
    let mut req = template(rng);
    for _ in 0..rng.random_range(1..4) {
        match rng.random_range(0..12) {
            0 => {
                let at = rng.random_range(0..req.len());
                req[at] = rng.random();
            }
            1 => {
                let at = rng.random_range(0..=req.len());
                let c = *pick(rng, b"\r\n :\x00\x7f\xff\t/?%");
                req.insert(at, c);
            }
            2 => {
                let at = rng.random_range(0..req.len());
                let end = (at + rng.random_range(1..6)).min(req.len());
                req.drain(at..end);
            }
            3 => {
                let at = rng.random_range(0..req.len());
                req.truncate(at);
            }
            4 => {
                let long_path = format!(
                    "GET /{} HTTP/1.1",
                    "a/".repeat(rng.random_range(100..20_000))
                );
                let line: Vec<u8> = match rng.random_range(0..14) {
                    0 => b"GET * HTTP/1.1".to_vec(),
                    1 => b"GET http://127.0.0.1/web/health HTTP/1.1".to_vec(),
                    2 => b"GET /web/health HTTP/9.9".to_vec(),
                    3 => b"GET /web/health".to_vec(),
                    4 => b"get /web/health HTTP/1.1".to_vec(),
                    5 => b"GET /%ff%00/../../etc/passwd HTTP/1.1".to_vec(),
                    6 => b"GET /web/health?a=%zz&%%=1 HTTP/1.1".to_vec(),
                    7 => b"BREW /test_http/json_echo HTTP/1.1".to_vec(),
                    8 => long_path.into_bytes(),
                    9 => b"GET /\xff\xfe HTTP/1.1".to_vec(),
                    10 => b"GET /web/health HTTP/1.1 extra".to_vec(),
                    11 => b"CONNECT 127.0.0.1:1 HTTP/1.1".to_vec(),
                    12 => b"GET /web/health HTTP/1.0".to_vec(),
                    _ => b"OPTIONS * HTTP/1.1".to_vec(),
                };
                replace_request_line(&mut req, &line);
            }
            5 => {
                let name: &[u8] = pick::<&[u8]>(
                    rng,
                    &[
                        &b"X-Fuzz"[..],
                        b"Bad Name",
                        b"X:Y",
                        b"\x7f",
                        b"",
                        b"Host",
                        b"Cookie",
                        b"X-Forwarded-For",
                        b"Content-Type",
                        b"Expect",
                        b"Connection",
                        b"Upgrade",
                    ],
                );
                let value: Vec<u8> = match rng.random_range(0..8) {
                    0 => vec![b'v'; rng.random_range(1_000..100_000)],
                    1 => b"a\x00b\x01".to_vec(),
                    2 => b"\xff\xfe\xc3(".to_vec(),
                    3 => b"a\r\n continued".to_vec(),
                    4 => b"100-continue".to_vec(),
                    5 => b"websocket".to_vec(),
                    6 => b"session_id=../../../../etc/passwd".to_vec(),
                    _ => b"".to_vec(),
                };
                let line = [name, b": ", &value].concat();
                add_header(&mut req, &line);
            }
            6 => {
                let value = *pick(
                    rng,
                    &[
                        "-1",
                        "18446744073709551616",
                        "1, 1",
                        "1,2",
                        "+5",
                        "0x10",
                        " 5 ",
                        "",
                        "99999999999",
                        "4",
                        "100000",
                        "1e3",
                    ],
                );
                add_header(&mut req, format!("Content-Length: {value}").as_bytes());
            }
            7 => {
                let value = *pick(
                    rng,
                    &[
                        "chunked",
                        "chunked, chunked",
                        "gzip, chunked",
                        "identity",
                        "Chunked",
                        "chunked\x00",
                        "chunked, gzip",
                        "",
                    ],
                );
                add_header(&mut req, format!("Transfer-Encoding: {value}").as_bytes());
            }
            8 => {
                let body: &[u8] = pick::<&[u8]>(
                    rng,
                    &[
                        &b"zz\r\nabc\r\n0\r\n\r\n"[..],
                        b"ffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
                        b"5;ext=1\r\nhello\r\n0\r\n\r\n",
                        b"5\r\nhel",
                        b"3\r\nabc\r\n0\r\n",
                        b"3\r\nabc\r\n0\r\nX-Trailer: \xff\r\n\r\n",
                        b"-1\r\n\r\n",
                        b"3\nabc\n0\n\n",
                        b"7fffffff\r\n",
                        b"0\r\n\r\nGET /web/health HTTP/1.1\r\nHost: x\r\n\r\n",
                    ],
                );
                replace_body(&mut req, body);
            }
            9 => {
                for i in 0..rng.random_range(100..400) {
                    add_header(&mut req, format!("X-Many-{i}: {i}").as_bytes());
                }
            }
            10 => {
                // Bare LFs instead of CRLFs in the head.
                let end = head_end(&req);
                let head: Vec<u8> = req[..end].iter().copied().filter(|&b| b != b'\r').collect();
                req.splice(..end, head);
            }
            _ => {
                req = (0..rng.random_range(1..2000))
                    .map(|_| rng.random())
                    .collect();
            }
        }
        if req.is_empty() {
            req.push(b'G');
        }
    }
    req
}

// ---------------------------------------------------------------------------------------------
// Sending

/// How a case ended.
#[derive(Debug)]
enum Ended {
    /// The first bytes of the answer: its status.
    Answered(u16),
    /// Closed (or reset) without an answer.
    Closed,
}

/// Sends `req` on a new connection (closing its writing half after, if `half_close`), then
/// reads until the server closes. An error says what went wrong: a hang or a bad answer.
fn exchange(port: u16, req: &[u8], half_close: bool) -> Result<Ended, String> {
    let deadline = Instant::now() + CASE_BOUND;
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_write_timeout(Some(CASE_BOUND))
        .map_err(|e| e.to_string())?;
    // A server that answers early (431, 413) may close before all is written: fine.
    let written = stream.write_all(req);
    if written.is_ok() && half_close {
        let _ = stream.shutdown(Shutdown::Write);
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "no answer and no close within {CASE_BOUND:?} (got {})",
                show(&answer)
            ));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => break, // reset: closed
        }
    }
    if answer.is_empty() {
        return Ok(Ended::Closed);
    }
    let line_end = answer
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(answer.len());
    let line = &answer[..line_end];
    let status = std::str::from_utf8(line)
        .ok()
        .and_then(|l| {
            l.strip_prefix("HTTP/1.1 ")
                .or_else(|| l.strip_prefix("HTTP/1.0 "))
        })
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|code| (100..600).contains(code));
    match status {
        Some(code) => Ok(Ended::Answered(code)),
        None => Err(format!("not an HTTP status line: {}", show(&answer))),
    }
}

/// A JSON-RPC POST of `body` to `route`, framed by Content-Length or chunked.
fn json_request(rng: &mut StdRng, route: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!("POST {route} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n").into_bytes();
    if rng.random_bool(0.25) && !body.is_empty() {
        req.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        for chunk in body.chunks(rng.random_range(1..4096)) {
            req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            req.extend_from_slice(chunk);
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"0\r\n\r\n");
    } else {
        req.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        req.extend_from_slice(body);
    }
    req
}

#[test]
fn fuzzed_heads_and_jsonrpc_bodies_never_crash_hang_or_answer_200_to_bad_json() {
    let seed = env_u64("INPHMS_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let budget = Duration::from_millis(env_u64("INPHMS_FUZZ_MILLIS").unwrap_or(4000));
    println!("fuzz seed {seed:#x} (INPHMS_FUZZ_SEED repeats or changes it), budget {budget:?}");
    let mut rng = StdRng::seed_from_u64(seed);

    let td = TestDir::new();
    let mut server: Server = td.test_http_server(&[]).start_healthy();
    let port = server.port();

    let started = Instant::now();
    let (mut heads, mut bodies, mut invalid_json, mut closed) = (0, 0, 0, 0);
    for case in 0..MAX_CASES {
        if started.elapsed() >= budget {
            break;
        }
        let (req, half_close, must_be_400) = if rng.random_bool(0.5) {
            heads += 1;
            (mutated_request(&mut rng), true, false)
        } else {
            bodies += 1;
            let route = *pick(&mut rng, &JSON_ROUTES);
            let body = json_body(&mut rng, route);
            let bad = serde_json::from_slice::<serde_json::Value>(&body).is_err();
            invalid_json += usize::from(bad);
            (json_request(&mut rng, route, &body), false, bad)
        };
        let context = || format!("seed {seed:#x}, case {case}: {}", show(&req));
        let ended = exchange(port, &req, half_close)
            .unwrap_or_else(|e| panic!("{e}\n{}\n{}", context(), server.stderr()));
        match ended {
            Ended::Answered(status) if must_be_400 => {
                assert_eq!(status, 400, "a body that is not JSON\n{}", context())
            }
            Ended::Answered(_) => {}
            Ended::Closed if must_be_400 => {
                panic!("a well-framed JSON-RPC POST got no answer\n{}", context())
            }
            Ended::Closed => closed += 1,
        }
        if let Some(status) = server.wait(Duration::ZERO) {
            panic!(
                "the server exited ({status})\n{}\n{}",
                context(),
                server.stderr()
            );
        }
    }
    println!(
        "{} cases in {:?}: {heads} heads ({closed} closed without an answer), {bodies} JSON-RPC bodies ({invalid_json} not JSON)",
        heads + bodies,
        started.elapsed()
    );
    assert!(
        heads > 20 && bodies > 20 && invalid_json > 10,
        "too few cases to mean anything"
    );
    assert_eq!(http_get(port, "/web/health", &[]).status, 200);
    let log = server.stderr();
    assert!(!log.contains("panicked"), "{log}");
    assert!(server.wait(Duration::ZERO).is_none(), "the server is alive");
}
