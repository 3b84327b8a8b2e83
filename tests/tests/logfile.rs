//! The log file under logrotate, through the real binary: moved away while requests are
//! served, then SIGUSR1, the new lines go to a new file at the configured path and no
//! access-log line is lost or written twice; removed, it is created again at the next line
//! (Python's `WatchedFileHandler` behaviour). PostgreSQL's notices are `inphms.sql_db`
//! lines; `--syslog` sends Odoo's syslog records.

use inphms_tests::pg::{self, TestDb};
use inphms_tests::{built_lib, http_get, test_addon_src, wait_until, TestDir};
use regex::Regex;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The access-log line's request of the request number `n`.
fn request_of(n: u32) -> String {
    format!("\"GET /test_http/item/{n} HTTP/1.1\" 200")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn a_log_file_moved_away_then_sigusr1_loses_no_line() {
    let td = TestDir::new();
    let logfile = td.join("log/inphms.log");
    let rotated = td.join("log/inphms.log.1");
    let arg = format!("--logfile={}", logfile.display());
    let server = td.test_http_server(&[&arg]).start_healthy();
    let port = server.port();
    assert!(
        wait_until(Duration::from_secs(10), || read(&logfile)
            .contains("GET /web/health")),
        "the access log goes to the file: {}",
        read(&logfile)
    );

    // A client numbering its requests, while the file is rotated under it.
    let sent = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (sent, stop) = (Arc::clone(&sent), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                let n = sent.load(Ordering::Acquire) + 1;
                let resp = http_get(port, &format!("/test_http/item/{n}"), &[]);
                assert_eq!(resp.status, 200);
                sent.store(n, Ordering::Release);
            }
        })
    };
    let at_least = |n: u32| {
        wait_until(Duration::from_secs(10), || {
            sent.load(Ordering::Acquire) >= n
        })
    };
    assert!(at_least(50), "the client runs");
    assert!(
        wait_until(Duration::from_secs(10), || read(&logfile)
            .contains(&request_of(50))),
        "the 50th request is written"
    );
    std::fs::rename(&logfile, &rotated).expect("rotate the log file");
    let moved_at = sent.load(Ordering::Acquire);
    assert!(at_least(moved_at + 50), "the client keeps being served");
    server.signal("USR1");
    assert!(
        wait_until(Duration::from_secs(10), || read(&logfile)
            .contains("INFO ? inphms.netsvc: log file reopened (SIGUSR1)")),
        "SIGUSR1 reopens the file at the configured path:\n{}",
        read(&logfile)
    );
    let signalled_at = sent.load(Ordering::Acquire);
    assert!(at_least(signalled_at + 50));
    stop.store(true, Ordering::Release);
    client.join().expect("the client thread");
    let total = sent.load(Ordering::Acquire);

    // Every request is in exactly one of the two files, each file in order.
    let lines_of = |n: u32| request_of(n);
    assert!(
        wait_until(Duration::from_secs(10), || read(&logfile)
            .contains(&lines_of(total))),
        "the last request is logged"
    );
    let (old, new) = (read(&rotated), read(&logfile));
    let position = |text: &str, n: u32| {
        let needle = lines_of(n);
        let count = text.matches(needle.as_str()).count();
        (count, text.find(needle.as_str()))
    };
    let (mut in_old, mut in_new) = (0, 0);
    let (mut last_old, mut last_new) = (0, 0);
    for n in 1..=total {
        match (position(&old, n), position(&new, n)) {
            ((1, Some(at)), (0, _)) => {
                assert!(at >= last_old, "request {n} out of order in the rotated file");
                last_old = at;
                in_old += 1;
            }
            ((0, _), (1, Some(at))) => {
                assert!(at >= last_new, "request {n} out of order in the new file");
                last_new = at;
                in_new += 1;
            }
            (o, w) => panic!(
                "request {n} of {total} is {} times in the rotated file and {} in the new one\n--- rotated ---\n{old}\n--- new ---\n{new}",
                o.0, w.0
            ),
        }
    }
    // The lines written before the move stay in the rotated file (those still buffered
    // then go to the new one, as Python's WatchedFileHandler does); those after the signal
    // are all in the new one.
    assert!(in_old >= 50, "{in_old} lines in the rotated file");
    assert!(
        in_new >= (total - signalled_at) as usize,
        "{in_new} lines in the new file"
    );
    assert!(!old.contains("log file reopened"), "{old}");

    // Removed (logrotate's `nocreate` then a cleanup): the next line creates it again.
    std::fs::remove_file(&logfile).expect("remove the log file");
    let resp = http_get(port, "/test_http/item/999999", &[]);
    assert_eq!(resp.status, 200);
    assert!(
        wait_until(Duration::from_secs(10), || read(&logfile)
            .contains(&request_of(999_999))),
        "a removed log file is created again"
    );
}

/// `inphms-host server --stop-after-init -d DB -i test_db ARGS` with a copy of `test_db`
/// whose SQL raises a notice.
fn install_noticing_test_db(td: &TestDir, db: &str, args: &[&str]) -> inphms_tests::Output {
    let copy = td.join("addons/test_db");
    if !copy.exists() {
        let copy = td.copy_addon(&test_addon_src("test_db"), "addons");
        std::fs::copy(built_lib("test_db"), copy.join("libtest_db.so"))
            .expect("copy the test_db library");
        let sql = copy.join("data/test_db.sql");
        let mut text = std::fs::read_to_string(&sql).expect("read test_db.sql");
        text.push_str("\nDO $$ BEGIN RAISE NOTICE 'a notice from PostgreSQL'; END $$;\n");
        std::fs::write(&sql, text).expect("write test_db.sql");
    }
    let mut all: Vec<String> = vec!["server".into(), "--stop-after-init".into()];
    all.extend(pg::server_args());
    all.push(format!("--addons-path={}", td.join("addons").display()));
    all.extend(["-d".into(), db.into(), "-i".into(), "test_db".into()]);
    all.extend(args.iter().map(|a| a.to_string()));
    td.cmd(all).timeout(Duration::from_secs(120)).run()
}

#[test]
fn postgresql_notices_are_inphms_sql_db_lines() {
    let td = TestDir::new();
    let db = TestDb::new("notice");
    let out = install_noticing_test_db(&td, &db.name, &[]);
    assert_eq!(out.code, Some(0), "{out}");
    // The notice comes from the connection's task, outside the request's database span.
    let line = Regex::new(
        r"(?m)^\d{4}-\d{2}-\d{2} [\d:,]+ \d+ INFO [^ ]+ inphms\.sql_db: NOTICE: a notice from PostgreSQL$",
    )
    .unwrap();
    assert_eq!(line.find_iter(&out.stderr).count(), 1, "{out}");
    assert!(!out.stderr.contains("log.target="), "{out}");

    // Filtered under its own target.
    let db2 = TestDb::new("notice_quiet");
    let out = install_noticing_test_db(&td, &db2.name, &["--log-handler=inphms.sql_db:WARNING"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!out.stderr.contains("a notice from PostgreSQL"), "{out}");
}

#[test]
fn syslog_gets_odoos_records() {
    let td = TestDir::new();
    let path = td.join("syslog.sock");
    let daemon = UnixDatagram::bind(&path).expect("bind the syslog socket");
    daemon
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let addons = td.dummy_addons();
    let out = td
        .cmd(["server", "--stop-after-init", "--syslog"])
        .arg(format!("--syslog-socket={}", path.display()))
        .arg(format!("--addons-path={}", addons.display()))
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        !out.stderr.contains(" INFO "),
        "the log goes to syslog: {out}"
    );
    let mut records = Vec::new();
    daemon.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 70_000];
    while let Ok(n) = daemon.recv(&mut buf) {
        records.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(
        records.contains(&"<14>Inphms Server 1.0:?:INFO:inphms:Inphms version 1.0\0".to_owned()),
        "{records:#?}"
    );
    assert!(
        records
            .iter()
            .all(|r| r.starts_with('<') && r.ends_with('\0')),
        "{records:#?}"
    );

    // No syslog daemon: a clear error naming the option.
    let missing = td.join("no-such.sock");
    let out = td
        .cmd(["server", "--stop-after-init", "--syslog"])
        .arg(format!("--syslog-socket={}", missing.display()))
        .arg(format!("--addons-path={}", addons.display()))
        .run();
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "inphms-host: option syslog_socket: invalid value \"{}\" from flag --syslog-socket; expected the socket of a running syslog daemon, for --syslog (No such file or directory)\n",
            missing.display()
        )),
        "{out}"
    );
}
