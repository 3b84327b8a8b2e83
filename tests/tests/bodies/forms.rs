//! Form fields bounded as Odoo's `max_form_memory_size` (10 MiB of fields, their names
//! included; files not counted) and werkzeug's `max_form_parts` (1000 parts, counted before
//! anything is parsed), in urlencoded and multipart bodies.

use crate::support::{assert_uploaded, json_of, start, upload, MIB};
use inphms_tests::TestDir;
use serde_json::json;
use std::time::{Duration, Instant};

const URLENCODED: &str = "application/x-www-form-urlencoded";
const MULTIPART: &str = "multipart/form-data; boundary=XyZ";

/// One multipart part (boundary `XyZ`): a field, or a file when `filename` is given.
fn part(name: &str, filename: Option<&str>, data: &str) -> String {
    let filename = filename.map_or(String::new(), |f| format!("; filename=\"{f}\""));
    format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"{filename}\r\n\r\n{data}\r\n")
}

/// `n` urlencoded pairs `k<i>=v`.
fn pairs(n: usize) -> String {
    (0..n)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A multipart body of `n` one-byte fields named with `name_len` digits, and a file.
fn parts(n: usize, name_len: usize) -> String {
    let mut body = String::new();
    for i in 0..n {
        let name = format!("{i:0>name_len$}");
        body.push_str(&part(&name, None, "v"));
    }
    body.push_str(&part("doc", Some("a.txt"), "file"));
    body.push_str("--XyZ--\r\n");
    body
}

/// 800 files, each with a field name and a file name of 7,000 bytes (a part's headers are
/// at most 16 KiB).
fn long_named_files() -> String {
    let mut named = String::new();
    for i in 0..800 {
        let long = format!("{i:0>7000}");
        named.push_str(&part(&long, Some(&long), "f"));
    }
    named.push_str("--XyZ--\r\n");
    named
}

#[test]
fn form_fields_are_bounded_like_odoo_and_files_are_not() {
    let td = TestDir::new();
    let server = start(&td, &[]);
    let port = server.port();
    let field = "f".repeat(10 * MIB as usize + 1);
    // (what, content type, body, status, number of form fields when served)
    let cases: Vec<(&str, &str, String, u16, Option<usize>)> = vec![
        (
            "a 10 MiB + 1 urlencoded field",
            URLENCODED,
            format!("note={field}"),
            413,
            None,
        ),
        (
            "a 10 MiB + 1 multipart field",
            MULTIPART,
            format!("{}--XyZ--\r\n", part("note", None, &field)),
            413,
            None,
        ),
        (
            "1000 urlencoded pairs",
            URLENCODED,
            pairs(1000),
            200,
            Some(1000),
        ),
        ("1001 urlencoded pairs", URLENCODED, pairs(1001), 413, None),
        // A file is a part too.
        (
            "999 fields and a file",
            MULTIPART,
            parts(999, 4),
            200,
            Some(999),
        ),
        (
            "1000 fields and a file",
            MULTIPART,
            parts(1000, 4),
            413,
            None,
        ),
        // Names count in the 10 MiB of fields.
        (
            "700 fields named with 15,000 bytes",
            MULTIPART,
            parts(700, 15_000),
            413,
            None,
        ),
        (
            "800 files with long field and file names",
            MULTIPART,
            long_named_files(),
            413,
            None,
        ),
        // The same fields with short names pass: the names made the difference.
        (
            "700 fields with short names",
            MULTIPART,
            parts(700, 4),
            200,
            Some(700),
        ),
    ];
    for (what, content_type, body, status, fields) in &cases {
        let resp = upload(port, content_type, body.as_bytes());
        assert_eq!(resp.status, *status, "{what}: {}", resp.text());
        if let Some(n) = fields {
            let got = json_of(&resp);
            assert_eq!(got["form"].as_array().map(Vec::len), Some(*n), "{what}");
            if *content_type == MULTIPART {
                assert_eq!(got["files"][0]["filename"], json!("a.txt"), "{what}");
            }
        }
    }

    // A file of the size of a refused field is not a form field: served, whole.
    let file = format!(
        "{}{}--XyZ--\r\n",
        part("note", None, "short"),
        part("doc", Some("a.txt"), &field)
    );
    let resp = upload(port, MULTIPART, file.as_bytes());
    assert_uploaded(&resp, "a.txt", &field, &[["note", "short"]]);

    // Five million pairs in 10 MB (about 400 MB of pairs, were they made): 413, fast.
    let flood = "a&".repeat(5_000_000);
    let t = Instant::now();
    let resp = upload(port, URLENCODED, flood.as_bytes());
    assert_eq!(resp.status, 413, "{}", resp.text());
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}
