//! Item 14: a logged-in route through nginx, three hosts against one (issue 21), on a
//! PostgreSQL database of the suite's own with sessions in PostgreSQL
//! (`session_store = postgresql`, the table in that database).
//!
//! - **Measures**: keep-alive `GET /web` with the session cookie of a login (the session
//!   read, its token checked in the request's transaction, the page) through a private nginx
//!   (`inphms_test_support::nginx`, 2 workers, upstream keep-alive) in front of one host,
//!   then of three hosts on the same database, rounds interleaved; requests per second of
//!   each and their ratio.
//! - **Baseline**: the same nginx in front of one host (the first of the three).
//! - **Target**: none; failed requests are counted in the row (wrk's socket errors and
//!   timeouts, non-2xx answers), not a failure of the item. The machine has 2 cores shared by nginx, the hosts, PostgreSQL and
//!   the load generator, so the ratio says what spreading costs or saves here, not how
//!   hosts scale on machines of their own.

use crate::loadgen::Load;
use crate::model::{fmt_ratio, Options, Row};
use crate::pg;
use crate::servers::{host_command, Env, Kind, Server};
use crate::stats::median;
use inphms_test_support::http;
use inphms_test_support::listen::{bind_loopback, socket_activated};
use inphms_test_support::nginx as private;
use inphms_test_support::process::run_bounded;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

/// nginx in front of some hosts, stopped on drop.
struct Front {
    child: Child,
    port: u16,
}

impl Drop for Front {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers (a SIGKILL would leave them running).
        let _ = inphms_test_support::process::signal(self.child.id(), "TERM");
        let child = &mut self.child;
        if !inphms_test_support::process::wait_until(Duration::from_secs(5), || {
            matches!(child.try_wait(), Ok(Some(_)))
        }) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `http` block of nginx in front of the hosts on `ports`, listening on `port`.
fn front_config(dir: &Path, port: u16, ports: &[u16]) -> String {
    let servers: String = ports
        .iter()
        .map(|p| format!("    server 127.0.0.1:{p};\n"))
        .collect();
    let body = format!(
        "\x20 access_log off;\n\
         \x20 keepalive_requests 1000000000;\n\
         \x20 upstream inphms {{\n{servers}    keepalive 64;\n  }}\n\
         \x20 server {{\n\
         \x20   listen 127.0.0.1:{port} backlog=1024;\n\
         \x20   proxy_http_version 1.1;\n\
         \x20   proxy_set_header Connection \"\";\n\
         \x20   proxy_set_header Host $host;\n\
         \x20   proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         \x20   location / {{ proxy_pass http://inphms; }}\n\
         \x20 }}\n"
    );
    private::config(dir, crate::nginx::WORKERS, &body)
}

fn start_front(dir: &Path, ports: &[u16]) -> Result<Front, String> {
    let (bin, _) = private::find()?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let listener = bind_loopback(1024)?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let command = private::command(&bin, dir, &front_config(dir, port, ports))?;
    let log = std::fs::File::create(dir.join("stderr.log")).map_err(|e| e.to_string())?;
    let child = socket_activated(&command, &listener)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
    Ok(Front { child, port })
}

/// `base` installed in `db` (items 14 and 17).
pub(super) fn install_base(env: &Env, dir: &Path, db: &str) -> Result<(), String> {
    let mut init = host_command(env, dir);
    init.current_dir(dir)
        .args(["server", "--stop-after-init", "-D"])
        .arg(dir.join("data"))
        .args(pg::server_args())
        .args(["-d", db, "-i", "base"]);
    let done = run_bounded(&mut init, Duration::from_secs(120))?;
    if !done.success() {
        return Err(format!("installing base in {db} failed:\n{}", done.stderr));
    }
    Ok(())
}

/// One `/web/session/authenticate` of `admin` (password `admin`) on `db` through `port`,
/// waiting at most `timeout` for the answer; the session id (items 14 and 17).
pub(super) fn authenticate_admin(port: u16, db: &str, timeout: Duration) -> Result<String, String> {
    let body = format!(
        r#"{{"jsonrpc": "2.0", "method": "call", "id": 1, "params": {{"db": "{db}", "login": "admin", "password": "admin"}}}}"#
    );
    let r = http::send(
        port,
        "POST",
        "/web/session/authenticate",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
        timeout,
    )
    .map_err(|e| format!("the login: {e}"))?;
    r.cookie("session_id")
        .filter(|_| r.status == 200 && r.text().contains("\"uid\": 2"))
        .ok_or_else(|| format!("the login answered {}: {}", r.status, r.text()))
}

/// Logs `admin` in through `port`; the session id, once `/web` answers it logged in.
fn login(port: u16, db: &str) -> Result<String, String> {
    let sid = authenticate_admin(port, db, Duration::from_secs(10))?;
    let page = http::send(
        port,
        "GET",
        "/web",
        &[("Cookie", &format!("session_id={sid}"))],
        b"",
        Duration::from_secs(10),
    )
    .map_err(|e| format!("/web: {e}"))?;
    if page.status != 200 || !page.text().contains("Logged in as") {
        return Err(format!("/web answered {}: {}", page.status, page.text()));
    }
    Ok(sid)
}

/// Item 14: the same logged-in load through nginx in front of one host, then three.
pub fn item14_nginx_hosts(env: &Env, opts: &Options) -> Result<Vec<Row>, String> {
    let db = pg::database("hosts")?;
    let dirs = ["hosts-a", "hosts-b", "hosts-c"]
        .iter()
        .map(|n| env.scratch(n))
        .collect::<Result<Vec<_>, _>>()?;
    install_base(env, &dirs[0], &db.name)?;
    let args: Vec<String> = pg::server_args()
        .into_iter()
        .chain(
            [
                "-d",
                &db.name,
                "--session-store",
                "postgresql",
                "--session-db",
                &db.name,
                "--max-cron-threads",
                "0",
                "--log-handler",
                "werkzeug:WARNING",
            ]
            .map(String::from),
        )
        .collect();
    let hosts = dirs
        .iter()
        .map(|d| Server::start_with(env, &Kind::HOST, d, &args))
        .collect::<Result<Vec<_>, _>>()?;
    let ports: Vec<u16> = hosts.iter().map(|h| h.port).collect();
    let scratch = env.scratch("hosts-nginx")?;
    let one = start_front(&scratch.join("one"), &ports[..1])?;
    let three = start_front(&scratch.join("three"), &ports)?;
    let ready = |port: u16| {
        inphms_test_support::process::wait_until(Duration::from_secs(10), || {
            http::send(port, "GET", "/web/health", &[], b"", Duration::from_secs(2))
                .is_ok_and(|r| r.status == 200)
        })
    };
    if !ready(one.port) || !ready(three.port) {
        return Err("nginx in front of the hosts did not answer /web/health".into());
    }
    let sid = login(three.port, &db.name)?;
    let load = Load::get("/web").header("Cookie", &format!("session_id={sid}"));
    let (mut rps_one, mut rps_three) = (Vec::new(), Vec::new());
    let (mut errors_one, mut errors_three) = (0, 0);
    for _ in 0..opts.rounds {
        for (front, out, errors) in [
            (&one, &mut rps_one, &mut errors_one),
            (&three, &mut rps_three, &mut errors_three),
        ] {
            opts.generator
                .run(front.port, &load, opts.connections, opts.warmup, &scratch)?;
            let stats =
                opts.generator
                    .run(front.port, &load, opts.connections, opts.duration, &scratch)?;
            *errors += stats.errors;
            out.push(stats.rps);
        }
    }
    drop((one, three));
    if errors_one + errors_three > 0 {
        for h in &hosts {
            eprintln!("bench: item 14, a host's log ends with:\n{}", h.log_tail());
        }
    }
    for h in hosts {
        h.stop();
    }
    drop(db);
    for d in dirs.iter().chain([&scratch]) {
        let _ = std::fs::remove_dir_all(d);
    }
    eprintln!("bench: /web through nginx, req/s: one host {rps_one:.0?} ({errors_one} errors), three hosts {rps_three:.0?} ({errors_three} errors)");
    let (one, three) = (median(&rps_one), median(&rps_three));
    Ok(vec![Row {
        item: "14".into(),
        measure: format!(
            "logged-in keep-alive GET /web (sessions in PostgreSQL) through nginx: three hosts (host column) against one (baseline column), req/s; {} connections, 2 cores for all; failed requests (non-2xx/3xx, socket errors, wrk's 2 s timeouts): {errors_one} with one host, {errors_three} with three",
            opts.connections
        ),
        baseline: format!("{one:.0}"),
        host: format!("{three:.0}"),
        peer: "—".into(),
        ratio: fmt_ratio(three / one),
        target: "none (measured)".into(),
        met: "—".into(),
    }])
}
