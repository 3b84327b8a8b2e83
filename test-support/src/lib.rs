//! # inphms-test-support: what the integration tests and the benchmarks share
//!
//! The harness of the integration tests (`inphms-tests`) and the benchmark suite
//! (`inphms-bench`) both drive real servers over loopback. What they need alike lives here,
//! once:
//!
//! - [`http`]: a blocking HTTP/1.1 client ([`http::Response`], [`http::HttpConn`] for
//!   keep-alive, [`http::try_request`] for raw bytes, [`http::send`] for a one-shot request
//!   with its timeout);
//! - [`listen`]: a loopback socket handed to a server's process (socket activation), so
//!   that no test and no benchmark races for a port;
//! - [`process`]: signals, waiting for a condition or a log line, a command run within a
//!   time limit;
//! - [`fs`]: copying a folder;
//! - [`nginx`]: a private nginx instance (the benchmarks' peer; the multi-host tests' load
//!   balancer);
//! - [`pg`]: the shared PostgreSQL at `127.0.0.1:5432` through `psql`, and a test's
//!   databases; [`pg_instance`]: a private PostgreSQL a test may stop and restart.
//!
//! The helpers return `Result`s (or plain answers); the test harness wraps the few its tests
//! want panicking. This crate must not depend on the host (`inphms-host`, the SDK, the
//! addons) nor on the harness: it is what lets the benchmarks do without the test harness.

pub mod fs;
pub mod http;
pub mod listen;
pub mod nginx;
pub mod pg;
pub mod pg_instance;
pub mod process;

#[cfg(test)]
mod tests {
    /// The crate's rule: nothing of the host (nor of the harness) among its dependencies.
    #[test]
    fn depends_on_nothing_of_the_host() {
        let manifest = include_str!("../Cargo.toml");
        let deps = manifest
            .split("[dependencies]")
            .nth(1)
            .expect("a [dependencies] table");
        let ours: Vec<&str> = deps
            .lines()
            .take_while(|l| !l.starts_with('['))
            .filter(|l| l.trim_start().starts_with("inphms") || l.contains("path ="))
            .collect();
        assert!(ours.is_empty(), "test-support must not depend on {ours:?}");
    }
}
