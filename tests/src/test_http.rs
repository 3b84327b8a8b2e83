//! The server most HTTP tests start: `inphms-host server` with `base,web,test_http` loaded
//! from the test addons folder and its data folder in the test's [`TestDir`]
//! ([`TestDir::test_http_server`]), and a start that waits until `/web/health` answers 200
//! ([`ServerBuilder::start_healthy`]).

use crate::dir::TestDir;
use crate::http::try_request;
use crate::paths::test_addons_dir;
use crate::server::{Server, ServerBuilder};
use crate::sys::wait_until;
use std::time::Duration;

/// How long [`ServerBuilder::start_healthy`] waits for a 200 on `/web/health`.
pub const HEALTHY_TIMEOUT: Duration = Duration::from_secs(60);

impl TestDir {
    /// `inphms-host server --load base,web,test_http -D <dir>/data ARGS --addons-path
    /// <tests/addons>`: the test addons folder comes last (the `--addons-path` occurrences
    /// add up), so that a folder given in `args` is searched first.
    pub fn test_http_server(&self, args: &[&str]) -> ServerBuilder {
        let data = self.join("data");
        let tests = test_addons_dir();
        let mut all = vec![
            "--load",
            "base,web,test_http",
            "-D",
            data.to_str().expect("a UTF-8 temporary path"),
        ];
        all.extend_from_slice(args);
        all.extend(["--addons-path", tests.to_str().expect("a UTF-8 tests path")]);
        self.server(all)
    }
}

impl ServerBuilder {
    /// [`ServerBuilder::start`], then waits (at most [`HEALTHY_TIMEOUT`]) until `GET
    /// /web/health` answers 200: the start waits for any answer, and a server still loading
    /// its addons may answer another status first. Panics, with the server's stderr, if it
    /// does not.
    pub fn start_healthy(self) -> Server {
        let server = self.start();
        let port = server.port();
        let healthy = wait_until(HEALTHY_TIMEOUT, || {
            try_request(
                port,
                b"GET /web/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .is_ok_and(|r| r.status == 200)
        });
        assert!(
            healthy,
            "the server never answered 200 on /web/health\n{}",
            server.stderr()
        );
        server
    }
}
