//! Installing the subscriber and applying the configuration: [`init_early`] before the
//! configuration is read, [`init`] with it (filter, output file, flusher thread).

use super::filter::Filter;
use super::layer::OdooLayer;
use super::logger::LOGGER;
use crate::config::{Config, ConfigError};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Once;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::Registry;

// global: the process-wide `tracing` subscriber is installed once, as `tracing` requires.
static INSTALL: Once = Once::new();

/// Installs the subscriber once (unless the process already has one).
fn install() {
    INSTALL.call_once(|| {
        let _ = tracing::subscriber::set_global_default(Registry::default().with(OdooLayer));
        // Libraries that log through the `log` crate (tokio-postgres, deadpool) reach the
        // same log, under their module path as target (INFO and above).
        let _ = tracing_log::LogTracer::init_with_filter(tracing_log::log::LevelFilter::Info);
    });
}

/// Logging before the configuration is read: stderr, INFO.
pub fn init_early() {
    install();
}

/// Applies the logging options of `config`: `log_level`, `log_handler`, `syslog` (the
/// local syslog, before the log file) and `logfile` (its
/// folder is created; a file that cannot be opened is an error naming the option; the file
/// is reopened when moved or removed, see `watched`).
pub fn init(config: &Config) -> Result<(), ConfigError> {
    let filter =
        Filter::from_options(&config.log_level, &config.log_handler).map_err(|expected| {
            ConfigError::Invalid {
                option: "log_handler".into(),
                value: format!("{:?}", config.log_handler.join(",")),
                origin: config.origin("log_handler"),
                expected,
            }
        })?;
    let out: Box<dyn Write + Send> = match &config.logfile {
        _ if config.syslog => {
            let path = &config.syslog_socket;
            match super::syslog::Syslog::connect(path, crate::release::VERSION) {
                Ok(s) => Box::new(s),
                Err(e) => {
                    let reason = crate::config::io_reason(&e);
                    return Err(ConfigError::Invalid {
                        option: "syslog_socket".into(),
                        value: format!("{:?}", path.display().to_string()),
                        origin: config.origin("syslog_socket"),
                        expected: format!(
                            "the socket of a running syslog daemon, for --syslog ({reason})"
                        ),
                    });
                }
            }
        }
        None => Box::new(std::io::stderr()),
        Some(path) => {
            let opened = path
                .parent()
                .filter(|dir| !dir.exists())
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| super::watched::WatchedFile::open(path));
            match opened {
                Ok(f) => Box::new(f),
                Err(e) => {
                    let reason = crate::config::io_reason(&e);
                    return Err(ConfigError::Invalid {
                        option: "logfile".into(),
                        value: format!("{:?}", path.display().to_string()),
                        origin: config.origin("logfile"),
                        expected: format!("a file that can be created or appended to ({reason})"),
                    });
                }
            }
        }
    };
    install();
    LOGGER.filter.store(std::sync::Arc::new(filter));
    LOGGER.generation.fetch_add(1, Ordering::Release);
    LOGGER.out.set_sink(out);
    LOGGER.out.start_flusher();
    tracing::callsite::rebuild_interest_cache();
    Ok(())
}
