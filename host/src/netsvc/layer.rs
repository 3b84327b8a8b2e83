//! The `tracing` layer writing Odoo's lines: the database carried by a [`super::db_span`]
//! and an event's message, `critical` flag and other fields. Records of libraries logging
//! through the `log` crate keep their own target and level (not `log`), and PostgreSQL's
//! notices (tokio-postgres's connection) are `inphms.sql_db` lines, as Odoo's.

use super::level::{severity, severity_of};
use super::logger::LOGGER;
use std::time::SystemTime;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::{LookupSpan, Registry};

/// The database name carried by a span.
struct DbName(String);

/// Finds the `dbname` field of a span.
#[derive(Default)]
struct DbVisitor(Option<String>);

impl Visit for DbVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "dbname" {
            self.0 = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "dbname" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// The message of an event, its `critical` flag and its other fields as ` key=value`.
#[derive(Default)]
struct EventVisitor {
    message: String,
    extra: String,
    critical: bool,
}

/// The target a record of the `log` crate is written under: PostgreSQL's notices and the
/// driver's messages under `inphms.sql_db`, the others under their own module path.
fn log_target(target: &str) -> &str {
    if target == "tokio_postgres" || target.starts_with("tokio_postgres::") {
        "inphms.sql_db"
    } else {
        target
    }
}

impl Visit for EventVisitor {
    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "critical" {
            self.critical = value;
        } else {
            self.record_debug(field, &value);
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else if field.name().starts_with("log.") {
            // Where a `log` record came from: its target is used, the rest is noise.
        } else {
            self.extra.push_str(&format!(" {}={value}", field.name()));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else if field.name().starts_with("log.") {
        } else {
            self.extra.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

/// The layer writing Odoo's lines.
pub(super) struct OdooLayer;

impl<S> Layer<S> for OdooLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if meta.is_span() || LOGGER.enabled_meta(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        meta.is_span() || LOGGER.enabled_meta(meta)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut v = DbVisitor::default();
        attrs.record(&mut v);
        if let (Some(db), Some(span)) = (v.0, ctx.span(id)) {
            span.extensions_mut().insert(DbName(db));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut v = DbVisitor::default();
        values.record(&mut v);
        if let (Some(db), Some(span)) = (v.0, ctx.span(id)) {
            let mut ext = span.extensions_mut();
            ext.remove::<DbName>();
            ext.insert(DbName(db));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let normalized = event.normalized_metadata();
        let (meta, target) = match &normalized {
            Some(m) => (m, log_target(m.target())),
            None => (event.metadata(), event.metadata().target()),
        };
        let mut v = EventVisitor::default();
        event.record(&mut v);
        let sev = if v.critical {
            severity::CRITICAL
        } else {
            severity_of(meta.level())
        };
        if !LOGGER.enabled(sev, target) {
            return;
        }
        let db = ctx.event_scope(event).and_then(|scope| {
            scope
                .into_iter()
                .find_map(|s| s.extensions().get::<DbName>().map(|d| d.0.clone()))
        });
        v.message.push_str(&v.extra);
        LOGGER.write(
            sev,
            db.as_deref(),
            target,
            false,
            SystemTime::now(),
            |line| line.extend_from_slice(v.message.as_bytes()),
        );
    }
}

/// The database of the current span, if any.
pub(super) fn current_dbname() -> Option<String> {
    tracing::dispatcher::get_default(|d| {
        let registry = d.downcast_ref::<Registry>()?;
        let current = d.current_span();
        let span = registry.span(current.id()?)?;
        span.scope()
            .find_map(|s| s.extensions().get::<DbName>().map(|db| db.0.clone()))
    })
}
