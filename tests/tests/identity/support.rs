//! What the identity tests share: a server on a fresh database (`-d`, `base` and `web`),
//! with cheap password hashes where the test is not about rounds; the `users` command with
//! a password on its stdin; a client keeping its session cookie.

use inphms_tests::pg::{self, TestDb};
use inphms_tests::{send, Response, Server, TestDir};
use serde_json::{json, Value};
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

/// The rounds the tests that are not about rounds set (`password.hashing.rounds`).
pub const TEST_ROUNDS: &str = "1000";

/// The switch that lets `password.hashing.rounds` go below Odoo's minimum (else raised to
/// it): set for every server and `users` command of these tests but the one about it.
pub const WEAK_ROUNDS_ENV: &str = "INPHMS_DEV_WEAK_HASHING_ROUNDS";

/// A server on its own database, created and initialised by `-d`.
pub struct Site {
    pub td: TestDir,
    pub db: TestDb,
    pub server: Server,
}

impl Site {
    /// `-d` on a new database, `base,web`, proxy mode trusting loopback (tests pick their
    /// client address with `X-Forwarded-For`), then `extra`; the hashing rounds lowered to
    /// [`TEST_ROUNDS`] and admin's password set to `admin-pw` at those rounds.
    pub fn start(tag: &str, extra: &[&str]) -> Site {
        let site = Site::start_default(tag, extra);
        site.db.sql(&format!(
            "INSERT INTO ir_config_parameter (key, value) VALUES ('password.hashing.rounds', '{TEST_ROUNDS}')"
        ));
        let out = site.users(&["passwd", "admin"], Some("admin-pw"));
        assert_eq!(out.code, Some(0), "{out}");
        site
    }

    /// As [`Site::start`], the database as `-d` leaves it (admin/admin, default rounds).
    pub fn start_default(tag: &str, extra: &[&str]) -> Site {
        let td = TestDir::new();
        let db = TestDb::new(tag);
        let data = td.join("data");
        let mut args: Vec<String> = pg::server_args();
        args.extend(
            [
                "-d",
                &db.name,
                "-D",
                data.to_str().expect("UTF-8 path"),
                "--proxy-mode",
                "--proxy-trusted=127.0.0.1/32",
            ]
            .map(String::from),
        );
        args.extend(extra.iter().map(|s| s.to_string()));
        let server = td
            .server(args)
            .env(WEAK_ROUNDS_ENV, "1")
            .start_timeout(Duration::from_secs(120))
            .start_healthy();
        Site { td, db, server }
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// `inphms-host users -d DB ARGS...` with `stdin` written to its standard input.
    pub fn users(&self, args: &[&str], stdin: Option<&str>) -> inphms_tests::Output {
        users_command(&self.td, &self.db.name, args, stdin)
    }

    /// A client from the address `addr` (`X-Forwarded-For`).
    pub fn client(&self, addr: &str) -> Client {
        Client {
            port: self.port(),
            addr: addr.to_owned(),
            cookie: None,
        }
    }
}

/// `inphms-host users -d DB ARGS...` with `stdin` (else an empty, closed stdin), lower
/// hashing rounds allowed ([`WEAK_ROUNDS_ENV`]).
pub fn users_command(
    td: &TestDir,
    db: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> inphms_tests::Output {
    users_command_with(td, db, args, stdin, true)
}

/// As [`users_command`]; `weak_rounds`: whether [`WEAK_ROUNDS_ENV`] is set.
pub fn users_command_with(
    td: &TestDir,
    db: &str,
    args: &[&str],
    stdin: Option<&str>,
    weak_rounds: bool,
) -> inphms_tests::Output {
    let mut all: Vec<String> = vec!["users".into(), "-d".into(), db.into()];
    all.extend(pg::server_args());
    all.extend(args.iter().map(|s| s.to_string()));
    let cmd = td.cmd(all).home(td.home());
    let cmd = if weak_rounds {
        cmd.env(WEAK_ROUNDS_ENV, "1")
    } else {
        cmd.env_remove(WEAK_ROUNDS_ENV)
    };
    let mut command = cmd.command();
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn inphms-host users");
    {
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input
                .write_all(format!("{text}\n").as_bytes())
                .expect("write the password");
        }
    }
    let out = child.wait_with_output().expect("users command");
    inphms_tests::Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        timed_out: false,
    }
}

/// A browser-like client: one address, the session cookie the server last set.
pub struct Client {
    pub port: u16,
    pub addr: String,
    pub cookie: Option<String>,
}

impl Client {
    /// A request with the session cookie; keeps the cookie the answer sets.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let cookie = self.cookie.as_ref().map(|sid| format!("session_id={sid}"));
        // Proxy mode uses the forwarded headers when X-Forwarded-Host comes with them.
        let mut all: Vec<(&str, &str)> = vec![
            ("X-Forwarded-For", self.addr.as_str()),
            ("X-Forwarded-Host", "identity.test"),
        ];
        if let Some(c) = &cookie {
            all.push(("Cookie", c.as_str()));
        }
        all.extend_from_slice(headers);
        let resp = send(self.port, method, path, &all, body);
        if let Some(sid) = resp.cookie("session_id") {
            self.cookie = Some(sid);
        }
        resp
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.send("GET", path, &[], b"")
    }

    /// A form post (urlencoded `fields`).
    pub fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
    }

    /// A JSON-RPC call; the whole answer as JSON.
    pub fn rpc(&mut self, path: &str, params: Value) -> Value {
        let body =
            json!({"jsonrpc": "2.0", "method": "call", "id": 7, "params": params}).to_string();
        let resp = self.send(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(resp.status, 200, "{path}: {}", resp.text());
        serde_json::from_slice(&resp.body)
            .unwrap_or_else(|e| panic!("{path}: {e}: {}", resp.text()))
    }

    /// `/web/session/authenticate` on `db`.
    pub fn authenticate(&mut self, db: &str, login: &str, password: &str) -> Value {
        self.rpc(
            "/web/session/authenticate",
            json!({"db": db, "login": login, "password": password}),
        )
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The value of the hidden `csrf_token` field of a page.
pub fn csrf_of(page: &str) -> String {
    let re = regex::Regex::new(r#"name="csrf_token" value="([^"]+)""#).expect("regex");
    re.captures(page)
        .map(|c| c[1].to_owned())
        .unwrap_or_else(|| panic!("no csrf_token in the page:\n{page}"))
}

/// Python's passlib, checking `password` against `hash` (`True`/`False`), or making a hash.
pub fn passlib(script: &str) -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .output()
        .expect("python3 (with passlib: .ci/run installs it)");
    assert!(
        out.status.success(),
        "python3 with passlib failed (`pip install passlib`; .ci/run installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The last lines of a log, each cut to 300 characters: for assertion messages about logs
/// that may hold huge lines.
pub fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..]
        .iter()
        .map(|l| l.chars().take(300).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}
