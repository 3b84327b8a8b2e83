//! # inphms-tests: the harness of the integration tests
//!
//! Integration tests run the real `inphms-host` binary. This crate gives them:
//!
//! - [`host_bin`]: the binary under test (`$INPHMS_HOST_BIN`, else `target/<profile>/inphms-host`
//!   beside the test executable; it must be built first: `cargo build -p inphms-host`, which
//!   `cargo xtask test` does).
//! - [`TestDir`]: a temporary folder (removed on drop) with helpers to write files, config
//!   files and addons folders. Its `home/` is the `HOME` of the commands it runs.
//! - [`Cmd`] and [`run`]: a one-shot command with a clean environment and a timeout, giving an
//!   [`Output`].
//! - [`Server`]: `inphms-host server` on a loopback socket the harness binds and hands over
//!   (socket activation: no port race between parallel tests), its stdout and stderr
//!   captured to files, waited for until it answers HTTP, killed on drop.
//! - [`http_get`], [`request`], [`send`], [`post`], [`rpc`] and [`HttpConn`]: the blocking
//!   HTTP/1.1 client shared with the benchmarks (`inphms-test-support`), giving a
//!   [`Response`].
//! - [`TestDir::test_http_server`] and [`ServerBuilder::start_healthy`] ([`test_http`]): the
//!   server with `base,web,test_http` that most HTTP tests start, healthy.
//! - [`pg`] and [`pg_instance`]: PostgreSQL, the shared server and a private one (from
//!   `inphms-test-support`).
//!
//! Commands get a clean environment: `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
//! `PGDATABASE`, `INPHMS_RC` and `XDG_DATA_HOME` are removed and `HOME` is a temporary folder,
//! so that nothing of the machine running the tests leaks in. Set what a test needs with
//! [`Cmd::env`] / [`ServerBuilder::env`].
//!
//! ```no_run
//! use inphms_tests::{TestDir, http_get};
//! let td = TestDir::new();
//! let addons = td.dummy_addons();
//! let out = td.cmd(["server", "--stop-after-init", &format!("--addons-path={}", addons.display())]).run();
//! assert_eq!(out.code, Some(0), "{out}");
//! let server = td.server(["--addons-path", addons.to_str().unwrap()]).start();
//! let resp = http_get(server.port(), "/", &[]);
//! assert_eq!(resp.status, 404);
//! ```
//!
//! The harness is split by job: [`paths`] (where the repository, binary and libraries are),
//! [`sys`] (root check, [`wait_until`], signals), [`dir`] ([`TestDir`]), [`cmd`] ([`Cmd`],
//! [`Output`]), [`server`] ([`ServerBuilder`], [`Server`]), [`http`] (the HTTP/1.1 client),
//! [`ws`] (the websocket client), [`cron`] (what the cron tests share) and [`cluster`]
//! (several hosts behind a private nginx); what the tests use is re-exported here. What does not
//! depend on the host binary (the HTTP client, process, file and PostgreSQL helpers) lives in
//! `inphms-test-support`, shared with the benchmarks; the modules here wrap it.

pub mod bodies;
pub mod cluster;
pub mod cmd;
pub mod cron;
pub mod dir;
pub mod fd_limit;
pub mod http;
pub mod paths;
pub mod server;
pub mod swap;
pub mod sys;
pub mod test_http;
pub mod ws;

pub use cmd::{run, Cmd, Output, CLEARED_ENV, DEFAULT_TIMEOUT};
pub use dir::TestDir;
pub use http::{
    closes, http_get, post, request, rpc, rpc_call, send, try_request, HttpConn, Response,
};
pub use inphms_test_support::{pg, pg_instance};
pub use paths::{
    built_lib, host_bin, repo_root, target_dir, test_addon_src, test_addons_dir, with_test_addons,
};
pub use server::{Server, ServerBuilder};
pub use sys::{is_accepted, is_root, send_signal, wait_until};
