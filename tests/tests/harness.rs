//! The harness itself, through the real binary: a server started by [`TestDir::server`] is
//! handed the listening socket the harness bound (socket activation, so no test can lose its
//! port to another), serves on it, and once it exits nothing holds the port any more.

use inphms_tests::{http_get, wait_until, TestDir};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn a_server_serves_on_the_socket_the_harness_hands_over() {
    let td = TestDir::new();
    let addons = td.dummy_addons();
    let builder = td.server(["--addons-path", addons.to_str().unwrap()]);
    let port = builder.port();
    let mut server = builder.start();
    assert_eq!(server.port(), port);
    assert_eq!(http_get(port, "/web/health", &[]).status, 200);
    let log = server.stderr();
    assert!(
        log.contains("HTTP service (hyper) running through socket activation"),
        "{log}"
    );
    assert!(
        server.stop(Duration::from_secs(20)).is_some(),
        "{}",
        server.stderr()
    );
    assert!(
        wait_until(Duration::from_secs(5), || TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_err()),
        "the port still accepts connections after the server exited"
    );
}
