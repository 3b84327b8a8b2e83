//! Small process-level helpers: whether the tests run as root and waiting for a condition
//! (the shared [`inphms_test_support::process`]), whether a connection was accepted, and
//! sending a signal to a process (panicking on failure).

pub use inphms_test_support::process::{is_root, wait_until};

/// Whether the server end of `stream` (a connection to 127.0.0.1) was accepted: the kernel
/// lists the connection in `/proc/net/tcp` from the handshake on, with an inode only once
/// the server's `accept` gave it a descriptor. For a test that needs a connection accepted
/// but silent (a connection alone proves only that it waits in the listen backlog).
pub fn is_accepted(stream: &std::net::TcpStream) -> bool {
    let (Ok(local), Ok(peer)) = (stream.local_addr(), stream.peer_addr()) else {
        return false;
    };
    // The server end: local = the server's port, remote = ours (hex, as the kernel prints).
    let server_end = format!("0100007F:{:04X}", peer.port());
    let client_end = format!("0100007F:{:04X}", local.port());
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .any(|f| f.len() > 9 && f[1] == server_end && f[2] == client_end && f[9] != "0")
}

/// Sends the signal `sig` (`"TERM"`, `"INT"`, `"HUP"`, `"KILL"`...) to the process `pid`;
/// panics when `kill` fails ([`inphms_test_support::process::signal`]).
pub fn send_signal(pid: u32, sig: &str) {
    if let Err(e) = inphms_test_support::process::signal(pid, sig) {
        panic!("{e}");
    }
}

#[cfg(test)]
mod tests {
    use super::is_accepted;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn a_connection_is_accepted_only_once_the_server_accepts_it() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert!(!is_accepted(&client), "still in the listen backlog");
        let (_server_end, _) = listener.accept().unwrap();
        assert!(is_accepted(&client));
    }
}
