//! The `test_db` addon: routes that use the database cursor (notes, typed values, SQL errors,
//! a read-modify-write counter for serialization failures, a connection holder for pool
//! exhaustion, a cron trigger) and cron handlers (writing a row, slowly, failing, committing or rolling back on the
//! job's cursor, checkpointing in steps, violating a deferred constraint), for the
//! database and cron integration tests; and RPC methods of a model `test_db.note` (`rpc`).

mod rpc;
mod ws_async;

use inphms_sdk::{cron, params, route, CronContext, Error, Request, Result, SqlValue};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};

/// Adds a note; answers its id and the number of notes.
#[route("/test_db/notes", type = "json", auth = "none", readonly = false)]
fn add_note(req: &mut Request, name: String) -> Result<Value> {
    let mut cr = req.cursor()?;
    let rows = cr.execute(
        "INSERT INTO test_db_note (name) VALUES ($1) RETURNING id",
        params![name],
    )?;
    let id: i64 = rows.first().expect("one row").get("id")?;
    let count: i64 = cr
        .execute("SELECT count(*) AS n FROM test_db_note", &[])?
        .first()
        .expect("one row")
        .get("n")?;
    Ok(json!({"id": id, "count": count}))
}

/// The number of notes, as text, and the database (`GET`).
#[route("/test_db/count", auth = "none", readonly = true)]
fn count(req: &mut Request) -> Result<String> {
    let mut cr = req.cursor()?;
    let n: i64 = cr
        .execute("SELECT count(*) AS n FROM test_db_note", &[])?
        .first()
        .expect("one row")
        .get("n")?;
    Ok(format!("{} notes in {}", n, cr.dbname()))
}

/// `/test_db/count` as an async route: the statement awaited on the async cursor, in the
/// transaction the host opened for the request. Same answer.
#[route("/test_db/count_async", auth = "none", readonly = true)]
async fn count_async(req: &mut Request<'_>) -> Result<String> {
    let mut cr = req.async_cursor()?;
    let rows = cr
        .execute("SELECT count(*) AS n FROM test_db_note", &[])
        .await?;
    let n: i64 = rows.first().expect("one row").get("n")?;
    Ok(format!("{} notes in {}", n, cr.dbname()))
}

/// Adds a note from an async route (two statements, one with parameters), then fails
/// when `fail` is set: the whole write is rolled back with it.
#[route("/test_db/add_async", type = "json", auth = "none", readonly = false)]
async fn add_async(req: &mut Request<'_>, name: String, fail: bool) -> Result<Value> {
    let mut cr = req.async_cursor()?;
    cr.execute("SELECT 1", &[]).await?;
    cr.execute(
        "INSERT INTO test_db_note (name) VALUES ($1)",
        inphms_sdk::params![name.as_str()],
    )
    .await?;
    if fail {
        return Err(Error::user("failed after the insert"));
    }
    let n: i64 = cr
        .execute("SELECT count(*) AS n FROM test_db_note", &[])
        .await?
        .first()
        .expect("one row")
        .get("n")?;
    Ok(json!({"count": n}))
}

/// Sleeps `seconds` in PostgreSQL from an async route (for `limit_time_real`).
#[route("/test_db/hold_async", type = "json", auth = "none")]
async fn hold_async(req: &mut Request<'_>, seconds: f64) -> Result<Value> {
    let mut cr = req.async_cursor()?;
    cr.execute("SELECT pg_sleep($1)", params![seconds]).await?;
    Ok(json!(true))
}

/// Every kind of value, sent as parameters and read back.
#[route("/test_db/types", type = "json", auth = "none")]
fn types(req: &mut Request) -> Result<Value> {
    let mut cr = req.cursor()?;
    let ts = inphms_sdk::SqlValue::Text("2024-02-29 13:14:15.5".into());
    let rows = cr.execute(
        "SELECT $1::int AS i, $2::numeric(10,2) AS n, $3::text AS t, $4::bool AS b, \
         $5::timestamp AS ts, $6::jsonb AS j, $7::bytea AS by, $8::int AS nul, 2.5::float8 AS f",
        params![
            42i64,
            SqlValue::Numeric("12.5".into()),
            "héllo",
            true,
            ts,
            json!({"k": [1, null]}),
            vec![0u8, 7, 255],
            None::<i64>
        ],
    )?;
    let row = rows.first().expect("one row");
    let describe = |name: &str| -> Value {
        match row.value(name) {
            Some(SqlValue::Null) => json!("null"),
            Some(SqlValue::Int(i)) => json!(format!("int {i}")),
            Some(SqlValue::Numeric(n)) => json!(format!("numeric {n}")),
            Some(SqlValue::Text(t)) => json!(format!("text {t}")),
            Some(SqlValue::Bool(b)) => json!(format!("bool {b}")),
            Some(SqlValue::Timestamp(t)) => json!(format!("timestamp {t}")),
            Some(SqlValue::Json(j)) => json!(format!("json {j}")),
            Some(SqlValue::Bytes(b)) => json!(format!("bytes {b:?}")),
            Some(SqlValue::Float(f)) => json!(format!("float {f}")),
            other => json!(format!("{other:?}")),
        }
    };
    Ok(json!({
        "i": describe("i"), "n": describe("n"), "t": describe("t"), "b": describe("b"),
        "ts": describe("ts"), "j": describe("j"), "by": describe("by"), "nul": describe("nul"),
        "f": describe("f"),
    }))
}

/// A SQL error reaches the handler as a value: answers its SQLSTATE and message.
#[route("/test_db/sql_error", type = "json", auth = "none")]
fn sql_error(req: &mut Request) -> Result<Value> {
    let mut cr = req.cursor()?;
    let e = cr
        .execute("SELECT * FROM no_such_table", &[])
        .expect_err("the table does not exist");
    cr.rollback()?;
    Ok(json!({"sqlstate": e.sqlstate(), "message": e.message(), "name": e.name()}))
}

static BUMPS: AtomicU32 = AtomicU32::new(0);

/// Reads the counter, waits `wait` seconds, writes it + 1: two concurrent calls make the
/// second fail to serialize (REPEATABLE READ), and the host runs it again. Answers the new
/// value and the number of handler runs in this process so far.
#[route("/test_db/bump", type = "json", auth = "none", readonly = false)]
fn bump(req: &mut Request, wait: f64) -> Result<Value> {
    let runs = BUMPS.fetch_add(1, Ordering::SeqCst) + 1;
    let mut cr = req.cursor()?;
    let v: i64 = cr
        .execute("SELECT v FROM test_db_counter WHERE id = 1", &[])?
        .first()
        .expect("one row")
        .get("v")?;
    cr.execute("SELECT pg_sleep($1)", params![wait])?;
    cr.execute(
        "UPDATE test_db_counter SET v = $1 WHERE id = 1",
        params![v + 1],
    )?;
    Ok(json!({"v": v + 1, "runs": runs}))
}

/// Holds a database connection for `seconds`.
#[route("/test_db/hold", type = "json", auth = "none")]
fn hold(req: &mut Request, seconds: f64) -> Result<Value> {
    let mut cr = req.cursor()?;
    cr.execute("SELECT pg_sleep($1)", params![seconds])?;
    Ok(json!(true))
}

/// Triggers the jobs named `job` now; answers how many and the database time.
#[route("/test_db/trigger", type = "json", auth = "none", readonly = false)]
fn trigger(req: &mut Request, job: String) -> Result<Value> {
    let mut cr = req.cursor()?;
    let n = cr.trigger_cron(&job)?;
    Ok(json!({"triggered": n}))
}

/// Writes one row per run into `test_db_cron_log`.
#[cron("test_db.write_row")]
fn write_row(ctx: &mut CronContext) -> Result<()> {
    let mut cr = ctx.cursor()?;
    cr.execute(
        "INSERT INTO test_db_cron_log (job_id, job_name, pid) VALUES ($1, $2, pg_backend_pid())",
        params![ctx.job_id, ctx.job_name.as_str()],
    )?;
    Ok(())
}

/// Writes one row per run into `test_db_cron_log` through the job's cursor, then takes
/// 20 ms more (the row still uncommitted): 300 such jobs last long enough for a test to stop
/// PostgreSQL among them.
#[cron("test_db.write_row_slowly")]
fn write_row_slowly(ctx: &mut CronContext) -> Result<()> {
    write_row(ctx)?;
    std::thread::sleep(std::time::Duration::from_millis(20));
    Ok(())
}

/// Writes a row and commits (a checkpoint), writes another, then fails: the first row
/// stays, the second is rolled back, and the job is not run again for the committed part.
#[cron("test_db.commit_then_fail")]
fn commit_then_fail(ctx: &mut CronContext) -> Result<()> {
    let mut cr = ctx.cursor()?;
    let row =
        "INSERT INTO test_db_cron_log (job_id, job_name, pid) VALUES ($1, $2, pg_backend_pid())";
    cr.execute(row, params![ctx.job_id, "checkpointed"])?;
    cr.commit()?;
    cr.execute(row, params![ctx.job_id, "after the checkpoint"])?;
    Err(Error::user("test_db.commit_then_fail failed on purpose"))
}

/// Writes a row and rolls it back, then writes another: only the second stays.
#[cron("test_db.rollback_then_write")]
fn rollback_then_write(ctx: &mut CronContext) -> Result<()> {
    let mut cr = ctx.cursor()?;
    let row =
        "INSERT INTO test_db_cron_log (job_id, job_name, pid) VALUES ($1, $2, pg_backend_pid())";
    cr.execute(row, params![ctx.job_id, "rolled back"])?;
    cr.rollback()?;
    cr.execute(row, params![ctx.job_id, "kept"])?;
    Ok(())
}

/// Writes a row; on its job's first run, triggers the job again (more to do): it runs twice.
#[cron("test_db.retrigger_once")]
fn retrigger_once(ctx: &mut CronContext) -> Result<()> {
    write_row(ctx)?;
    let mut cr = ctx.cursor()?;
    let runs: i64 = cr
        .execute(
            "SELECT count(*) AS n FROM test_db_cron_log WHERE job_id = $1",
            params![ctx.job_id],
        )?
        .first()
        .expect("one row")
        .get("n")?;
    if runs == 1 {
        cr.trigger_cron(&ctx.job_name)?;
    }
    Ok(())
}

/// A run in 3 steps, each written to `test_db_run_step` (job, run number, step) and
/// committed (a checkpoint); after step 1, the job is triggered again (more to do) until it
/// has had 3 runs, and the trigger's NOTIFY wakes the other workers while this run goes
/// on. The job's first run then waits (up to 20 s, committing after each look, so holding
/// no row lock in between) for a row of its job in `test_db_gate`. Overlapping runs show as
/// interleaved steps, or a run missing steps (it failed at the re-lock of its job).
#[cron("test_db.checkpoint_steps")]
fn checkpoint_steps(ctx: &mut CronContext) -> Result<()> {
    let mut cr = ctx.cursor()?;
    let run: i64 = cr
        .execute("SELECT nextval('test_db_run_seq') AS run", &[])?
        .first()
        .expect("one row")
        .get("run")?;
    let step = |cr: &mut inphms_sdk::Cursor, n: i64| -> Result<()> {
        cr.execute(
            "INSERT INTO test_db_run_step (job_id, run, step) VALUES ($1, $2, $3)",
            params![ctx.job_id, run, n],
        )?;
        Ok(())
    };
    step(&mut cr, 1)?;
    let runs: i64 = cr
        .execute(
            "SELECT count(DISTINCT run) AS n FROM test_db_run_step WHERE job_id = $1",
            params![ctx.job_id],
        )?
        .first()
        .expect("one row")
        .get("n")?;
    if runs < 3 {
        cr.trigger_cron(&ctx.job_name)?;
    }
    cr.commit()?;
    std::thread::sleep(std::time::Duration::from_millis(100));
    step(&mut cr, 2)?;
    cr.commit()?;
    if runs == 1 {
        for _ in 0..400 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let open: i64 = cr
                .execute(
                    "SELECT count(*) AS n FROM test_db_gate WHERE job_id = $1",
                    params![ctx.job_id],
                )?
                .first()
                .expect("one row")
                .get("n")?;
            cr.commit()?;
            if open > 0 {
                break;
            }
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    step(&mut cr, 3)
}

/// Writes a row pointing to no note into `test_db_deferred` (a deferred foreign key) and
/// succeeds: the run's COMMIT fails, and the failure must be recorded.
#[cron("test_db.violate_deferred")]
fn violate_deferred(ctx: &mut CronContext) -> Result<()> {
    write_row(ctx)?;
    ctx.cursor()?
        .execute("INSERT INTO test_db_deferred (note_id) VALUES (-1)", &[])?;
    Ok(())
}

/// Writes a row, then sleeps 10 s in a statement: past `limit_time_real_cron`, the
/// statement is cancelled and the run fails, the row rolled back.
#[cron("test_db.sleep_past_limit")]
fn sleep_past_limit(ctx: &mut CronContext) -> Result<()> {
    write_row(ctx)?;
    ctx.cursor()?.execute("SELECT pg_sleep(10)", &[])?;
    Ok(())
}

/// Writes a row, then fails: the row is rolled back and the failure recorded.
#[cron("test_db.fail")]
fn fail(ctx: &mut CronContext) -> Result<()> {
    let mut cr = ctx.cursor()?;
    cr.execute(
        "INSERT INTO test_db_cron_log (job_id, job_name, pid) VALUES ($1, 'must be rolled back', 0)",
        params![ctx.job_id],
    )?;
    Err(Error::user("test_db.fail failed on purpose"))
}

/// Attempts of [`RetriedSends`]'s callback, in this process.
static WS_ATTEMPTS: AtomicU32 = AtomicU32::new(0);

/// An event websocket whose `go` callback sends `attempt <n>` then, on its first attempt,
/// hits a real serialization failure (SQLSTATE 40001): the host retries the callback in a
/// new transaction, and only the retried attempt's send may reach the client. `end`
/// answers `end`.
struct RetriedSends;

impl inphms_sdk::WsHandler for RetriedSends {
    fn on_message(
        &mut self,
        ws: &inphms_sdk::WebSocket,
        req: &mut Request,
        message: inphms_sdk::Message,
    ) -> Result<()> {
        if message.as_text() == Some("end") {
            return ws.send("end");
        }
        let n = WS_ATTEMPTS.fetch_add(1, Ordering::AcqRel) + 1;
        ws.send(format!("attempt {n}"))?;
        let mut cr = req.cursor()?;
        if n == 1 {
            cr.execute(
                "DO $$ BEGIN RAISE EXCEPTION 'forced' USING ERRCODE = '40001'; END $$",
                &[],
            )?;
        }
        cr.execute("SELECT 1 AS one", &[])?;
        Ok(())
    }
}

#[route("/test_db/ws_retry", auth = "none", websocket = true, readonly = false)]
fn ws_retry(req: &mut Request) -> Result<()> {
    req.websocket()?.serve(RetriedSends)
}

/// The push streams of `/test_db/push_retry`'s attempts, kept (clones), in order.
static RETRY_PUSH: std::sync::Mutex<Vec<inphms_sdk::PushStream>> =
    std::sync::Mutex::new(Vec::new());

/// Opens a push stream (kept) with a first chunk, then, on its first attempt, hits a real
/// serialization failure: the host retries the handler, and answers with the second
/// attempt's stream.
#[route(
    "/test_db/push_retry",
    auth = "none",
    readonly = false,
    save_session = false
)]
fn push_retry(req: &mut Request) -> Result<inphms_sdk::Response> {
    let stream = inphms_sdk::PushStream::open(65_536)?;
    stream.push(b"attempt\n".to_vec())?;
    let attempt = {
        let mut kept = RETRY_PUSH.lock().unwrap_or_else(|e| e.into_inner());
        kept.push(stream.clone());
        kept.len()
    };
    let mut cr = req.cursor()?;
    if attempt == 1 {
        cr.execute(
            "DO $$ BEGIN RAISE EXCEPTION 'forced' USING ERRCODE = '40001'; END $$",
            &[],
        )?;
    }
    Ok(inphms_sdk::Response::push(&stream))
}

/// Pushes a chunk into each kept stream of `/test_db/push_retry`: `pushed` or `refused`
/// for each attempt, comma-separated.
#[route("/test_db/push_retry_state", auth = "none", save_session = false)]
fn push_retry_state(_req: &mut Request) -> String {
    let kept = RETRY_PUSH.lock().unwrap_or_else(|e| e.into_inner());
    kept.iter()
        .map(|s| {
            if s.push(b"x\n".to_vec()).is_ok() {
                "pushed"
            } else {
                "refused"
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

inphms_sdk::addon!();
