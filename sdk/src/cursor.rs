//! Database access for addons (Odoo's `env.cr`): a [`Cursor`] on the database of the running
//! request or cron job, with [`SqlValue`]s for parameters and result cells.
//!
//! Addons never connect to PostgreSQL themselves: the host owns the connections and the
//! transaction. A route or cron handler gets the cursor of its invocation
//! ([`Request::cursor`], [`CronContext::cursor`]); the host opens the transaction on the
//! first statement (`REPEATABLE READ`, read-only for `readonly` routes), commits it when the
//! handler succeeds, rolls it back when it fails, and re-runs the whole handler (up to 5
//! times, as Odoo's `retrying`) after a serialization failure, a deadlock or a lock that could
//! not be taken. A SQL error reaches the handler as an [`Error`] (never a panic), whose
//! [`Error::sqlstate`] tells the PostgreSQL error code.
//!
//! ```no_run
//! use inphms_sdk::{params, route, Request, Result};
//! use serde_json::{json, Value};
//!
//! /// `{"params": {"name": "x"}}` stores a note and answers its id and the note count.
//! #[route("/notes/add", type = "json", auth = "none")]
//! fn add_note(req: &mut Request, name: String) -> Result<Value> {
//!     let mut cr = req.cursor()?;
//!     let rows = cr.execute(
//!         "INSERT INTO note (name) VALUES ($1) RETURNING id",
//!         params![name],
//!     )?;
//!     let id: i64 = rows.first().expect("one row").get("id")?;
//!     let count: i64 = cr.execute("SELECT count(*) AS n FROM note", &[])?.first().unwrap().get("n")?;
//!     cr.notify("notes", &id.to_string())?; // delivered when the transaction commits
//!     Ok(json!({"id": id, "count": count}))
//! }
//! # fn main() {}
//! ```

use crate::abi::{self, SqlRows};
use crate::{CronContext, Error, Request, Result};
use abi_stable::std_types::{RStr, RVec};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use std::fmt;
use std::sync::Arc;

/// A SQL value: a parameter or a result cell.
///
/// `numeric` is kept as its exact decimal text ([`SqlValue::as_f64`] converts it, as Odoo
/// reads numerics as floats); `timestamp with time zone` arrives in UTC.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// `NULL`.
    Null,
    /// `boolean`.
    Bool(bool),
    /// `smallint`, `integer`, `bigint`, `oid`.
    Int(i64),
    /// `real`, `double precision`.
    Float(f64),
    /// `numeric`, as exact decimal text (`"12.50"`).
    Numeric(String),
    /// `text`, `varchar`... and any type without a better mapping (as its text form).
    Text(String),
    /// `bytea`.
    Bytes(Vec<u8>),
    /// `json`, `jsonb`.
    Json(serde_json::Value),
    /// `timestamp` (UTC for `timestamptz`).
    Timestamp(NaiveDateTime),
    /// `date`.
    Date(NaiveDate),
}

impl From<abi::SqlValue> for SqlValue {
    fn from(v: abi::SqlValue) -> SqlValue {
        SqlValue::from_abi(v)
    }
}

/// The former name of [`SqlValue`], kept so that addons written against it still build.
#[deprecated(note = "renamed `SqlValue`: `Value` clashed with `serde_json::Value` in addon code")]
pub type Value = SqlValue;

impl SqlValue {
    /// Whether it is `NULL`.
    pub fn is_null(&self) -> bool {
        matches!(self, SqlValue::Null)
    }

    /// An integer (also a whole float or numeric).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            SqlValue::Int(i) => Some(*i),
            SqlValue::Numeric(s) => s.parse().ok(),
            SqlValue::Float(f) if f.fract() == 0.0 => Some(*f as i64),
            _ => None,
        }
    }

    /// A number: integers, floats and numerics.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            SqlValue::Int(i) => Some(*i as f64),
            SqlValue::Float(f) => Some(*f),
            SqlValue::Numeric(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// A boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            SqlValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Text (also a numeric's decimal text).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            SqlValue::Text(s) | SqlValue::Numeric(s) => Some(s),
            _ => None,
        }
    }

    /// Bytes.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            SqlValue::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// JSON.
    pub fn as_json(&self) -> Option<&serde_json::Value> {
        match self {
            SqlValue::Json(v) => Some(v),
            _ => None,
        }
    }

    /// A timestamp.
    pub fn as_timestamp(&self) -> Option<NaiveDateTime> {
        match self {
            SqlValue::Timestamp(t) => Some(*t),
            _ => None,
        }
    }

    /// A date.
    pub fn as_date(&self) -> Option<NaiveDate> {
        match self {
            SqlValue::Date(d) => Some(*d),
            _ => None,
        }
    }

    pub(crate) fn into_abi(self) -> abi::SqlValue {
        match self {
            SqlValue::Null => abi::SqlValue::Null,
            SqlValue::Bool(b) => abi::SqlValue::Bool(b),
            SqlValue::Int(i) => abi::SqlValue::Int(i),
            SqlValue::Float(f) => abi::SqlValue::Float(f),
            SqlValue::Numeric(s) => abi::SqlValue::Numeric(s.into()),
            SqlValue::Text(s) => abi::SqlValue::Text(s.into()),
            SqlValue::Bytes(b) => abi::SqlValue::Bytes(b.into()),
            SqlValue::Json(v) => abi::SqlValue::Json(v.to_string().into()),
            SqlValue::Timestamp(t) => abi::SqlValue::Timestamp(t.and_utc().timestamp_micros()),
            SqlValue::Date(d) => {
                let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
                abi::SqlValue::Date(d.signed_duration_since(epoch).num_days() as i32)
            }
        }
    }

    pub(crate) fn from_abi(v: abi::SqlValue) -> SqlValue {
        match v {
            abi::SqlValue::Null => SqlValue::Null,
            abi::SqlValue::Bool(b) => SqlValue::Bool(b),
            abi::SqlValue::Int(i) => SqlValue::Int(i),
            abi::SqlValue::Float(f) => SqlValue::Float(f),
            abi::SqlValue::Numeric(s) => SqlValue::Numeric(s.into_string()),
            abi::SqlValue::Text(s) => SqlValue::Text(s.into_string()),
            abi::SqlValue::Bytes(b) => SqlValue::Bytes(b.into_vec()),
            abi::SqlValue::Json(s) => {
                SqlValue::Json(serde_json::from_str(&s).unwrap_or(serde_json::Value::Null))
            }
            abi::SqlValue::Timestamp(us) => match DateTime::from_timestamp_micros(us) {
                Some(t) => SqlValue::Timestamp(t.naive_utc()),
                None if us > 0 => SqlValue::Timestamp(NaiveDateTime::MAX),
                None => SqlValue::Timestamp(NaiveDateTime::MIN),
            },
            abi::SqlValue::Date(days) => {
                let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
                SqlValue::Date(
                    epoch
                        .checked_add_signed(chrono::Duration::days(days as i64))
                        .unwrap_or(if days > 0 {
                            NaiveDate::MAX
                        } else {
                            NaiveDate::MIN
                        }),
                )
            }
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $v:expr),+ $(,)?) => {$(
        impl From<$t> for SqlValue {
            fn from(x: $t) -> SqlValue {
                #[allow(clippy::redundant_closure_call)]
                ($v)(x)
            }
        }
    )+};
}

value_from! {
    bool => SqlValue::Bool,
    i16 => |x: i16| SqlValue::Int(x as i64),
    i32 => |x: i32| SqlValue::Int(x as i64),
    i64 => SqlValue::Int,
    u32 => |x: u32| SqlValue::Int(x as i64),
    f32 => |x: f32| SqlValue::Float(x as f64),
    f64 => SqlValue::Float,
    String => SqlValue::Text,
    &str => |x: &str| SqlValue::Text(x.to_owned()),
    &String => |x: &String| SqlValue::Text(x.clone()),
    Vec<u8> => SqlValue::Bytes,
    &[u8] => |x: &[u8]| SqlValue::Bytes(x.to_vec()),
    serde_json::Value => SqlValue::Json,
    NaiveDateTime => SqlValue::Timestamp,
    NaiveDate => SqlValue::Date,
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(x: Option<T>) -> SqlValue {
        x.map_or(SqlValue::Null, Into::into)
    }
}

impl fmt::Display for SqlValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlValue::Null => f.write_str("NULL"),
            SqlValue::Bool(b) => write!(f, "{b}"),
            SqlValue::Int(i) => write!(f, "{i}"),
            SqlValue::Float(x) => write!(f, "{x}"),
            SqlValue::Numeric(s) | SqlValue::Text(s) => f.write_str(s),
            SqlValue::Bytes(b) => write!(f, "<{} bytes>", b.len()),
            SqlValue::Json(v) => write!(f, "{v}"),
            SqlValue::Timestamp(t) => write!(f, "{t}"),
            SqlValue::Date(d) => write!(f, "{d}"),
        }
    }
}

/// Conversion of a [`SqlValue`] into a Rust type, for [`Row::get`].
pub trait FromValue: Sized {
    /// `None` when the value is of another kind (or `NULL` for a non-`Option`).
    fn from_value(v: &SqlValue) -> Option<Self>;
}

macro_rules! from_value {
    ($($t:ty => $f:expr),+ $(,)?) => {$(
        impl FromValue for $t {
            fn from_value(v: &SqlValue) -> Option<Self> {
                #[allow(clippy::redundant_closure_call)]
                ($f)(v)
            }
        }
    )+};
}

from_value! {
    i64 => SqlValue::as_i64,
    i32 => |v: &SqlValue| v.as_i64().and_then(|i| i32::try_from(i).ok()),
    f64 => SqlValue::as_f64,
    bool => SqlValue::as_bool,
    String => |v: &SqlValue| v.as_str().map(str::to_owned),
    Vec<u8> => |v: &SqlValue| v.as_bytes().map(<[u8]>::to_vec),
    serde_json::Value => |v: &SqlValue| v.as_json().cloned(),
    NaiveDateTime => SqlValue::as_timestamp,
    NaiveDate => SqlValue::as_date,
    SqlValue => |v: &SqlValue| Some(v.clone()),
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &SqlValue) -> Option<Self> {
        if v.is_null() {
            Some(None)
        } else {
            T::from_value(v).map(Some)
        }
    }
}

/// Builds the parameter list of [`Cursor::execute`] from expressions convertible into
/// [`SqlValue`]: `params![id, "name", None::<i64>]`.
#[macro_export]
macro_rules! params {
    ($($x:expr),* $(,)?) => {
        &[$($crate::SqlValue::from($x)),*][..]
    };
}

/// One result row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<SqlValue>,
}

impl Row {
    /// The column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The values, in column order.
    pub fn values(&self) -> &[SqlValue] {
        &self.values
    }

    /// The value of the column `name` (the first one of that name), if any.
    pub fn value(&self, name: &str) -> Option<&SqlValue> {
        let i = self.columns.iter().position(|c| c == name)?;
        self.values.get(i)
    }

    /// The column `name` converted to `T`; an error names the column when it is missing or
    /// of another type.
    pub fn get<T: FromValue>(&self, name: &str) -> Result<T> {
        let v = self
            .value(name)
            .ok_or_else(|| Error::internal(format!("no column '{name}' in the result")))?;
        T::from_value(v).ok_or_else(|| {
            Error::internal(format!(
                "column '{name}' holds {v:?}, which is not a {}",
                std::any::type_name::<T>()
            ))
        })
    }

    /// The value at `index`, converted to `T`.
    pub fn at<T: FromValue>(&self, index: usize) -> Result<T> {
        let v = self
            .values
            .get(index)
            .ok_or_else(|| Error::internal(format!("no column {index} in the result")))?;
        T::from_value(v).ok_or_else(|| {
            Error::internal(format!(
                "column {index} holds {v:?}, which is not a {}",
                std::any::type_name::<T>()
            ))
        })
    }
}

/// The result of [`Cursor::execute`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    columns: Vec<String>,
    rows: Vec<Row>,
    rowcount: u64,
}

impl Rows {
    pub(crate) fn from_abi(r: SqlRows) -> Rows {
        let columns: Vec<String> = r.columns.into_iter().map(|c| c.into_string()).collect();
        let shared: Arc<[String]> = columns.clone().into();
        let rows = r
            .rows
            .into_iter()
            .map(|values| Row {
                columns: Arc::clone(&shared),
                values: values.into_iter().map(SqlValue::from_abi).collect(),
            })
            .collect();
        Rows {
            columns,
            rows,
            rowcount: r.rowcount,
        }
    }

    /// The column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The rows.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The first row, if any.
    pub fn first(&self) -> Option<&Row> {
        self.rows.first()
    }

    /// The number of rows returned.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row was returned.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Rows returned by a query, or affected by `INSERT`, `UPDATE`, `DELETE`.
    pub fn rowcount(&self) -> u64 {
        self.rowcount
    }

    /// Iterates over the rows.
    pub fn iter(&self) -> std::slice::Iter<'_, Row> {
        self.rows.iter()
    }
}

impl IntoIterator for Rows {
    type Item = Row;
    type IntoIter = std::vec::IntoIter<Row>;
    fn into_iter(self) -> Self::IntoIter {
        self.rows.into_iter()
    }
}

impl<'a> IntoIterator for &'a Rows {
    type Item = &'a Row;
    type IntoIter = std::slice::Iter<'a, Row>;
    fn into_iter(self) -> Self::IntoIter {
        self.rows.iter()
    }
}

/// The database cursor of a request or cron job (Odoo's `env.cr`); see the
/// [module docs](self). Cheap to copy around: it is a handle to the host's cursor.
#[derive(Debug, Clone)]
pub struct Cursor {
    handle: u64,
    db: String,
}

fn no_database_support() -> Error {
    Error::internal("this host offers no database access (HostApi without cursor_* callbacks)")
}

impl Cursor {
    /// The cursor of the running invocation, on `db`.
    fn env(db: &str) -> Result<Cursor> {
        let api = crate::host::api()?;
        let f = api.cursor_env().ok_or_else(no_database_support)?;
        let handle = f(api.ctx())
            .into_result()
            .map_err(|e| Error::from_info(&e))?;
        Ok(Cursor {
            handle,
            db: db.to_owned(),
        })
    }

    /// The cursor of the running invocation (a request's, an event callback's or a cron
    /// job's), its database name unknown here (the bus computes it in SQL).
    pub(crate) fn current() -> Result<Cursor> {
        Cursor::env("")
    }

    /// The host's handle of this cursor.
    pub(crate) fn handle(&self) -> u64 {
        self.handle
    }

    /// The database's name.
    pub fn dbname(&self) -> &str {
        &self.db
    }

    /// Runs one statement with `$1, $2...` parameters (see [`params!`](crate::params)) and
    /// returns its rows (none for a statement without result columns) and row count.
    pub fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<Rows> {
        let api = crate::host::api()?;
        let f = api.cursor_execute().ok_or_else(no_database_support)?;
        let params: RVec<abi::SqlValue> = params.iter().cloned().map(SqlValue::into_abi).collect();
        f(api.ctx(), self.handle, RStr::from_str(sql), params)
            .into_result()
            .map(Rows::from_abi)
            .map_err(|e| Error::from_info(&e))
    }

    /// Commits the transaction now; the next statement starts a new one. On a cron job's
    /// cursor, a checkpoint: see [`CronContext::cursor`].
    pub fn commit(&mut self) -> Result<()> {
        let api = crate::host::api()?;
        let f = api.cursor_commit().ok_or_else(no_database_support)?;
        f(api.ctx(), self.handle)
            .into_result()
            .map_err(|e| Error::from_info(&e))
    }

    /// Rolls the transaction back now; the next statement starts a new one. On a cron job's
    /// cursor, the work since the run's start or its last commit is undone and the job stays
    /// locked, in the same transaction: see [`CronContext::cursor`].
    pub fn rollback(&mut self) -> Result<()> {
        let api = crate::host::api()?;
        let f = api.cursor_rollback().ok_or_else(no_database_support)?;
        f(api.ctx(), self.handle)
            .into_result()
            .map_err(|e| Error::from_info(&e))
    }

    /// Sends a PostgreSQL notification on `channel` (`pg_notify`), delivered to the
    /// listeners of this database when the transaction commits.
    pub fn notify(&mut self, channel: &str, payload: &str) -> Result<()> {
        self.execute("SELECT pg_notify($1, $2)", params![channel, payload])
            .map(|_| ())
    }

    /// Triggers the cron jobs named `job` (their name or their handler's) to run now: a
    /// trigger row in this transaction, and a wake-up of the cron workers once it commits
    /// (Odoo's `ir.cron._trigger()`). Returns the number of jobs triggered.
    pub fn trigger_cron(&mut self, job: &str) -> Result<u64> {
        let api = crate::host::api()?;
        let f = api.cron_trigger().ok_or_else(no_database_support)?;
        f(api.ctx(), self.handle, RStr::from_str(job))
            .into_result()
            .map_err(|e| Error::from_info(&e))
    }
}

impl Request<'_> {
    /// The database cursor of this request (see [`Cursor`]); an error when the request has
    /// no database (no database selected, or the host has none).
    pub fn cursor(&self) -> Result<Cursor> {
        let db = self
            .db()
            .ok_or_else(|| Error::internal("this request has no database"))?;
        Cursor::env(db)
    }
}

impl Cursor {
    /// The cursor of a command run on a database: `inphms-host CMD -d DB ...` runs the
    /// addon's command in one transaction on `DB`, committed when the command returns 0
    /// (rolled back on another exit code or an error). `db` is the name the command read
    /// from its `-d`; an error when the command was run without one.
    ///
    /// ```no_run
    /// use inphms_sdk::{command, Cursor};
    ///
    /// /// `inphms-host count-users -d mydb`
    /// #[command(name = "count-users")]
    /// fn count_users(args: &[String]) -> i32 {
    ///     let db = args.iter().skip_while(|a| *a != "-d").nth(1).cloned().unwrap_or_default();
    ///     let Ok(mut cr) = Cursor::command(&db) else { return 1 };
    ///     match cr.execute("SELECT count(*) FROM res_users", &[]) {
    ///         Ok(rows) => { println!("{:?}", rows.first().map(|r| r.values().to_vec())); 0 }
    ///         Err(e) => { eprintln!("{e}"); 1 }
    ///     }
    /// }
    /// # fn main() {}
    /// ```
    pub fn command(db: &str) -> Result<Cursor> {
        Cursor::env(db)
    }
}

impl CronContext {
    /// The database cursor of this job's run (see [`Cursor`]): the job's own transaction,
    /// which holds its lock and receives its bookkeeping. Committed with that bookkeeping
    /// when the handler succeeds (so its work is done exactly once); rolled back, with the
    /// failure recorded, when it fails. [`Cursor::commit`] on it is a checkpoint (the run is
    /// recorded as started and the work so far is never run again); [`Cursor::rollback`]
    /// undoes the work since the start or the last checkpoint, keeping the job's lock. The
    /// job stays held between checkpoints too: no other run of it starts until this one ends.
    pub fn cursor(&self) -> Result<Cursor> {
        Cursor::env(&self.db)
    }
}

impl Error {
    /// The PostgreSQL error code (SQLSTATE, e.g. `23505`) when this error is a SQL error
    /// raised by the database.
    pub fn sqlstate(&self) -> Option<&str> {
        if !self.name().starts_with("inphms.sql_db.") {
            return None;
        }
        self.arguments().get(1).and_then(serde_json::Value::as_str)
    }
}

/// The databases visible from the host name `host` (Odoo's `db_list`, as served by
/// `/web/database/list`): an access error when the server hides the list.
pub fn db_list(host: &str) -> Result<Vec<String>> {
    let api = crate::host::api()?;
    let f = api.db_list().ok_or_else(no_database_support)?;
    f(api.ctx(), RStr::from_str(host))
        .into_result()
        .map(|v| v.into_iter().map(|s| s.into_string()).collect())
        .map_err(|e| Error::from_info(&e))
}

/// Calls the host's database manager (Odoo's `dispatch_rpc('db', method, params)`):
/// `params` in Odoo's order, the master password first for the guarded calls. A wrong
/// master password is an `AccessDenied` error; Odoo's other exceptions keep their name
/// ([`Error::name`], e.g. `odoo.service.db.DatabaseExists`).
///
/// ```no_run
/// # fn f() -> inphms_sdk::Result<()> {
/// let dbs = inphms_sdk::cursor::db_service("list", &serde_json::json!([]))?;
/// inphms_sdk::cursor::db_service("drop", &serde_json::json!(["master password", "old_db"]))?;
/// # let _ = dbs; Ok(())
/// # }
/// ```
pub fn db_service(method: &str, params: &serde_json::Value) -> Result<serde_json::Value> {
    let api = crate::host::api()?;
    let f = api.db_service().ok_or_else(|| {
        Error::internal("this host offers no database manager (HostApi without db_service)")
    })?;
    let params = params.to_string();
    let out = f(api.ctx(), RStr::from_str(method), RStr::from_str(&params))
        .into_result()
        .map_err(|e| Error::from_info(&e))?;
    serde_json::from_str(&out)
        .map_err(|e| Error::internal(format!("the database manager answered no JSON: {e}")))
}

/// Whether the PostgreSQL server answers, as Odoo's `/web/health?db_server_status=1`
/// checks it (`db_connect('postgres').cursor().close()`): the host runs `SELECT 1` on a
/// connection to the server's `postgres` database. An error (naming the server and the
/// cause) when it cannot be reached, is starting or stopping, or the host has no database
/// access. It waits at most the host's connection timeout; call it from a health route, not
/// on every request.
///
/// ```no_run
/// use inphms_sdk::{route, Request, Response};
///
/// #[route("/myaddon/ready", auth = "none", save_session = false)]
/// fn ready(_req: &mut Request) -> Response {
///     match inphms_sdk::cursor::db_server_status() {
///         Ok(()) => Response::new(200).body(&b"ready"[..]),
///         Err(e) => Response::new(503).body(e.to_string().into_bytes()),
///     }
/// }
/// # fn main() {}
/// ```
pub fn db_server_status() -> Result<()> {
    let api = crate::host::api()?;
    let f = api.db_server_status().ok_or_else(no_database_support)?;
    f(api.ctx()).into_result().map_err(|e| Error::from_info(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cross_the_abi_unchanged() {
        let t = NaiveDate::from_ymd_opt(2024, 2, 29)
            .unwrap()
            .and_hms_micro_opt(13, 14, 15, 123456)
            .unwrap();
        let d = NaiveDate::from_ymd_opt(1969, 12, 31).unwrap();
        for v in [
            SqlValue::Null,
            SqlValue::from(true),
            SqlValue::from(-7i32),
            SqlValue::from(1.5f64),
            SqlValue::Numeric("-12.500".into()),
            SqlValue::from("héllo"),
            SqlValue::from(vec![0u8, 255]),
            SqlValue::from(serde_json::json!({"a": [1, 2]})),
            SqlValue::from(t),
            SqlValue::from(d),
        ] {
            assert_eq!(SqlValue::from_abi(v.clone().into_abi()), v);
        }
    }

    /// Addon code written against the former name still builds (with a deprecation
    /// warning), variants and patterns included.
    #[test]
    #[allow(deprecated)]
    fn the_former_name_still_works() {
        let v: crate::Value = crate::Value::Text("x".into());
        assert!(matches!(v, crate::Value::Text(ref t) if t == "x"));
        assert_eq!(v, SqlValue::from("x"));
    }

    #[test]
    fn rows_and_typed_access() {
        let rows = Rows::from_abi(SqlRows {
            columns: vec!["id".into(), "name".into(), "price".into()].into(),
            rows: vec![vec![
                abi::SqlValue::Int(3),
                abi::SqlValue::Null,
                abi::SqlValue::Numeric("2.50".into()),
            ]
            .into()]
            .into(),
            rowcount: 1,
        });
        let row = rows.first().unwrap();
        assert_eq!(row.get::<i64>("id").unwrap(), 3);
        assert_eq!(row.get::<Option<String>>("name").unwrap(), None);
        assert_eq!(row.get::<f64>("price").unwrap(), 2.5);
        assert!(row.get::<String>("id").is_err());
        assert!(row
            .get::<i64>("nope")
            .unwrap_err()
            .message()
            .contains("nope"));
        let p = params![1, "x", None::<i64>];
        assert_eq!(
            p,
            &[SqlValue::Int(1), SqlValue::Text("x".into()), SqlValue::Null][..]
        );
    }

    #[test]
    fn sqlstate_of_sql_errors_only() {
        let e = Error::internal("duplicate key")
            .with_name("inphms.sql_db.DatabaseError")
            .with_arguments(vec!["duplicate key".into(), "23505".into()]);
        assert_eq!(e.sqlstate(), Some("23505"));
        assert_eq!(Error::internal("x").sqlstate(), None);
    }
}
