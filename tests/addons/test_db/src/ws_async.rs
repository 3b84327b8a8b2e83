//! A websocket served by async event callbacks writing through the async cursor
//! (`/test_db/ws_async`): `add <name>` inserts a note and answers `added <name> (<n>
//! notes)`, committed when the callback returns; `add_fail <name>` inserts one, then
//! fails: rolled back, and the socket closed with 1011; `retry` sends `attempt <n>` then,
//! on its first attempt, hits a real serialization failure (SQLSTATE 40001) on the async
//! cursor: the host runs the callback again in a new transaction, and only the retried
//! attempt's send reaches the client; `end` answers `end`.

use inphms_sdk::{params, route, AsyncWsHandler, Error, Message, Request, Result, WebSocket};
use std::sync::atomic::{AtomicU32, Ordering};

/// Attempts of the `retry` callback, in this process.
static RETRY_ATTEMPTS: AtomicU32 = AtomicU32::new(0);

struct AsyncNotes;

impl AsyncWsHandler for AsyncNotes {
    async fn on_message(
        &mut self,
        ws: &WebSocket,
        req: &mut Request<'_>,
        message: Message,
    ) -> Result<()> {
        let text = message.as_text().unwrap_or_default().to_owned();
        match text.as_str() {
            "end" => return ws.send("end"),
            "retry" => {
                let n = RETRY_ATTEMPTS.fetch_add(1, Ordering::AcqRel) + 1;
                ws.send(format!("attempt {n}"))?;
                let mut cr = req.async_cursor()?;
                if n == 1 {
                    cr.execute(
                        "DO $$ BEGIN RAISE EXCEPTION 'forced' USING ERRCODE = '40001'; END $$",
                        &[],
                    )
                    .await?;
                }
                cr.execute("SELECT 1 AS one", &[]).await?;
                return Ok(());
            }
            _ => {}
        }
        let (fail, name) = match text.split_once(' ') {
            Some(("add", name)) => (false, name.to_owned()),
            Some(("add_fail", name)) => (true, name.to_owned()),
            _ => return ws.send(format!("unknown {text}")),
        };
        let mut cr = req.async_cursor()?;
        cr.execute(
            "INSERT INTO test_db_note (name) VALUES ($1)",
            params![name.as_str()],
        )
        .await?;
        let n: i64 = cr
            .execute("SELECT count(*) AS n FROM test_db_note", &[])
            .await?
            .first()
            .ok_or_else(|| Error::internal("no count"))?
            .get("n")?;
        ws.send(format!("added {name} ({n} notes)"))?;
        if fail {
            return Err(Error::user("failed after the insert"));
        }
        Ok(())
    }
}

#[route("/test_db/ws_async", auth = "none", websocket = true, readonly = false)]
fn ws_async(req: &mut Request) -> Result<()> {
    req.websocket()?.serve_async(AsyncNotes)
}
