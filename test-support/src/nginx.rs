//! A private nginx instance, for the benchmarks (nginx as a peer server) and the multi-host
//! tests (nginx in front of several hosts): its own prefix, configuration, pid file and
//! temporary folders in a scratch folder given by the caller, run in the foreground. The
//! system's nginx service is never started, stopped or read.
//!
//! The listening socket is the caller's, handed over as nginx hands its own over during a
//! binary upgrade: at fd 3 ([`crate::listen::socket_activated`]), named by the `NGINX`
//! variable (`NGINX=3;`), with a `listen` directive on the same address, so nginx takes it
//! instead of binding (no port race).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where nginx is looked for: on the `PATH`, else Debian's `/usr/sbin/nginx` (not on a
/// user's `PATH`). `cargo xtask bench` and `.ci/test-deps` install it when missing.
pub const CANDIDATES: [&str; 2] = ["nginx", "/usr/sbin/nginx"];

/// The nginx binary and its version (`nginx/1.22.1`), or why there is none.
pub fn find() -> Result<(PathBuf, String), String> {
    for c in CANDIDATES {
        let Ok(out) = Command::new(c).arg("-v").stdin(Stdio::null()).output() else {
            continue;
        };
        // `nginx -v` prints `nginx version: nginx/1.22.1` on stderr.
        let text = String::from_utf8_lossy(&out.stderr);
        if let Some(v) = text.trim().strip_prefix("nginx version: ") {
            return Ok((PathBuf::from(c), v.to_owned()));
        }
    }
    Err("nginx is not installed (`.ci/test-deps` and `cargo xtask bench` install nginx-light with apt-get)".into())
}

/// The top of a private instance's configuration in `dir`: in the foreground, `workers`
/// worker processes, its pid file and temporary folders in `dir`, errors on stderr, then
/// the `http` block's `body` (its servers and upstreams).
pub fn config(dir: &Path, workers: u32, http_body: &str) -> String {
    let d = dir.display();
    format!(
        "# generated: a private nginx instance\n\
         daemon off;\n\
         master_process on;\n\
         worker_processes {workers};\n\
         pid {d}/nginx.pid;\n\
         error_log stderr notice;\n\
         events {{ worker_connections 16384; }}\n\
         http {{\n\
         \x20 client_body_temp_path {d}/body;\n\
         \x20 proxy_temp_path {d}/proxy;\n\
         \x20 fastcgi_temp_path {d}/fastcgi;\n\
         \x20 uwsgi_temp_path {d}/uwsgi;\n\
         \x20 scgi_temp_path {d}/scgi;\n\
         \x20 server_tokens off;\n\
         {http_body}\
         }}\n"
    )
}

/// Writes `conf` as `dir/nginx.conf` and returns the command that runs the instance in the
/// foreground (`daemon off`), its errors on stderr, taking the socket at fd 3 (give it with
/// [`crate::listen::socket_activated`]).
pub fn command(bin: &Path, dir: &Path, conf: &str) -> Result<Command, String> {
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut c = Command::new(bin);
    c.arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&path)
        .args(["-e", "stderr"])
        .env("NGINX", "3;");
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_keeps_everything_in_the_scratch_folder() {
        let c = config(Path::new("/tmp/x"), 2, "  server { listen 127.0.0.1:1; }\n");
        assert!(c.contains("pid /tmp/x/nginx.pid;"), "{c}");
        assert!(c.contains("proxy_temp_path /tmp/x/proxy;"), "{c}");
        assert!(c.contains("worker_processes 2;"), "{c}");
        assert!(c.contains("  server { listen 127.0.0.1:1; }\n}\n"), "{c}");
    }
}
