//! Bodies past `http_body_spool`: received into an unnamed file under `<data_dir>/tmp/`,
//! handed to the handler mapped and intact (raw, chunked, multipart, JSON-RPC), the file
//! gone after and when the client leaves mid-upload; leftovers removed at start.

use crate::support::{assert_uploaded, digest, json_of, pattern, spool_dir, start, upload, MIB};
use inphms_tests::bodies::{fnv_hex, mappings_under, open_files_under, post_chunked, Upload};
use inphms_tests::{post, wait_until, HttpConn, TestDir};
use serde_json::{json, Value};
use std::time::Duration;

#[test]
fn a_large_body_reaches_its_handler_mapped_intact_and_its_spool_file_goes() {
    let td = TestDir::new();
    // A leftover of a killed process is removed at start.
    let leftover = td.write("data/tmp/.tmpKILLED", b"left behind");
    let server = start(&td, &[]);
    let (port, pid, spool) = (server.port(), server.pid(), spool_dir(&td));
    assert!(
        !leftover.exists(),
        "{} was not removed at start",
        leftover.display()
    );

    // Past the spool threshold (1 MiB by default): a mapping of a file in data/tmp/.
    let big = pattern(5 * MIB as usize + 3);
    let resp = digest(port, &big);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let got = json_of(&resp);
    assert_eq!(got["len"], json!(big.len()));
    assert_eq!(got["fnv"], json!(fnv_hex(&big)));
    let mapped = got["mapped"]
        .as_str()
        .unwrap_or_else(|| panic!("not mapped: {got}"));
    assert!(
        mapped.starts_with(spool.to_str().unwrap()),
        "mapped from {mapped}, not from {}",
        spool.display()
    );

    // Chunked: received in memory first, then moved to a file past the threshold.
    let chunked = post_chunked(
        port,
        "/test_http/body_digest",
        &[],
        &Upload::filled(b'z', 3 * MIB + 1),
    )
    .expect("chunked upload");
    assert_eq!(chunked.status, 200, "{}", chunked.text());
    let got = json_of(&chunked);
    assert_eq!(got["len"], json!(3 * MIB + 1));
    assert_eq!(
        got["fnv"],
        json!(fnv_hex(&vec![b'z'; (3 * MIB + 1) as usize]))
    );
    assert!(
        got["mapped"]
            .as_str()
            .is_some_and(|m| m.starts_with(spool.to_str().unwrap())),
        "{got}"
    );

    // Under the threshold: memory, no file.
    let small = pattern(1000);
    let got = json_of(&digest(port, &small));
    assert_eq!(
        (got["len"].clone(), got["fnv"].clone()),
        (json!(1000), json!(fnv_hex(&small)))
    );
    assert_eq!(got["mapped"], Value::Null, "{got}");

    // The parsers read the mapped slice as they read memory: multipart and JSON-RPC.
    let text = "m".repeat(2 * MIB as usize);
    let boundary = "XyZ";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"big.txt\"\r\nContent-Type: text/plain\r\n\r\n{text}\r\n--{boundary}--\r\n"
    );
    let resp = upload(
        port,
        &format!("multipart/form-data; boundary={boundary}"),
        multipart.as_bytes(),
    );
    assert_uploaded(&resp, "big.txt", &text, &[["note", "hello"]]);
    let rpc = json!({"jsonrpc": "2.0", "method": "call", "id": 7, "params": {"text": text}});
    let resp = post(
        port,
        "/test_http/json_echo",
        "application/json",
        rpc.to_string().as_bytes(),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let got = json_of(&resp);
    assert_eq!(got["id"], json!(7));
    assert!(
        got["result"]["text"].as_str() == Some(text.as_str()),
        "the param came back changed"
    );

    // A client gone mid-upload: its spool file (open while the body arrives) goes too.
    let mut conn = HttpConn::connect(port).expect("connect");
    conn.send(
        format!(
            "POST /test_http/body_digest HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            4 * MIB
        )
        .as_bytes(),
    )
    .expect("send the head");
    conn.send(&pattern(2 * MIB as usize))
        .expect("send half the body");
    assert!(
        wait_until(Duration::from_secs(10), || !open_files_under(pid, &spool)
            .is_empty()),
        "no spool file while the body arrives"
    );
    drop(conn);

    // Nothing is left once the requests ended: no file, no descriptor, no mapping.
    let left = |_: ()| {
        (
            std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0),
            open_files_under(pid, &spool),
            mappings_under(pid, &spool),
        )
    };
    // The answer is written before the request's last values are dropped: a moment.
    let clean = wait_until(Duration::from_secs(5), || {
        let (files, fds, maps) = left(());
        files == 0 && fds.is_empty() && maps.is_empty()
    });
    assert!(clean, "spool files left: {:?}", left(()));
}
