//! Odoo's numeric log levels (Python's `logging`): the severity of a `tracing` level, the
//! name printed for a severity, and the severity of a `--log-handler` level name.

use tracing::Level;

/// Odoo's numeric levels, which order the filter.
pub(super) mod severity {
    pub const NOTSET: u8 = 0;
    pub const TRACE: u8 = 5;
    pub const DEBUG: u8 = 10;
    pub const INFO: u8 = 20;
    pub const RUNBOT: u8 = 25;
    pub const WARNING: u8 = 30;
    pub const ERROR: u8 = 40;
    pub const CRITICAL: u8 = 50;
}

/// The severity of a `tracing` level.
pub(super) fn severity_of(level: &Level) -> u8 {
    match *level {
        Level::TRACE => severity::TRACE,
        Level::DEBUG => severity::DEBUG,
        Level::INFO => severity::INFO,
        Level::WARN => severity::WARNING,
        Level::ERROR => severity::ERROR,
    }
}

/// The name Odoo prints for a severity.
pub(super) fn level_name(sev: u8) -> &'static str {
    match sev {
        s if s >= severity::CRITICAL => "CRITICAL",
        s if s >= severity::ERROR => "ERROR",
        s if s >= severity::WARNING => "WARNING",
        s if s >= severity::INFO => "INFO",
        _ => "DEBUG",
    }
}

/// The severity of a `--log-handler` level name.
pub(super) fn parse_level(name: &str) -> Option<u8> {
    Some(match name.to_ascii_uppercase().as_str() {
        "NOTSET" => severity::NOTSET,
        "DEBUG" => severity::DEBUG,
        "INFO" => severity::INFO,
        "RUNBOT" => severity::RUNBOT,
        "WARNING" | "WARN" => severity::WARNING,
        "ERROR" => severity::ERROR,
        "CRITICAL" => severity::CRITICAL,
        _ => return None,
    })
}
