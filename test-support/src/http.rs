//! A small blocking HTTP/1.1 client over loopback, the one of the tests and the benchmarks:
//! [`HttpConn`] (keep-alive, raw bytes, timeouts chosen), [`try_request`] (raw bytes, one
//! response), [`send`] (a request built by [`build_request`] with `Connection: close`, one
//! response) and [`build_request`] itself, reading Content-Length, chunked and until-close
//! bodies (1xx responses skipped) into a [`Response`].

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// The read and write timeout of [`HttpConn::connect`] and [`try_request`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The headers, in order, names as received.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The value of the cookie `name` set by the response (`Set-Cookie`), if any.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.header_all("set-cookie").into_iter().find_map(|c| {
            let (k, v) = c.split(';').next()?.trim().split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    }
}

/// A connection to 127.0.0.1:`port` that can carry several requests (keep-alive).
pub struct HttpConn {
    reader: BufReader<TcpStream>,
}

impl HttpConn {
    /// Connects, with [`DEFAULT_TIMEOUT`] as read and write timeouts.
    pub fn connect(port: u16) -> std::io::Result<HttpConn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        HttpConn::with_timeout(stream, DEFAULT_TIMEOUT)
    }

    /// Connects within `timeout`, which bounds each read and write too; `TCP_NODELAY` set.
    pub fn connect_timeout(port: u16, timeout: Duration) -> std::io::Result<HttpConn> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        HttpConn::with_timeout(stream, timeout)
    }

    fn with_timeout(stream: TcpStream, timeout: Duration) -> std::io::Result<HttpConn> {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(HttpConn {
            reader: BufReader::new(stream),
        })
    }

    /// The socket, e.g. to set another timeout.
    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Sends raw bytes.
    pub fn send(&mut self, raw: &[u8]) -> std::io::Result<()> {
        self.reader.get_mut().write_all(raw)
    }

    /// Closes the writing half (the server sees end of input).
    pub fn shutdown_write(&self) -> std::io::Result<()> {
        self.stream().shutdown(Shutdown::Write)
    }

    /// Reads one response; `head` says it answers a HEAD request (no body).
    pub fn read_response(&mut self, head: bool) -> std::io::Result<Response> {
        read_response(&mut self.reader, head)
    }
}

/// Sends `raw` (a whole request) to 127.0.0.1:`port` and reads one response (a HEAD
/// request's without a body), with [`DEFAULT_TIMEOUT`] as read and write timeouts.
pub fn try_request(port: u16, raw: &[u8]) -> std::io::Result<Response> {
    let mut conn = HttpConn::connect(port)?;
    conn.send(raw)?;
    conn.read_response(raw.starts_with(b"HEAD "))
}

/// `method path` with `headers`, `body` and its `Content-Length` (always, 0 included), as
/// bytes: `Host: 127.0.0.1:PORT` and `Connection: close` are added unless `headers` name
/// them.
pub fn build_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !has("host") {
        head.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    if !has("connection") {
        head.push_str("Connection: close\r\n");
    }
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// Sends the request of [`build_request`] to 127.0.0.1:`port` on a new connection and reads
/// its response; `timeout` bounds the connect and each read and write.
pub fn send(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<Response> {
    let mut conn = HttpConn::connect_timeout(port, timeout)?;
    conn.send(&build_request(port, method, path, headers, body))?;
    conn.read_response(method == "HEAD")
}

fn bad(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

/// One line without its CRLF; an error at end of input.
fn read_line(r: &mut impl BufRead) -> std::io::Result<String> {
    let mut buf = Vec::new();
    if r.read_until(b'\n', &mut buf)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed before a full response",
        ));
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| bad("response head is not UTF-8"))
}

/// Reads a response: status line, headers, then a body by `Transfer-Encoding: chunked`,
/// `Content-Length` or the end of the connection. 1xx responses are skipped.
fn read_response(r: &mut impl BufRead, head: bool) -> std::io::Result<Response> {
    loop {
        let status_line = read_line(r)?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if !version.starts_with("HTTP/") {
            return Err(bad(format!("not an HTTP status line: {status_line:?}")));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad status line: {status_line:?}")))?;
        let reason = parts.next().unwrap_or("").to_owned();
        let mut headers = Vec::new();
        loop {
            let line = read_line(r)?;
            if line.is_empty() {
                break;
            }
            let (n, v) = line
                .split_once(':')
                .ok_or_else(|| bad(format!("bad header line: {line:?}")))?;
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
        if (100..200).contains(&status) {
            continue;
        }
        let mut resp = Response {
            status,
            reason,
            headers,
            body: Vec::new(),
        };
        if head || status == 204 || status == 304 {
            return Ok(resp);
        }
        let chunked = resp
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        if chunked {
            resp.body = read_chunked(r)?;
        } else if let Some(len) = resp.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| bad(format!("bad Content-Length: {len:?}")))?;
            resp.body = vec![0; len];
            r.read_exact(&mut resp.body)?;
        } else {
            r.read_to_end(&mut resp.body)?;
        }
        return Ok(resp);
    }
}

/// A chunked body, trailers skipped.
fn read_chunked(r: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r)?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| bad(format!("bad chunk size: {line:?}")))?;
        if size == 0 {
            while !read_line(r)?.is_empty() {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        read_line(r)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunked_and_length_bodies() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nT: x\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabcrest";
        let mut r = BufReader::new(&raw[..]);
        let a = read_response(&mut r, false).unwrap();
        assert_eq!((a.status, a.text().as_str()), (200, "hello!"));
        assert_eq!(a.header("x-a"), Some("1"));
        let b = read_response(&mut r, false).unwrap();
        assert_eq!(
            (b.status, b.reason.as_str(), b.text().as_str()),
            (404, "Not Found", "abc")
        );
        let c = read_response(
            &mut BufReader::new(&b"HTTP/1.0 200 OK\r\n\r\nto the end"[..]),
            false,
        )
        .unwrap();
        assert_eq!(c.text(), "to the end");
    }

    #[test]
    fn cookies_and_built_requests() {
        let raw = b"HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nSet-Cookie: session_id=abc; Path=/\r\nContent-Length: 0\r\n\r\n";
        let r = read_response(&mut BufReader::new(&raw[..]), false).unwrap();
        assert_eq!(r.cookie("session_id").as_deref(), Some("abc"));
        assert_eq!(r.cookie("a").as_deref(), Some("1"));
        assert_eq!(r.cookie("b"), None);
        assert_eq!(
            build_request(8, "POST", "/p", &[("X", "y")], b"hi"),
            b"POST /p HTTP/1.1\r\nHost: 127.0.0.1:8\r\nConnection: close\r\nX: y\r\nContent-Length: 2\r\n\r\nhi"
        );
        let keep = build_request(
            8,
            "GET",
            "/",
            &[("host", "h"), ("Connection", "keep-alive")],
            b"",
        );
        assert_eq!(
            keep,
            b"GET / HTTP/1.1\r\nhost: h\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        );
    }
}
