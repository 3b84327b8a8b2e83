//! A small blocking HTTP/1.1 client over loopback: [`HttpConn`] (keep-alive, raw bytes),
//! [`try_request`], [`request`] and [`http_get`], reading Content-Length, chunked and
//! until-close bodies into a [`Response`].

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

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
}

/// A connection to 127.0.0.1:`port` that can carry several requests (keep-alive).
pub struct HttpConn {
    reader: BufReader<TcpStream>,
}

impl HttpConn {
    /// Connects, with 30 s read and write timeouts.
    pub fn connect(port: u16) -> std::io::Result<HttpConn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
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

/// Sends `raw` (a whole request) to 127.0.0.1:`port` and reads one response.
pub fn try_request(port: u16, raw: &[u8]) -> std::io::Result<Response> {
    let mut conn = HttpConn::connect(port)?;
    conn.send(raw)?;
    conn.read_response(raw.starts_with(b"HEAD "))
}

/// [`try_request`], panicking on an I/O error.
pub fn request(port: u16, raw: &[u8]) -> Response {
    try_request(port, raw).unwrap_or_else(|e| panic!("HTTP request to port {port}: {e}"))
}

/// `GET path` with `headers` (plus `Host` and `Connection: close`) on 127.0.0.1:`port`.
pub fn http_get(port: u16, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut raw = format!("GET {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        raw.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (n, v) in headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("connection"))
    {
        raw.push_str("Connection: close\r\n");
    }
    raw.push_str("\r\n");
    request(port, raw.as_bytes())
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
}
