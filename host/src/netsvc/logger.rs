//! The process's logger: the current filter and the output, shared by the `tracing` layer,
//! the addons' records and the batched access log.

use super::filter::Filter;
use super::format::{push_line, PID};
use super::level::{severity, severity_of};
use super::output;
use arc_swap::ArcSwap;
use std::sync::atomic::AtomicU32;
use tracing::Metadata;

/// The filter and the output, shared by the subscriber and [`super::log_record`].
pub(super) struct Logger {
    /// Read on every line (an `ArcSwap`: the workers share no written memory to read it).
    pub(super) filter: ArcSwap<Filter>,
    /// Bumped each time `filter` is replaced (from 1; see [`super::BatchedTarget`]).
    pub(super) generation: AtomicU32,
    pub(super) out: output::Output,
}

// global: the logging sink, as Odoo's `logging` root; `tracing` callbacks have no context.
pub(super) static LOGGER: std::sync::LazyLock<Logger> = std::sync::LazyLock::new(|| Logger {
    filter: ArcSwap::from_pointee(Filter::root(severity::INFO)),
    generation: AtomicU32::new(1),
    out: output::Output::stderr(),
});

impl Logger {
    pub(super) fn enabled(&self, sev: u8, target: &str) -> bool {
        self.filter.load().enabled(sev, target)
    }

    /// Whether events of a callsite can pass: an error callsite with a `critical` field is
    /// judged as CRITICAL.
    pub(super) fn enabled_meta(&self, meta: &Metadata<'_>) -> bool {
        let sev = if meta.fields().field("critical").is_some() {
            severity::CRITICAL
        } else {
            severity_of(meta.level())
        };
        self.enabled(sev, meta.target())
    }

    /// Writes one line; `batched` lines below WARNING may wait in the buffer (see
    /// [`output`]), every other line is written before this returns.
    pub(super) fn write(
        &self,
        sev: u8,
        db: Option<&str>,
        target: &str,
        batched: bool,
        at: std::time::SystemTime,
        message: impl FnOnce(&mut Vec<u8>),
    ) {
        self.out.line(!batched || sev >= severity::WARNING, |line| {
            push_line(line, at, *PID, sev, db, target, message)
        });
    }
}
