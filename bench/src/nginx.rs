//! nginx as a peer server (issue 23): operators put it in front of the host, so the host is
//! measured beside it. A private instance per run (`inphms_test_support::nginx`: its own
//! prefix, configuration, pid file and logs in the run's scratch folder), 2 worker
//! processes, answering every request as `/web/health` does (`200`, `{"status":"pass"}`,
//! the same content type and headers). The system's nginx service is never started,
//! stopped or read.
//!
//! The listening socket is the suite's, handed over at fd 3 (`NGINX=3;`), with a `listen`
//! directive on the same address, so nginx takes it instead of binding (no port race).

use inphms_test_support::nginx as private;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The worker processes of the peer: one per core of the 2-core machine the suite runs on.
pub const WORKERS: u32 = 2;

/// The nginx binary and its version (`nginx/1.22.1`), or why there is none.
pub fn find() -> Result<(PathBuf, String), String> {
    private::find()
}

/// The configuration of a private instance in `dir` listening on `127.0.0.1:port` (the
/// inherited socket's address). `access_log`: a line per request in `dir/access.log`
/// (nginx's `combined` format, written in 64 KiB batches flushed every second, as the
/// host's own log is written in batches); else no access log.
pub fn config(dir: &Path, port: u16, access_log: bool) -> String {
    let d = dir.display();
    let log = if access_log {
        format!("access_log {d}/access.log combined buffer=64k flush=1s;")
    } else {
        "access_log off;".to_owned()
    };
    let body = format!(
        "\x20 {log}\n\
         \x20 keepalive_requests 1000000000;\n\
         \x20 keepalive_timeout 300s;\n\
         \x20 server {{\n\
         \x20   listen 127.0.0.1:{port} backlog=1024;\n\
         \x20   location / {{\n\
         \x20     default_type application/json;\n\
         \x20     add_header Cache-Control no-store;\n\
         \x20     add_header X-Content-Type-Options nosniff;\n\
         \x20     return 200 '{{\"status\":\"pass\"}}';\n\
         \x20   }}\n\
         \x20 }}\n"
    );
    private::config(dir, WORKERS, &body)
}

/// Writes the configuration into `dir` and returns the command that runs the instance in
/// the foreground (`daemon off`), its errors on stderr, taking the socket at fd 3.
pub fn command(bin: &Path, dir: &Path, port: u16, access_log: bool) -> Result<Command, String> {
    private::command(bin, dir, &config(dir, port, access_log))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_answers_as_web_health_on_the_inherited_address() {
        let c = config(Path::new("/tmp/x"), 4242, false);
        assert!(c.contains("listen 127.0.0.1:4242 backlog=1024;"), "{c}");
        assert!(c.contains("return 200 '{\"status\":\"pass\"}';"), "{c}");
        assert!(c.contains("worker_processes 2;"), "{c}");
        assert!(c.contains("access_log off;"), "{c}");
        assert!(config(Path::new("/tmp/x"), 1, true).contains("/tmp/x/access.log combined"));
    }
}
