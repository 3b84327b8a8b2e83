//! Several hosts on one PostgreSQL behind a real nginx, as operators deploy them: a
//! [`Cluster`] is N `inphms-host` servers on one test database, each with its own data dir,
//! its own configuration file (`host-<name>.conf`, Odoo's INI form, which a one-shot
//! command such as `-u` can be run with) and its own socket handed over as fd 3, behind a
//! private nginx instance ([`Nginx`], `inphms_test_support::nginx`) whose configuration the
//! harness writes: an upstream of the hosts (round robin, `proxy_next_upstream error timeout
//! http_502`), websocket upgrade headers, the forwarded headers of `proxy_mode`, and an
//! `X-Upstream` response header naming the host (`127.0.0.1:PORT`) that answered, retries
//! included (`A, B`).

use crate::pg::{self, TestDb};
use crate::{send, Response, Server, TestDir};
use inphms_test_support::listen::{bind_loopback, socket_activated};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

/// The names of the hosts, in order.
pub const NAMES: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

/// What a cluster runs.
pub struct ClusterOptions {
    /// How many hosts (at most 6).
    pub hosts: usize,
    /// `--addons-path`.
    pub addons_path: String,
    /// Addons installed in the database before the hosts start (`-i`); `base` is always.
    pub install: Vec<String>,
    /// `max_cron_threads` of each host.
    pub cron_threads: u32,
    /// More `key = value` lines for every host's configuration.
    pub extra: Vec<String>,
    /// Environment variables of every host.
    pub env: Vec<(String, String)>,
}

impl ClusterOptions {
    /// `hosts` hosts on `addons_path`, sessions in PostgreSQL, no cron thread.
    pub fn new(hosts: usize, addons_path: impl Into<String>) -> ClusterOptions {
        ClusterOptions {
            hosts,
            addons_path: addons_path.into(),
            install: Vec::new(),
            cron_threads: 0,
            extra: Vec::new(),
            env: Vec::new(),
        }
    }
}

/// One host of a cluster.
pub struct ClusterHost {
    /// `a`, `b`, `c`...
    pub name: &'static str,
    /// Its configuration file.
    pub config: PathBuf,
    port: u16,
    server: Option<Server>,
}

impl ClusterHost {
    /// Its own port (not through nginx).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, as nginx's `X-Upstream` names it.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The running server (panics once it was killed).
    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("the host runs")
    }

    /// SIGKILL, and waits for the exit.
    pub fn kill(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.signal("KILL");
            assert!(
                s.wait(Duration::from_secs(10)).is_some(),
                "host {} did not die",
                self.name
            );
        }
    }

    /// Its log so far (empty once killed).
    pub fn stderr(&self) -> String {
        self.server.as_ref().map(Server::stderr).unwrap_or_default()
    }
}

/// A private nginx in front of the hosts.
pub struct Nginx {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Nginx {
    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its error log so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // The master's SIGTERM stops its workers too (a fast shutdown).
        let _ = inphms_test_support::process::signal(self.child.id(), "TERM");
        if crate::wait_until(Duration::from_secs(5), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        }) {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// N hosts on one database behind nginx. Dropped in order: nginx and the hosts, then the
/// database, then the folder.
pub struct Cluster {
    /// The hosts, `a` first.
    pub hosts: Vec<ClusterHost>,
    /// nginx.
    pub nginx: Nginx,
    /// The database every host serves (`db_name`), which also holds the sessions.
    pub db: TestDb,
    /// The folder of the configurations, data dirs and logs.
    pub td: TestDir,
}

impl Cluster {
    /// Creates the database `tag` with `base` and `options.install`, starts the hosts
    /// (each healthy) and nginx in front (answering).
    pub fn start(tag: &str, options: ClusterOptions) -> Cluster {
        assert!((1..=NAMES.len()).contains(&options.hosts));
        let td = TestDir::new();
        let db = TestDb::new(tag);
        let configs: Vec<PathBuf> = NAMES[..options.hosts]
            .iter()
            .map(|name| write_config(&td, name, &db, &options))
            .collect();
        // The database, once, through the first host's configuration.
        let mut install = vec!["base".to_owned()];
        install.extend(options.install.iter().cloned());
        let out = td
            .cmd(["server", "--stop-after-init", "-c"])
            .arg(&configs[0])
            .args(["-i", &install.join(",")])
            .timeout(Duration::from_secs(180))
            .run();
        assert_eq!(out.code, Some(0), "installing {install:?}: {out}");
        let builders: Vec<_> = configs
            .iter()
            .map(|conf| {
                let mut b = td.server([OsArg::from("-c"), OsArg::from(conf.as_os_str())]);
                for (k, v) in &options.env {
                    b = b.env(k, v);
                }
                b.start_timeout(Duration::from_secs(120))
            })
            .collect();
        let ports: Vec<u16> = builders.iter().map(|b| b.port()).collect();
        let nginx = start_nginx(&td, &ports);
        let hosts = builders
            .into_iter()
            .zip(configs)
            .enumerate()
            .map(|(i, (b, config))| ClusterHost {
                name: NAMES[i],
                config,
                port: ports[i],
                server: Some(b.start()),
            })
            .collect();
        let cluster = Cluster {
            hosts,
            nginx,
            db,
            td,
        };
        let health = cluster.get("/web/health", &[]);
        assert_eq!(health.status, 200, "nginx: {}", cluster.nginx.stderr());
        cluster
    }

    /// A request through nginx.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        send(self.nginx.port(), method, path, headers, body)
    }

    /// A `GET` through nginx.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.send("GET", path, headers, b"")
    }

    /// Logs `login` in with `password` through nginx (`/web/session/authenticate` on the
    /// cluster's database): the answer (its `X-Upstream` names the host), the uid and the
    /// session id. Panics, with every log, when the login is refused.
    pub fn login(&self, login: &str, password: &str) -> (Response, i64, String) {
        let body = serde_json::json!({"jsonrpc": "2.0", "method": "call", "id": 1,
            "params": {"db": self.db.name, "login": login, "password": password}})
        .to_string();
        let resp = self.send(
            "POST",
            "/web/session/authenticate",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(resp.status, 200, "{}\n{}", resp.text(), self.logs());
        let answer: serde_json::Value = serde_json::from_slice(&resp.body).expect("JSON");
        let uid = answer["result"]["uid"]
            .as_i64()
            .unwrap_or_else(|| panic!("{answer}\n{}", self.logs()));
        let sid = resp.cookie("session_id").expect("a session cookie");
        (resp, uid, sid)
    }

    /// The host whose address is the last of an answer's `X-Upstream` (the one that
    /// answered after any retry).
    pub fn answered_by(&self, resp: &Response) -> Option<&ClusterHost> {
        let upstream = resp.header("x-upstream")?;
        let last = upstream.rsplit(',').next()?.trim();
        self.hosts.iter().find(|h| h.addr() == last)
    }

    /// Every host's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for h in &self.hosts {
            out.push_str(&format!("--- host {} ---\n{}\n", h.name, h.stderr()));
        }
        out.push_str(&format!("--- nginx ---\n{}", self.nginx.stderr()));
        out
    }

    /// `inphms-host server -c <host's config> ARGS` run to its end (e.g. `-u addon
    /// --stop-after-init`), as an operator runs a one-shot command with a host's
    /// configuration.
    pub fn run_with_config(&self, host: usize, args: &[&str]) -> crate::Output {
        self.td
            .cmd(["server", "-c"])
            .arg(&self.hosts[host].config)
            .args(args)
            .timeout(Duration::from_secs(180))
            .run()
    }
}

type OsArg = std::ffi::OsString;

/// `host-<name>.conf`: the test PostgreSQL, the database, its own data dir, sessions in
/// PostgreSQL (in the test database), proxy mode trusting loopback.
fn write_config(td: &TestDir, name: &str, db: &TestDb, options: &ClusterOptions) -> PathBuf {
    let data = td.join(format!("host-{name}/data"));
    let mut lines = vec![
        "[options]".to_owned(),
        format!("db_host = {}", pg::HOST),
        format!("db_port = {}", pg::PORT),
        format!("db_name = {}", db.name),
        format!("addons_path = {}", options.addons_path),
        format!("data_dir = {}", data.display()),
        "proxy_mode = True".to_owned(),
        "proxy_trusted = 127.0.0.1/32".to_owned(),
        "session_store = postgresql".to_owned(),
        format!("session_db = {}", db.name),
        format!("max_cron_threads = {}", options.cron_threads),
    ];
    lines.extend(options.extra.iter().cloned());
    td.config(format!("host-{name}.conf"), &(lines.join("\n") + "\n"))
}

/// The nginx configuration of a cluster in `dir`, listening on `port`, in front of the
/// hosts on `hosts` (their ports).
pub fn nginx_config(dir: &Path, port: u16, hosts: &[u16]) -> String {
    let d = dir.display();
    let servers: String = hosts
        .iter()
        .map(|p| format!("    server 127.0.0.1:{p} max_fails=1 fail_timeout=30s;\n"))
        .collect();
    let body = format!(
        "  log_format upstream '$remote_addr \"$request\" $status upstream=$upstream_addr';\n\
         \x20 access_log {d}/access.log upstream;\n\
         \x20 map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}\n\
         \x20 upstream inphms {{\n{servers}    keepalive 32;\n  }}\n\
         \x20 server {{\n\
         \x20   listen 127.0.0.1:{port} backlog=1024;\n\
         \x20   proxy_http_version 1.1;\n\
         \x20   proxy_set_header Upgrade $http_upgrade;\n\
         \x20   proxy_set_header Connection $connection_upgrade;\n\
         \x20   proxy_set_header Host $host;\n\
         \x20   proxy_set_header X-Forwarded-Host $host;\n\
         \x20   proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         \x20   proxy_set_header X-Forwarded-Proto $scheme;\n\
         \x20   proxy_set_header X-Real-IP $remote_addr;\n\
         \x20   proxy_next_upstream error timeout http_502;\n\
         \x20   proxy_connect_timeout 2s;\n\
         \x20   proxy_read_timeout 60s;\n\
         \x20   add_header X-Upstream $upstream_addr always;\n\
         \x20   location / {{ proxy_pass http://inphms; }}\n\
         \x20 }}\n"
    );
    inphms_test_support::nginx::config(dir, 1, &body)
}

/// nginx in `<td>/nginx`, in front of `hosts`, on a socket the harness bound.
fn start_nginx(td: &TestDir, hosts: &[u16]) -> Nginx {
    let (bin, _) = inphms_test_support::nginx::find().unwrap_or_else(|e| panic!("{e}"));
    let dir = td.join("nginx");
    std::fs::create_dir_all(&dir).expect("nginx's folder");
    let listener = bind_loopback(1024).unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().expect("bound").port();
    let command = inphms_test_support::nginx::command(&bin, &dir, &nginx_config(&dir, port, hosts))
        .unwrap_or_else(|e| panic!("{e}"));
    let log = |n: &str| std::fs::File::create(dir.join(n)).expect("nginx log file");
    let child = socket_activated(&command, &listener)
        .stdin(Stdio::null())
        .stdout(log("stdout.log"))
        .stderr(log("stderr.log"))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    drop(listener);
    Nginx { child, port, dir }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_spreads_retries_upgrades_and_names_the_host() {
        let c = nginx_config(Path::new("/tmp/x"), 4242, &[1001, 1002, 1003]);
        for line in [
            "listen 127.0.0.1:4242 backlog=1024;",
            "server 127.0.0.1:1001 max_fails=1 fail_timeout=30s;",
            "server 127.0.0.1:1003 max_fails=1 fail_timeout=30s;",
            "proxy_next_upstream error timeout http_502;",
            "proxy_set_header Upgrade $http_upgrade;",
            "proxy_set_header Connection $connection_upgrade;",
            "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
            "add_header X-Upstream $upstream_addr always;",
            "pid /tmp/x/nginx.pid;",
        ] {
            assert!(c.contains(line), "{line} missing from\n{c}");
        }
    }
}
