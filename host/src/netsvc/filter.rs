//! The per-target filter (Odoo's logger hierarchy): Odoo's default handlers, the
//! `--log-level` presets, and `--log-handler` entries, the longest matching prefix deciding.

use super::level::{parse_level, severity};

/// What Odoo always configures first.
const DEFAULT_HANDLERS: [&str; 3] = [
    "inphms.http.rpc.request:INFO",
    "inphms.http.rpc.response:INFO",
    ":INFO",
];

/// The handlers a `--log-level` preset stands for (Odoo's `PSEUDOCONFIG_MAPPER`).
fn preset(log_level: &str) -> &'static [&'static str] {
    match log_level {
        "debug_rpc_answer" => &[
            "inphms:DEBUG",
            "inphms.sql_db:INFO",
            "inphms.http.rpc:DEBUG",
        ],
        "debug_rpc" => &[
            "inphms:DEBUG",
            "inphms.sql_db:INFO",
            "inphms.http.rpc.request:DEBUG",
        ],
        "debug" => &["inphms:DEBUG", "inphms.sql_db:INFO"],
        "debug_sql" => &["inphms.sql_db:DEBUG"],
        "runbot" => &["inphms:RUNBOT", "werkzeug:WARNING"],
        "warn" => &["inphms:WARNING", "werkzeug:WARNING"],
        "error" => &["inphms:ERROR", "werkzeug:ERROR"],
        "critical" => &["inphms:CRITICAL", "werkzeug:CRITICAL"],
        "notset" => &[":NOTSET"],
        _ => &[],
    }
}

/// Per-target thresholds: the longest prefix of a target that has one decides, as Python's
/// logger hierarchy (segments split on `.` or `::`; the empty prefix is the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Filter {
    directives: Vec<(String, u8)>,
}

impl Filter {
    /// The root at `sev` only.
    pub(super) fn root(sev: u8) -> Filter {
        Filter {
            directives: vec![(String::new(), sev)],
        }
    }

    /// Odoo's defaults, then the `log_level` preset, then `handlers`, later entries winning.
    pub(super) fn from_options(log_level: &str, handlers: &[String]) -> Result<Filter, String> {
        let mut f = Filter::root(severity::INFO);
        let all = DEFAULT_HANDLERS
            .iter()
            .chain(preset(log_level))
            .map(|s| s.to_string())
            .chain(handlers.iter().cloned());
        for item in all {
            let (prefix, level) = item
                .rsplit_once(':')
                .ok_or_else(|| format!("PREFIX:LEVEL, got {item:?}"))?;
            let sev = parse_level(level).ok_or_else(|| format!("a log level, got {level:?}"))?;
            f.set(prefix.trim(), sev);
        }
        Ok(f)
    }

    /// Sets the threshold of `prefix`; NOTSET on a non-root prefix defers to its parent.
    fn set(&mut self, prefix: &str, sev: u8) {
        self.directives.retain(|(p, _)| p != prefix);
        if sev != severity::NOTSET || prefix.is_empty() {
            self.directives.push((prefix.to_owned(), sev));
        }
    }

    /// The threshold that applies to `target`.
    pub(super) fn threshold(&self, target: &str) -> u8 {
        self.directives
            .iter()
            .filter(|(p, _)| covers(p, target))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, s)| *s)
            .unwrap_or(severity::INFO)
    }

    pub(super) fn enabled(&self, sev: u8, target: &str) -> bool {
        sev >= self.threshold(target)
    }
}

/// Whether the logger `prefix` is `target` or one of its parents.
fn covers(prefix: &str, target: &str) -> bool {
    if prefix.is_empty() {
        return true;
    }
    match target.strip_prefix(prefix) {
        Some("") => true,
        Some(rest) => rest.starts_with('.') || rest.starts_with("::"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_hierarchy() {
        let f = Filter::from_options(
            "warn",
            &["inphms.http:DEBUG".into(), "hyper::proto:ERROR".into()],
        )
        .unwrap();
        assert!(f.enabled(severity::INFO, "other"));
        assert!(!f.enabled(severity::INFO, "inphms.service"));
        assert!(f.enabled(severity::WARNING, "inphms"));
        assert!(f.enabled(severity::DEBUG, "inphms.http.rpc"));
        assert!(!f.enabled(severity::DEBUG, "inphms.httpx"));
        assert!(!f.enabled(severity::WARNING, "hyper::proto::h1"));
        assert!(!f.enabled(severity::INFO, "werkzeug"));
        let n = Filter::from_options("notset", &[]).unwrap();
        assert!(n.enabled(severity::TRACE, "anything"));
        let c = Filter::from_options("info", &["inphms:NOTSET".into()]).unwrap();
        assert!(!c.enabled(severity::DEBUG, "inphms.x"));
    }
}
