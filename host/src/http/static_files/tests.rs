//! Tests of the static files: lookup, traversal refusals, conditional and range
//! requests, streaming, and a file changed under a lookup.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Method, StatusCode};

use super::lookup::{adler32, unix_secs};
use super::*;
use crate::http::file_body::CHUNK_SIZE;
use crate::http::response::Body;

struct Fixture {
    _tmp: tempfile::TempDir,
    roots: StaticRoots,
    outside: PathBuf,
}

/// addons/web/static/{src/app.js, img/logo.png, a b.txt, data.bin, empty.txt},
/// a secret next to the addons, symlinks in and out.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let web = tmp.path().join("addons/web/static");
    fs::create_dir_all(web.join("src")).unwrap();
    fs::create_dir_all(web.join("img")).unwrap();
    fs::write(web.join("src/app.js"), b"console.log(1);").unwrap();
    fs::write(web.join("img/logo.png"), b"\x89PNG....").unwrap();
    fs::write(web.join("a b.txt"), b"spaced").unwrap();
    fs::write(web.join("data.bin"), b"0123456789").unwrap();
    fs::write(web.join("empty.txt"), b"").unwrap();
    fs::write(web.join("noext"), b"?").unwrap();
    let outside = tmp.path().join("secret.txt");
    fs::write(&outside, b"secret").unwrap();
    fs::write(tmp.path().join("addons/web/__manifest__.toml"), b"x").unwrap();
    symlink(&outside, web.join("out.txt")).unwrap();
    symlink(tmp.path(), web.join("outdir")).unwrap();
    symlink(web.join("src/app.js"), web.join("inside.js")).unwrap();
    let base = tmp.path().join("addons/base/static");
    fs::create_dir_all(&base).unwrap();
    fs::write(base.join("b.css"), b"body{}").unwrap();
    let roots = StaticRoots::new([
        ("web", web.clone()),
        ("base", base),
        ("ghost", tmp.path().join("addons/ghost/static")),
    ]);
    Fixture {
        _tmp: tmp,
        roots,
        outside,
    }
}

fn found(roots: &StaticRoots, path: &str) -> StaticFile {
    match roots.lookup(path) {
        StaticLookup::Found(f) => f,
        StaticLookup::NotStatic => panic!("{path} not found"),
    }
}

fn not_static(roots: &StaticRoots, path: &str) -> bool {
    matches!(roots.lookup(path), StaticLookup::NotStatic)
}

/// A response with its body read whole.
struct Got {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    /// Whether the body was streamed from the file.
    streamed: bool,
}

fn collect(r: StaticResponse) -> Got {
    use http_body_util::BodyExt;
    let streamed = matches!(r.body, Body::File(_));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let body = rt.block_on(r.body.collect()).unwrap().to_bytes().to_vec();
    Got {
        status: r.status,
        headers: r.headers,
        body,
        streamed,
    }
}

fn get(file: &StaticFile, headers: &[(&'static str, &str)]) -> Got {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(*k, HeaderValue::from_str(v).unwrap());
    }
    collect(file.respond(&Method::GET, &map))
}

fn h<'a>(r: &'a Got, name: &str) -> &'a str {
    r.headers.get(name).unwrap().to_str().unwrap()
}

#[test]
fn roots_skip_missing_folders() {
    let f = fixture();
    assert_eq!(f.roots.len(), 2);
    assert!(!f.roots.is_empty());
    assert!(f.roots.root("ghost").is_none());
    assert!(f.roots.root("web").unwrap().is_absolute());
}

#[test]
fn finds_files() {
    let f = fixture();
    let file = found(&f.roots, "/web/static/src/app.js");
    assert_eq!(file.size(), 15);
    assert!(file.path().ends_with("web/static/src/app.js"));
    assert_eq!(
        found(&f.roots, "/web/static/a%20b.txt").size(),
        6,
        "segments are percent-decoded"
    );
    found(&f.roots, "/w%65b/st%61tic/src/app%2Ejs");
    found(&f.roots, "/base/static/b.css");
    // A symlink that stays inside is followed; so is a detour that resolves inside.
    found(&f.roots, "/web/static/outdir/addons/web/static/src/app.js");
    assert_eq!(
        found(&f.roots, "/web/static/inside.js").path(),
        found(&f.roots, "/web/static/src/app.js").path()
    );
}

#[test]
fn not_static_shapes_fall_through() {
    let f = fixture();
    for path in [
        "",
        "web/static/src/app.js",
        "/",
        "/web",
        "/web/static",
        "/web/static/",
        "/web/src/app.js",
        "/web/statics/src/app.js",
        "/unknown/static/x.js",
        "/ghost/static/x.js",
        "/web/static/missing.js",
        "/web/static/src",
        "/web/static/src/",
    ] {
        assert!(not_static(&f.roots, path), "{path}");
    }
}

#[test]
fn traversal_attempts_are_refused() {
    let f = fixture();
    for path in [
        "/web/static/../__manifest__.toml",
        "/web/static/src/../../__manifest__.toml",
        "/web/static/%2e%2e/__manifest__.toml",
        "/web/static/%2E%2E/__manifest__.toml",
        "/web/static/src/%2e%2e/app.js",
        "/web/static/./src/app.js",
        "/web/static/%2e/src/app.js",
        "/web/static/src%2fapp.js",
        "/web/static/src%2Fapp.js",
        "/web/static/..%2f__manifest__.toml",
        "/web/static/src%5capp.js",
        "/web/static/src\\app.js",
        "/web/static/app.js%00",
        "/web/static//etc/passwd",
        "/web/static/%2fetc%2fpasswd",
        "/web/static/src//app.js",
        "/web/static/%ff.js",
        "/web%2fstatic/src/app.js",
        "/web/static/out.txt",
        "/web/static/outdir/secret.txt",
    ] {
        assert!(not_static(&f.roots, path), "{path}");
    }
    assert!(f.outside.exists());
}

#[test]
fn full_response_headers() {
    let f = fixture();
    let file = found(&f.roots, "/web/static/src/app.js");
    let r = get(&file, &[]);
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], b"console.log(1);");
    let ct = h(&r, "content-type");
    assert!(
        ct.contains("javascript") && ct.ends_with("; charset=utf-8"),
        "{ct}"
    );
    assert_eq!(h(&r, "content-length"), "15");
    assert_eq!(h(&r, "cache-control"), "public, max-age=604800");
    assert_eq!(h(&r, "x-content-type-options"), "nosniff");
    assert_eq!(h(&r, "accept-ranges"), "bytes");
    assert!(r.headers.get("content-security-policy").is_none());
    httpdate::parse_http_date(h(&r, "expires")).unwrap();

    let meta = fs::metadata(file.path()).unwrap();
    let mtime = meta.modified().unwrap();
    assert_eq!(h(&r, "last-modified"), httpdate::fmt_http_date(mtime));
    let expected = format!(
        "\"{}-15-{}\"",
        unix_secs(mtime),
        adler32(file.path().as_os_str().as_encoded_bytes())
    );
    assert_eq!(h(&r, "etag"), expected);
    assert_eq!(file.etag(), expected);
}

#[test]
fn content_types() {
    let f = fixture();
    let png = get(&found(&f.roots, "/web/static/img/logo.png"), &[]);
    assert_eq!(h(&png, "content-type"), "image/png");
    assert_eq!(h(&png, "content-security-policy"), "default-src 'none'");
    let css = found(&f.roots, "/base/static/b.css");
    assert_eq!(css.content_type(), "text/css; charset=utf-8");
    let txt = found(&f.roots, "/web/static/a%20b.txt");
    assert_eq!(txt.content_type(), "text/plain; charset=utf-8");
    let other = found(&f.roots, "/web/static/noext");
    assert_eq!(other.content_type(), "application/octet-stream");
}

#[test]
fn conditional_requests() {
    let f = fixture();
    let file = found(&f.roots, "/web/static/src/app.js");
    let etag = file.etag().to_owned();
    let lm = httpdate::fmt_http_date(fs::metadata(file.path()).unwrap().modified().unwrap());

    let r = get(&file, &[("if-none-match", &etag)]);
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert!(r.body.is_empty());
    assert_eq!(h(&r, "etag"), etag);
    assert_eq!(h(&r, "x-content-type-options"), "nosniff");
    assert!(r.headers.get("content-length").is_none());

    let list = format!("\"nope\", W/{etag}");
    assert_eq!(
        get(&file, &[("if-none-match", &list)]).status,
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        get(&file, &[("if-none-match", "*")]).status,
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        get(&file, &[("if-none-match", "\"other\"")]).status,
        StatusCode::OK
    );

    assert_eq!(
        get(&file, &[("if-modified-since", &lm)]).status,
        StatusCode::NOT_MODIFIED
    );
    let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
    assert_eq!(
        get(&file, &[("if-modified-since", &later)]).status,
        StatusCode::NOT_MODIFIED
    );
    let earlier = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(1000));
    assert_eq!(
        get(&file, &[("if-modified-since", &earlier)]).status,
        StatusCode::OK
    );
    assert_eq!(
        get(&file, &[("if-modified-since", "garbage")]).status,
        StatusCode::OK
    );
    // If-None-Match wins over If-Modified-Since.
    let r = get(
        &file,
        &[("if-none-match", "\"other\""), ("if-modified-since", &lm)],
    );
    assert_eq!(r.status, StatusCode::OK);
    // HEAD revalidates too.
    let mut map = HeaderMap::new();
    map.insert("if-none-match", HeaderValue::from_str(&etag).unwrap());
    assert_eq!(
        file.respond(&Method::HEAD, &map).status,
        StatusCode::NOT_MODIFIED
    );
}

#[test]
fn ranges() {
    let f = fixture();
    let file = found(&f.roots, "/web/static/data.bin");
    let r = get(&file, &[("range", "bytes=2-5")]);
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&r.body[..], b"2345");
    assert_eq!(h(&r, "content-range"), "bytes 2-5/10");
    assert_eq!(h(&r, "content-length"), "4");

    let r = get(&file, &[("range", "bytes=7-")]);
    assert_eq!(
        (&r.body[..], h(&r, "content-range")),
        (&b"789"[..], "bytes 7-9/10")
    );
    let r = get(&file, &[("range", "bytes=-3")]);
    assert_eq!(
        (&r.body[..], h(&r, "content-range")),
        (&b"789"[..], "bytes 7-9/10")
    );
    let r = get(&file, &[("range", "bytes=-50")]);
    assert_eq!(
        (&r.body[..], h(&r, "content-range")),
        (&b"0123456789"[..], "bytes 0-9/10")
    );
    let r = get(&file, &[("range", "bytes=8-100")]);
    assert_eq!(
        (&r.body[..], h(&r, "content-range")),
        (&b"89"[..], "bytes 8-9/10")
    );

    for unsatisfiable in ["bytes=10-", "bytes=10-20", "bytes=-0"] {
        let r = get(&file, &[("range", unsatisfiable)]);
        assert_eq!(
            r.status,
            StatusCode::RANGE_NOT_SATISFIABLE,
            "{unsatisfiable}"
        );
        assert_eq!(h(&r, "content-range"), "bytes */10");
        assert!(r.body.is_empty());
    }
    for ignored in [
        "bytes=0-1,4-5",
        "bytes=5-2",
        "items=0-1",
        "bytes=a-b",
        "bytes=-",
        "bytes",
    ] {
        let r = get(&file, &[("range", ignored)]);
        assert_eq!(r.status, StatusCode::OK, "{ignored}");
        assert_eq!(r.body.len(), 10);
    }
    // An empty file has no satisfiable range.
    let empty = found(&f.roots, "/web/static/empty.txt");
    assert_eq!(
        get(&empty, &[("range", "bytes=0-")]).status,
        StatusCode::RANGE_NOT_SATISFIABLE
    );
    assert_eq!(get(&empty, &[]).status, StatusCode::OK);

    // If-Range: the current validator honours the range, a stale one does not.
    let etag = file.etag().to_owned();
    let r = get(&file, &[("range", "bytes=0-0"), ("if-range", &etag)]);
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    let r = get(&file, &[("range", "bytes=0-0"), ("if-range", "\"stale\"")]);
    assert_eq!(r.status, StatusCode::OK);
    let lm = h(&r, "last-modified").to_owned();
    let r = get(&file, &[("range", "bytes=0-0"), ("if-range", &lm)]);
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    let old = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH);
    assert_eq!(
        get(&file, &[("range", "bytes=0-0"), ("if-range", &old)]).status,
        StatusCode::OK
    );
}

#[test]
fn head_and_other_methods() {
    let f = fixture();
    let file = found(&f.roots, "/web/static/data.bin");
    let mut ranged = HeaderMap::new();
    ranged.insert("range", HeaderValue::from_static("bytes=0-1"));
    let r = collect(file.respond(&Method::HEAD, &ranged));
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());
    assert_eq!(h(&r, "content-length"), "10");
    assert!(r.headers.get("etag").is_some());

    let r = collect(file.respond(&Method::POST, &HeaderMap::new()));
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(h(&r, "allow"), "GET, HEAD");
}

#[test]
fn a_file_removed_after_lookup_is_sent_as_it_was_and_one_cut_short_is_a_404() {
    let f = fixture();
    let file = found(&f.roots, "/web/static/data.bin");
    fs::remove_file(file.path()).unwrap();
    assert!(not_static(&f.roots, "/web/static/data.bin"));
    // Opened at lookup: the removal changes nothing for this response.
    let r = get(&file, &[]);
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], b"0123456789");

    let file = found(&f.roots, "/web/static/src/app.js");
    fs::OpenOptions::new()
        .write(true)
        .open(file.path())
        .and_then(|f| f.set_len(3))
        .unwrap();
    let r = get(&file, &[]);
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.is_empty() && r.headers.get("etag").is_none());
}

/// The `ETag`'s size field (`"<mtime>-<size>-<adler32>"`).
fn etag_size(r: &Got) -> u64 {
    h(r, "etag").split('-').nth(1).unwrap().parse().unwrap()
}

/// A deploy renames a new, longer file over a static file between its lookup and its
/// response: the response is the file looked up, whole, with its own length and ETag
/// (before the fix: the new file cut to the old length, under the old ETag).
#[test]
fn a_file_renamed_over_after_lookup_sends_the_bytes_its_headers_describe() {
    let tmp = tempfile::tempdir().unwrap();
    let old_small = b"old body".to_vec();
    let new_small = b"the new, longer body".to_vec();
    let old_big: Vec<u8> = (0..CHUNK_SIZE + 10).map(|i| (i % 251) as u8).collect();
    let new_big: Vec<u8> = (0..CHUNK_SIZE * 2).map(|i| (i % 241) as u8).collect();
    fs::write(tmp.path().join("small.js"), &old_small).unwrap();
    fs::write(tmp.path().join("big.bin"), &old_big).unwrap();
    let roots = StaticRoots::new([("x", tmp.path())]);
    for (name, old, new) in [
        ("small.js", &old_small, &new_small),
        ("big.bin", &old_big, &new_big),
    ] {
        let file = found(&roots, &format!("/x/static/{name}"));
        let aside = tmp.path().join(format!(".{name}.new"));
        fs::write(&aside, new).unwrap();
        fs::rename(&aside, tmp.path().join(name)).unwrap();
        let r = get(&file, &[]);
        assert_eq!(r.status, StatusCode::OK, "{name}");
        assert!(&r.body == old, "{name}: the body is the file looked up");
        assert_eq!(h(&r, "content-length"), r.body.len().to_string(), "{name}");
        assert_eq!(etag_size(&r), r.body.len() as u64, "{name}");
        let r = get(&file, &[("range", "bytes=2-")]);
        assert!(r.body == old[2..], "{name}: a range of the file looked up");
        // The next lookup finds the new file, its headers and body agreeing too.
        let r = get(&found(&roots, &format!("/x/static/{name}")), &[]);
        assert!(&r.body == new, "{name}");
        assert_eq!(etag_size(&r), new.len() as u64, "{name}");
        assert_eq!(h(&r, "content-length"), new.len().to_string(), "{name}");
    }
}

#[test]
fn a_fifo_is_not_static_and_does_not_block() {
    let f = fixture();
    let fifo = f.roots.root("web").unwrap().join("pipe.js");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert!(not_static(&f.roots, "/web/static/pipe.js"));
}

#[test]
fn large_files_and_ranges_are_streamed() {
    let tmp = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..CHUNK_SIZE * 2 + 3).map(|i| (i % 253) as u8).collect();
    fs::write(tmp.path().join("big.bin"), &data).unwrap();
    let exact = vec![1u8; CHUNK_SIZE];
    fs::write(tmp.path().join("exact.bin"), &exact).unwrap();
    // Past the former 64 MiB cap (sparse: no disk used): found, streamed.
    let huge = fs::File::create(tmp.path().join("huge.bin")).unwrap();
    huge.set_len(65 * 1024 * 1024).unwrap();
    let roots = StaticRoots::new([("x", tmp.path())]);

    let file = found(&roots, "/x/static/big.bin");
    let r = get(&file, &[]);
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.streamed);
    assert_eq!(h(&r, "content-length"), data.len().to_string());
    assert_eq!(r.body, data);

    let r = get(&file, &[("range", "bytes=10-")]);
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert!(r.streamed);
    assert_eq!(h(&r, "content-length"), (data.len() - 10).to_string());
    assert_eq!(r.body, &data[10..]);
    // A range that fits one chunk is read at once.
    let r = get(&file, &[("range", "bytes=100-199")]);
    assert!(!r.streamed);
    assert_eq!(r.body, &data[100..200]);

    let r = get(&found(&roots, "/x/static/exact.bin"), &[]);
    assert!(!r.streamed, "a file of one chunk is read at once");
    assert_eq!(r.body, exact);

    let huge = found(&roots, "/x/static/huge.bin");
    let r = huge.respond(&Method::GET, &HeaderMap::new());
    assert!(matches!(r.body, Body::File(_)));
    assert_eq!(
        hyper::body::Body::size_hint(&r.body).exact(),
        Some(65 * 1024 * 1024)
    );
}

#[test]
fn open_errors_are_their_status() {
    let f = fixture();
    let file = found(&f.roots, "/web/static/data.bin");
    for (kind, status) in [
        (io::ErrorKind::NotFound, StatusCode::NOT_FOUND),
        (io::ErrorKind::UnexpectedEof, StatusCode::NOT_FOUND),
        (io::ErrorKind::PermissionDenied, StatusCode::FORBIDDEN),
        (
            io::ErrorKind::OutOfMemory,
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        (io::ErrorKind::Other, StatusCode::INTERNAL_SERVER_ERROR),
    ] {
        let r = collect(file.unreadable(&io::Error::from(kind)));
        assert_eq!(r.status, status, "{kind:?}");
        assert!(r.headers.get("etag").is_none());
    }
}

#[test]
fn adler32_matches_zlib() {
    assert_eq!(adler32(b""), 1);
    assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    // Long input crosses the 5552-byte chunking (zlib.adler32(b"a" * 100000)).
    assert_eq!(adler32(&[b'a'; 100_000]), 0x7966_0B4D);
    assert_eq!(adler32(&[b'a'; 100_000]), adler32_naive(&[b'a'; 100_000]));
}

fn adler32_naive(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u64, 0u64);
    for &x in data {
        a = (a + u64::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    ((b << 16) | a) as u32
}
