//! The database manager (issue 20's pages, issue 22's `db` commands) against the real
//! binary and PostgreSQL: a database created from the manager's form logs its admin in;
//! its backup downloaded, the database dropped, restored from that zip, and its user's
//! password still valid; the master password refused, then changed (hashed into the
//! config file) and the new one accepted; `list_db = false` hides the manager and the
//! list; a restore of a file that is no backup is a clear error and leaves no database;
//! `inphms-host db` dump/load/duplicate/rename/drop round trip.

use inphms_tests::pg::{self, TestDb};
use inphms_tests::{http_get, send, Response, Server, TestDir};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[options]` of the test: the master password `master` (plain text, as an operator
/// writes it), the test's data folder, and a `dbfilter` showing this test's databases.
fn config(td: &TestDir, master: &str, extra: &str) -> PathBuf {
    td.config(
        "etc/inphms.conf",
        &format!(
            "[options]\nadmin_passwd = \"{master}\"\ndata_dir = \"{}\"\ndbfilter = \"^inphms_test_{}_\"\n{extra}",
            td.join("data").display(),
            std::process::id()
        ),
    )
}

fn start(td: &TestDir, conf: &Path, more: &[&str]) -> Server {
    let mut args: Vec<String> = vec![format!("--config={}", conf.display())];
    args.extend(pg::server_args());
    args.extend(more.iter().map(|s| s.to_string()));
    td.server(args)
        .start_timeout(Duration::from_secs(120))
        .start()
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// `POST path` with an urlencoded form and the session cookie `sid` (if any).
fn post_form(port: u16, path: &str, sid: Option<&str>, pairs: &[(&str, &str)]) -> Response {
    let cookie = sid.map(|s| format!("session_id={s}"));
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(c) = &cookie {
        headers.push(("Cookie", c.as_str()));
    }
    send(port, "POST", path, &headers, &form(pairs))
}

fn get(port: u16, path: &str, sid: Option<&str>) -> Response {
    let cookie = sid.map(|s| format!("session_id={s}"));
    match &cookie {
        Some(c) => http_get(port, path, &[("Cookie", c.as_str())]),
        None => http_get(port, path, &[]),
    }
}

fn exists(name: &str) -> bool {
    pg::psql(
        "postgres",
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    ) == "1"
}

/// Logs `login` in on `db` through the login form; whether `/web` then shows them.
fn form_login(port: u16, db: &str, login: &str, password: &str) -> bool {
    let page = get(port, &format!("/web/login?db={db}"), None);
    let Some(sid) = page.cookie("session_id") else {
        panic!("no session cookie: {}", page.text())
    };
    let text = page.text();
    let token = text
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no csrf token: {text}"))
        .to_owned();
    let r = post_form(
        port,
        "/web/login",
        Some(&sid),
        &[
            ("csrf_token", &token),
            ("login", login),
            ("password", password),
            ("type", "password"),
            ("redirect", ""),
        ],
    );
    if r.status != 303 {
        return false;
    }
    let sid = r.cookie("session_id").unwrap_or(sid);
    let web = get(port, "/web", Some(&sid));
    web.status == 200
        && web
            .text()
            .contains(&format!("<span id=\"user_login\">{login}</span>"))
}

/// A multipart body with the text fields and the file `backup_file`; its boundary.
fn multipart(fields: &[(&str, &str)], file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----inphmsTestBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"backup_file\"; filename=\"b.zip\"\r\nContent-Type: application/zip\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn restore(port: u16, master: &str, name: &str, file: &[u8]) -> Response {
    let (ct, body) = multipart(
        &[("master_pwd", master), ("name", name), ("copy", "false")],
        file,
    );
    send(
        port,
        "POST",
        "/web/database/restore",
        &[("Content-Type", ct.as_str())],
        &body,
    )
}

#[test]
fn manager_creates_backs_up_drops_and_restores_a_database() {
    let td = TestDir::new();
    let conf = config(&td, "s3cr3t", "");
    let server = start(&td, &conf, &[]);
    let port = server.port();
    let db = TestDb::new("dbm_web");

    let page = get(port, "/web/database/manager", None);
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(
        page.text().contains("action=\"/web/database/create\""),
        "{}",
        page.text()
    );
    assert!(page.text().contains("/web/static/src/main.css"));
    // The create form lists the host's countries (no master password typed yet).
    assert!(
        page.text()
            .contains("<option value=\"be\">Belgium</option>"),
        "{}",
        page.text()
    );

    // A wrong master password: refused, nothing created.
    let fields = |master: &'static str| {
        vec![
            ("master_pwd", master),
            ("name", db.name.as_str()),
            ("login", "boss@example.com"),
            ("password", "pw-of-boss"),
            ("lang", "en_US"),
            ("country_code", "be"),
            ("phone", ""),
        ]
    };
    let r = post_form(port, "/web/database/create", None, &fields("wrong"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("Database creation error: Access Denied"),
        "{}",
        r.text()
    );
    assert!(!exists(&db.name));

    // Created: logged in as the new admin, then /web.
    let r = post_form(port, "/web/database/create", None, &fields("s3cr3t"));
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/web/database/created"));
    let sid = r.cookie("session_id").expect("a session");
    let r = get(port, "/web/database/created", Some(&sid));
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/web"));
    let sid = r.cookie("session_id").unwrap_or(sid);
    let web = get(port, "/web", Some(&sid));
    assert_eq!(web.status, 200, "{}", web.text());
    assert!(
        web.text()
            .contains("<span id=\"user_login\">boss@example.com</span>"),
        "{}",
        web.text()
    );
    assert!(web.text().contains(&db.name));
    assert_eq!(
        db.sql("SELECT value FROM ir_config_parameter WHERE key = 'base.country_code'"),
        "be"
    );
    // The selector lists it.
    let sel = get(port, "/web/database/selector", None);
    assert!(
        sel.text().contains(&format!("data-db=\"{}\"", db.name)),
        "{}",
        sel.text()
    );

    // The backup: Odoo's zip, as an attachment.
    let r = post_form(
        port,
        "/web/database/backup",
        None,
        &[
            ("master_pwd", "s3cr3t"),
            ("name", &db.name),
            ("backup_format", "zip"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r
        .header("content-disposition")
        .unwrap_or("")
        .starts_with("attachment; filename="));
    let zip = r.body.clone();
    assert!(zip.starts_with(b"PK\x03\x04"), "not a zip");
    let names = String::from_utf8_lossy(&zip).into_owned();
    assert!(names.contains("manifest.json") && names.contains("dump.sql"));

    // Dropped, then restored from the zip: the user's password still valid.
    let r = post_form(
        port,
        "/web/database/drop",
        None,
        &[("master_pwd", "s3cr3t"), ("name", &db.name)],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(!exists(&db.name));
    let r = restore(port, "s3cr3t", &db.name, &zip);
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(exists(&db.name));
    assert!(form_login(port, &db.name, "boss@example.com", "pw-of-boss"));
    assert!(!form_login(
        port,
        &db.name,
        "boss@example.com",
        "not-the-password"
    ));

    // Restoring over an existing database, or a file that is no backup: clear errors, and
    // no database left behind.
    let r = restore(port, "s3cr3t", &db.name, &zip);
    assert!(
        r.text()
            .contains("Database restore error: Database already exists"),
        "{}",
        r.text()
    );
    let other = TestDb::new("dbm_bad");
    let r = restore(port, "s3cr3t", &other.name, b"this is not a zip at all");
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("the file is not a backup"),
        "{}",
        r.text()
    );
    let mut damaged = zip.clone();
    damaged.truncate(zip.len() / 2);
    let r = restore(port, "s3cr3t", &other.name, &damaged);
    assert!(r.text().contains("Database restore error:"), "{}", r.text());
    assert!(!exists(&other.name));

    // The master password changed: hashed into the file, the old one refused.
    let r = post_form(
        port,
        "/web/database/change_password",
        None,
        &[("master_pwd", "s3cr3t"), ("master_pwd_new", "n3w-master")],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.contains("admin_passwd = \"$pbkdf2-sha512$"), "{text}");
    assert!(
        text.contains("dbfilter"),
        "the rest of the file is kept: {text}"
    );
    let r = post_form(
        port,
        "/web/database/drop",
        None,
        &[("master_pwd", "s3cr3t"), ("name", &db.name)],
    );
    assert!(
        r.text().contains("Database deletion error: Access Denied"),
        "{}",
        r.text()
    );
    assert!(exists(&db.name));
    let r = post_form(
        port,
        "/web/database/drop",
        None,
        &[("master_pwd", "n3w-master"), ("name", &db.name)],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(!exists(&db.name));
    drop(server);

    // A server started on the rewritten file reads the hashed password.
    let server = start(&td, &conf, &[]);
    let r = post_form(
        server.port(),
        "/web/database/change_password",
        None,
        &[("master_pwd", "n3w-master"), ("master_pwd_new", "third")],
    );
    assert_eq!(r.status, 303, "{}", r.text());
}

#[test]
fn list_db_false_hides_the_manager_and_the_list() {
    let td = TestDir::new();
    let conf = config(&td, "s3cr3t", "list_db = false\n");
    let server = start(&td, &conf, &[]);
    let port = server.port();
    let db = TestDb::new("dbm_hidden");
    let page = get(port, "/web/database/manager", None);
    assert_eq!(page.status, 403, "{}", page.text());
    assert!(
        page.text().contains("disabled by the administrator"),
        "{}",
        page.text()
    );
    assert!(!page.text().contains("<form"));
    let r = post_form(
        port,
        "/web/database/create",
        None,
        &[
            ("master_pwd", "s3cr3t"),
            ("name", &db.name),
            ("login", "a"),
            ("password", "b"),
        ],
    );
    assert!(!exists(&db.name), "{}", r.text());
    let body = r#"{"jsonrpc": "2.0", "method": "call", "id": 1, "params": {}}"#;
    let r = send(
        port,
        "POST",
        "/web/database/list",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert!(r.text().contains("AccessDenied"), "{}", r.text());
}

#[test]
fn db_commands_dump_load_duplicate_rename_and_drop() {
    let td = TestDir::new();
    let conf = config(&td, "s3cr3t", "");
    let db = TestDb::new("dbm_cli");
    let copy = TestDb::new("dbm_cli_copy");
    let dup = TestDb::new("dbm_cli_dup");
    let renamed = TestDb::new("dbm_cli_ren");
    let run = |args: &[&str]| {
        let mut all: Vec<String> = vec!["db".into(), format!("--config={}", conf.display())];
        all.extend(pg::server_args());
        all.extend(args.iter().map(|s| s.to_string()));
        td.cmd(all).timeout(Duration::from_secs(120)).run()
    };
    let out = run(&[
        "init",
        &db.name,
        "--username",
        "ops",
        "--password",
        "pw-ops",
    ]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(db.sql("SELECT login FROM res_users WHERE id = 2"), "ops");
    // A file of its filestore goes into the backup and comes back with each copy.
    let filestore = |d: &TestDb| td.join("data/filestore").join(&d.name);
    td.write(filestore(&db).join("ab/abcdef"), "attachment bytes");
    let zip = td.join("backup.zip");
    let out = run(&["dump", &db.name, zip.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out}");
    let bytes = std::fs::read(&zip).unwrap();
    assert!(bytes.starts_with(b"PK\x03\x04"));
    assert!(String::from_utf8_lossy(&bytes).contains("filestore/ab/abcdef"));
    let out = run(&["load", &copy.name, zip.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(copy.sql("SELECT login FROM res_users WHERE id = 2"), "ops");
    assert_eq!(
        std::fs::read_to_string(filestore(&copy).join("ab/abcdef")).unwrap(),
        "attachment bytes"
    );
    // The pg_dump custom format loads too.
    let custom = td.join("backup.dump");
    let out = run(&[
        "dump",
        &db.name,
        custom.to_str().unwrap(),
        "--format",
        "dump",
    ]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(std::fs::read(&custom).unwrap().starts_with(b"PGDMP"));
    let out = run(&["load", "--force", &copy.name, custom.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(copy.sql("SELECT login FROM res_users WHERE id = 2"), "ops");
    // A copy gets its own uuid.
    let uuid =
        |d: &TestDb| d.sql("SELECT value FROM ir_config_parameter WHERE key = 'database.uuid'");
    assert_ne!(uuid(&db), uuid(&copy));
    let out = run(&["load", &copy.name, zip.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("Database already exists"), "{out}");
    let out = run(&["load", "--force", &copy.name, zip.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out}");
    let out = run(&["duplicate", &db.name, &dup.name]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(dup.sql("SELECT login FROM res_users WHERE id = 2"), "ops");
    assert!(filestore(&dup).join("ab/abcdef").is_file());
    let out = run(&["rename", &dup.name, &renamed.name]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!exists(&dup.name) && exists(&renamed.name));
    assert!(!filestore(&dup).exists() && filestore(&renamed).join("ab/abcdef").is_file());
    for d in [&db, &copy, &renamed] {
        let out = run(&["drop", &d.name]);
        assert_eq!(out.code, Some(0), "{out}");
        assert!(!exists(&d.name) && !filestore(d).exists());
    }
    let out = run(&["drop", &db.name]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("does not exist"), "{out}");
    let bogus = td.write("bogus.zip", "not a backup");
    let out = run(&["load", &db.name, bogus.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("the file is not a backup"), "{out}");
    assert!(!exists(&db.name));
    let out = run(&["frobnicate"]);
    assert_eq!(out.code, Some(1), "{out}");
}

/// The manager in a real headless browser (`db_manager_browser.py`: chromium, chromedriver
/// and selenium, which `.ci/run` installs): the create form submitted, the new admin logged
/// in on `/web`, the new database in the selector.
#[test]
fn a_headless_browser_creates_a_database_from_the_manager() {
    for path in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: `apt-get install chromium chromium-driver` (.ci/run does)"
        );
    }
    let td = TestDir::new();
    let conf = config(&td, "s3cr3t", "");
    let server = start(&td, &conf, &[]);
    let db = TestDb::new("dbm_browser");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/db_manager_browser.py");
    let base = format!("http://127.0.0.1:{}", server.port());
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args([
            &base,
            "s3cr3t",
            &db.name,
            "owner@example.com",
            "pw-of-owner",
        ])
        .output()
        .expect("python3 (with selenium: .ci/run installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser failed:\n{stdout}\n{}\n--- server ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.stderr()
    );
    assert_eq!(
        stdout.trim(),
        format!("created {} as owner@example.com, listed", db.name)
    );
    assert!(exists(&db.name));
}
