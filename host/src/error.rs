//! The host's error type for the composition layer ([`Error`]): what start-up, the
//! registries, the cron command and the commands report when they cannot go on. Each variant
//! names the file, database, addon, job or value at fault and what was expected, in one line
//! ([`Display`](std::fmt::Display)); the underlying error, when there is one, is its
//! [`source`](std::error::Error::source).
//!
//! It sits at the bottom of the layers (it uses only `config` for the I/O reason), so every
//! layer may return it. Module-level checks keep their own typed errors (`ConfigError`,
//! `DbError`, `LoadError`, `ManifestError`) and convert where they reach this layer.

use std::path::PathBuf;

/// Any error, as the cause of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with the host's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the host cannot do what was asked. [`Display`](std::fmt::Display) gives one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A service used before the server set it up (e.g. `"the registries"`).
    #[error("{0} are not set up")]
    NotSetUp(&'static str),
    /// An addon that cannot be loaded or used.
    #[error("addon '{addon}' {reason}")]
    Addon {
        /// The addon's technical name.
        addon: String,
        /// What is wrong and what was expected, e.g. `cannot be loaded: ...`.
        reason: String,
    },
    /// A database that cannot be used.
    #[error("database {db}: {source}")]
    Database {
        /// The database name.
        db: String,
        /// The database error.
        #[source]
        source: BoxError,
    },
    /// A database without the module tables (`ir_module_module`).
    #[error(
        "database {db} is not initialized (no ir_module_module); install base with -d {db} -i base"
    )]
    NotInitialized {
        /// The database name.
        db: String,
    },
    /// A database of `-d` that failed to initialise at start-up.
    #[error("Failed to initialize database `{db}`: {source}")]
    InitDatabase {
        /// The database name.
        db: String,
        /// Why.
        #[source]
        source: Box<Error>,
    },
    /// A cron job asked for by id or name that does not exist.
    #[error("no cron job {job:?} in {db}")]
    NoSuchJob {
        /// The database name.
        db: String,
        /// The id or name asked for.
        job: String,
    },
    /// A cron job whose lock another worker holds.
    #[error("Job {job:?} is already running: try again in a few minutes")]
    JobRunning {
        /// The id or name asked for.
        job: String,
    },
    /// A file or folder that cannot be read, written or created.
    #[error("{action} {}: {}", path.display(), crate::config::io_reason(source))]
    Io {
        /// What was being done, e.g. `cannot write`.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file or folder that is in the way.
    #[error("{} already exists", path.display())]
    Exists {
        /// The file or folder.
        path: PathBuf,
    },
    /// A value that is not what was expected.
    #[error("{value}: expected {expected}")]
    Invalid {
        /// The value at fault, quoted, with what it names (e.g. `'9lives' gives the addon
        /// name '9lives'`).
        value: String,
        /// What was expected.
        expected: String,
    },
}

impl Error {
    /// A [`Error::Database`] error of `db`.
    pub fn database(db: &str, source: impl Into<BoxError>) -> Error {
        Error::Database {
            db: db.to_owned(),
            source: source.into(),
        }
    }

    /// An [`Error::Io`] error: `action` (e.g. `cannot write`) on `path` failed.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn messages_name_what_is_at_fault_and_keep_the_cause() {
        let e = Error::io(
            "cannot write",
            "/x/pid",
            std::io::Error::from_raw_os_error(13),
        );
        assert_eq!(e.to_string(), "cannot write /x/pid: Permission denied");
        assert!(e.source().is_some());
        let e = Error::InitDatabase {
            db: "shop".into(),
            source: Box::new(Error::NotInitialized { db: "shop".into() }),
        };
        assert_eq!(
            e.to_string(),
            "Failed to initialize database `shop`: database shop is not initialized (no \
             ir_module_module); install base with -d shop -i base"
        );
        assert_eq!(
            e.source().map(|s| s.to_string()).as_deref(),
            Some("database shop is not initialized (no ir_module_module); install base with -d shop -i base")
        );
        assert_eq!(
            Error::NotSetUp("the registries").to_string(),
            "the registries are not set up"
        );
    }
}
