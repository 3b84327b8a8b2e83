//! The log file under logrotate in workers mode, through the real binary: the log file is
//! moved away, then SIGUSR1 to the master reopens the master's log file and is forwarded to
//! every worker, each reopening its own; the master lives on and the workers serve on.

use inphms_tests::{http_get, wait_until, TestDir};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The pids of the lines of `text` containing `needle` (Odoo's line: date, time, pid, ...).
fn pids_of(text: &str, needle: &str) -> BTreeSet<u32> {
    text.lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| l.split(' ').nth(2)?.parse().ok())
        .collect()
}

#[test]
fn sigusr1_to_the_master_reopens_its_log_file_and_every_workers() {
    let td = TestDir::new();
    let logfile = td.join("log/inphms.log");
    let rotated = td.join("log/inphms.log.1");
    let arg = format!("--logfile={}", logfile.display());
    let mut server = td
        .test_http_server(&[&arg, "--workers", "2", "--max-cron-threads", "0"])
        .start_healthy();
    assert!(
        wait_until(Duration::from_secs(30), || read(&logfile)
            .matches("(http) ready after")
            .count()
            >= 2),
        "two HTTP workers ready:\n{}",
        read(&logfile)
    );
    let master = server.pid();
    // "worker PID (http) ready after": the master's line naming the worker.
    let workers: BTreeSet<u32> = read(&logfile)
        .lines()
        .filter_map(|l| {
            let before = &l[..l.find(" (http) ready after")?];
            before.rsplit(' ').next()?.parse().ok()
        })
        .collect();
    assert_eq!(workers.len(), 2, "{}", read(&logfile));
    assert!(!workers.contains(&master), "{}", read(&logfile));

    std::fs::rename(&logfile, &rotated).expect("rotate the log file");
    server.signal("USR1");
    let reopened = "INFO ? inphms.netsvc: log file reopened (SIGUSR1)";
    let mut expected = workers.clone();
    expected.insert(master);
    assert!(
        wait_until(Duration::from_secs(10), || pids_of(
            &read(&logfile),
            reopened
        ) == expected),
        "the master ({master}) and each worker ({workers:?}) reopen the file at the configured \
         path:\n{}\n--- rotated:\n{}",
        read(&logfile),
        read(&rotated)
    );
    // Once each, and none of it in the rotated file.
    assert_eq!(read(&logfile).matches(reopened).count(), 3);
    assert!(!read(&rotated).contains(reopened), "{}", read(&rotated));

    // The master lives on (SIGUSR1 does not end it) and the workers serve on, logging to the
    // new file.
    for _ in 0..10 {
        let resp = http_get(server.port(), "/test_http/pid", &[]);
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    assert!(
        wait_until(Duration::from_secs(10), || read(&logfile)
            .contains("GET /test_http/pid HTTP/1.1\" 200")),
        "{}",
        read(&logfile)
    );
    let status = server.stop(Duration::from_secs(30));
    let log = read(&logfile);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{log}");
    assert!(!log.contains("died ("), "{log}");
}
