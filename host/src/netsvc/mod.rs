//! Logging (Odoo's `odoo/netsvc.py`): one `tracing` subscriber that writes Odoo's line
//! format to stderr or to `--logfile`, filtered per target as `--log-level` and
//! `--log-handler` say.
//!
//! A line: `2026-11-26 12:00:00,123 4242 INFO dbname inphms.service.server: message` (UTC
//! time with milliseconds, pid, Odoo's level name, the database of the current span or `?`,
//! the target, the message). Host code logs with `tracing` and Odoo-like dotted targets
//! (`tracing::info!(target: "inphms.service.server", ...)`); access-log lines use the target
//! `werkzeug`. An error event with the field `critical = true` is logged as `CRITICAL`.
//! Events inside [`db_span`] carry that database name. Addons' records, whose targets are
//! only known at run time, go through [`enabled`] and [`log_record`].
//!
//! [`init_early`] logs to stderr at INFO before the configuration is read; [`init`] then
//! applies the configuration. Both may be called more than once.
//!
//! The parts: `level` (Odoo's numeric levels), `filter` (the per-target thresholds),
//! `format` (a line), `logger` (filter and output of the process), `layer` (the `tracing`
//! layer), `install` (subscriber and configuration), `batched` (the access log's lines) and
//! [`output`] (buffers and the flusher thread). This file is the API addons and host reach.

mod batched;
mod filter;
mod format;
mod install;
mod layer;
mod level;
mod logger;
pub mod output;
mod syslog;
mod watched;

pub use batched::{log_batched, BatchedTarget};
pub(crate) use format::push_cached_second;
pub use install::{init, init_early};

use level::severity_of;
use logger::LOGGER;
use std::time::SystemTime;
use tracing::Level;

/// Whether a record of `level` for `target` would be written (addons ask before formatting).
pub fn enabled(level: Level, target: &str) -> bool {
    LOGGER.enabled(severity_of(&level), target)
}

/// Writes a record of an addon, under the addon's own `target`, with the database of the
/// current span, if it passes the filter.
pub fn log_record(level: Level, target: &str, message: &str) {
    let sev = severity_of(&level);
    if LOGGER.enabled(sev, target) {
        let db = layer::current_dbname();
        LOGGER.write(
            sev,
            db.as_deref(),
            target,
            false,
            SystemTime::now(),
            |line| line.extend_from_slice(message.as_bytes()),
        );
    }
}

/// Writes every buffered log line now: before the process exits or re-executes itself
/// (lines are otherwise written in batches, see [`output`]).
pub fn flush() {
    LOGGER.out.flush();
}

/// Reopens `--logfile` (SIGUSR1, after logrotate moved it): the lines from now on go to
/// the file at the configured path, created if needed. The file is also reopened by itself
/// when it was moved or removed (see `watched`); this makes it happen at once.
pub fn reopen() {
    watched::request_reopen();
    tracing::info!(target: "inphms.netsvc", "log file reopened (SIGUSR1)");
}

/// A span binding the database `name`: events inside it are logged with that name.
pub fn db_span(name: &str) -> tracing::Span {
    tracing::info_span!(target: "inphms", "db", dbname = name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn events_and_addon_records_carry_the_span_database() {
        let dir = std::env::temp_dir().join(format!("inphms-netsvc-{}", std::process::id()));
        let logfile = dir.join("test.log");
        let mut config = Config::defaults();
        config.logfile = Some(logfile.clone());
        config.log_handler = vec![":INFO".into(), "addon.quiet:ERROR".into()];
        init(&config).unwrap();
        tracing::info!(target: "inphms.test", "outside");
        db_span("db1").in_scope(|| {
            tracing::info!(target: "inphms.test", "inside");
            tracing::error!(target: "inphms.test", critical = true, "very bad");
            log_record(Level::WARN, "addon.foo", "from an addon");
            log_record(Level::WARN, "addon.quiet", "filtered");
        });
        assert!(enabled(Level::INFO, "addon.foo"));
        assert!(!enabled(Level::DEBUG, "addon.foo"));
        assert!(!enabled(Level::WARN, "addon.quiet.sub"));
        let log = std::fs::read_to_string(&logfile).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        // Other tests of this binary may log meanwhile: keep the lines of this one.
        let tails: Vec<&str> = log
            .lines()
            .map(|l| l.splitn(4, ' ').nth(3).unwrap())
            .filter(|t| t.contains(" inphms.test: ") || t.contains(" addon."))
            .collect();
        assert_eq!(
            tails,
            [
                "INFO ? inphms.test: outside",
                "INFO db1 inphms.test: inside",
                "CRITICAL db1 inphms.test: very bad",
                "WARNING db1 addon.foo: from an addon",
            ]
        );
    }
}
