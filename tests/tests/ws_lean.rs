//! An idle websocket's lean state (issue 17): tungstenite reads through a 512-byte buffer
//! with the socket read in larger chunks and the rest spilled until taken, and the queues
//! between the connection task and the callbacks are empty until used. Through the real
//! binary and `test_http`'s event echoes (callbacks on the blocking pool, and inline):
//! frames of every size sent together come back whole and in order; an idle socket
//! answers a ping, echoes, and gets a message sent from another request at once.

use inphms_tests::ws::{ws_next, ws_open_greeted, ws_text as text};
use inphms_tests::{http_get, Server, TestDir};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

const PATHS: [&str; 2] = ["/test_http/ws_events", "/test_http/ws_events_inline"];

fn start() -> (TestDir, Server) {
    let td = TestDir::new();
    let server = td.test_http_server(&[]).start_healthy();
    (td, server)
}

/// Opens an event socket and reads its greeting; the socket's id.
fn open(port: u16, path: &str) -> (WebSocket<TcpStream>, u64) {
    ws_open_greeted(port, path, None)
}

#[test]
fn frames_sent_together_come_back_whole_and_in_order_whatever_their_sizes() {
    let (_td, server) = start();
    let port = server.port();
    for path in PATHS {
        let (mut ws, _) = open(port, path);
        // Smaller than tungstenite's buffer, larger, larger than a chunk of the socket,
        // and a tiny one after: one write, so they arrive in as few reads as the kernel
        // makes, frames split across the chunks.
        let messages: Vec<String> = [3usize, 700, 20_000, 9_000, 1]
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let c = char::from(b'a' + i as u8);
                std::iter::repeat_n(c, n).collect()
            })
            .collect();
        for m in &messages {
            ws.write(Message::text(m.clone())).unwrap();
        }
        ws.flush().unwrap();
        for (i, m) in messages.iter().enumerate() {
            let got = text(&mut ws);
            assert!(
                got == *m,
                "{path}: message {i}: {} bytes back, {} sent",
                got.len(),
                m.len()
            );
        }
        // Binary too, past the chunk, after the socket went quiet.
        let blob: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
        ws.send(Message::binary(blob.clone())).unwrap();
        assert_eq!(ws_next(&mut ws), Message::binary(blob), "{path}");
    }
    drop(server);
}

#[test]
fn an_idle_socket_answers_a_ping_echoes_and_gets_a_send_from_another_request_at_once() {
    let (_td, server) = start();
    let port = server.port();
    for path in PATHS {
        let (mut ws, id) = open(port, path);
        // Idle from here: the greeting taken, the socket's queues are empty and freed
        // (`websocket::link`), its read's spill taken (`websocket::spill`).
        ws.send(Message::Ping(b"still there".to_vec().into()))
            .unwrap();
        loop {
            match ws.read().unwrap() {
                Message::Pong(p) => {
                    assert_eq!(&p[..], b"still there", "{path}");
                    break;
                }
                Message::Ping(_) => continue,
                other => panic!("{path}: expected the pong, got {other:?}"),
            }
        }
        let started = Instant::now();
        let r = http_get(port, &format!("/test_http/ws_send/{id}?text=pushed"), &[]);
        assert_eq!((r.status, r.text()), (200, "sent".to_owned()), "{path}");
        assert_eq!(text(&mut ws), "pushed", "{path}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{path}: the push took {:?}",
            started.elapsed()
        );
        ws.send(Message::text("echo")).unwrap();
        assert_eq!(text(&mut ws), "echo", "{path}");
    }
    drop(server);
}
