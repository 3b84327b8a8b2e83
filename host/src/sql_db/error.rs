//! [`DbError`]: a database error classified for its caller (unavailable, pool full, SQL
//! with its SQLSTATE), and which SQLSTATEs mean "try again" or "the server is away".

use std::fmt;

/// The SQLSTATEs after which Odoo's `retrying` runs the transaction again: serialization
/// failure, deadlock detected, lock not available.
pub const RETRY_SQLSTATES: [&str; 3] = ["40001", "40P01", "55P03"];

/// A database error, classified for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbError {
    /// The server cannot be reached, or the connection was lost.
    Unavailable(String),
    /// Every connection is taken and none was freed in time.
    PoolFull {
        /// The database asked for.
        db: String,
    },
    /// An error reported by PostgreSQL.
    Sql {
        /// The SQLSTATE, e.g. `40001`.
        sqlstate: String,
        /// PostgreSQL's message.
        message: String,
        /// PostgreSQL's detail and hint, when given.
        detail: Option<String>,
    },
    /// Anything else (a value that cannot be converted, a closed cursor...).
    Other(String),
}

impl DbError {
    /// The SQLSTATE of a [`DbError::Sql`].
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            DbError::Sql { sqlstate, .. } => Some(sqlstate),
            _ => None,
        }
    }

    /// Whether Odoo's `retrying` would run the transaction again.
    pub fn is_retryable(&self) -> bool {
        self.sqlstate()
            .is_some_and(|s| RETRY_SQLSTATES.contains(&s))
    }

    /// Whether the error is a statement kept prepared on the connection gone stale: its
    /// result's columns changed (`0A000`, "cached plan must not change result type", a
    /// `SELECT *` after a column was added), or it is gone (`26000`, after a `DISCARD
    /// ALL`). The connection's statements are then dropped and the transaction run again
    /// at once ([`PgConn`](super::pool::PgConn)).
    pub fn is_stale_statement(&self) -> bool {
        match self {
            DbError::Sql {
                sqlstate, message, ..
            } => {
                sqlstate == "26000"
                    || (sqlstate == "0A000" && message.contains("cached plan must not change"))
            }
            _ => false,
        }
    }

    /// Whether the connection is unusable (the server went away).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DbError::Unavailable(_))
    }

    /// From an error of a query (or of `BEGIN`/`COMMIT`).
    pub fn from_pg(e: &tokio_postgres::Error) -> DbError {
        if let Some(db) = e.as_db_error() {
            let code = db.code().code();
            if is_unavailable_sqlstate(code) {
                return DbError::Unavailable(format!("{} (SQLSTATE {code})", db.message()));
            }
            let mut detail = Vec::new();
            if let Some(d) = db.detail() {
                detail.push(format!("DETAIL: {d}"));
            }
            if let Some(h) = db.hint() {
                detail.push(format!("HINT: {h}"));
            }
            return DbError::Sql {
                sqlstate: db.code().code().to_owned(),
                message: db.message().to_owned(),
                detail: (!detail.is_empty()).then(|| detail.join("\n")),
            };
        }
        if e.is_closed() || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()) {
            return DbError::Unavailable(format!("connection lost: {e}"));
        }
        DbError::Other(e.to_string())
    }

    /// From an error while connecting: anything but a server-side refusal means the server
    /// is unreachable.
    pub fn from_connect(e: &tokio_postgres::Error) -> DbError {
        match e.as_db_error() {
            Some(_) => DbError::from_pg(e),
            None => DbError::Unavailable(format!("PostgreSQL is unreachable: {e}")),
        }
    }
}

/// Whether a SQLSTATE says the server is unavailable, as when it cannot be reached (tried
/// again within seconds): shutting down (`57P01` admin shutdown, `57P02` crash shutdown),
/// starting up (`57P03` cannot connect now) or a connection failure (class `08`). Not
/// `57P04` (database dropped): waiting will not bring the database back, and a cron worker
/// would pass again every few seconds forever.
pub fn is_unavailable_sqlstate(code: &str) -> bool {
    matches!(code, "57P01" | "57P02" | "57P03") || code.starts_with("08")
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Unavailable(m) | DbError::Other(m) => f.write_str(m),
            DbError::PoolFull { .. } => f.write_str("The Connection Pool Is Full"),
            DbError::Sql {
                sqlstate, message, ..
            } => write!(f, "{message} (SQLSTATE {sqlstate})"),
        }
    }
}

impl std::error::Error for DbError {}
