//! A websocket served by async event callbacks writing through the async cursor
//! (`/test_db/ws_async`): `add <name>` inserts a note and answers `added <name> (<n>
//! notes)`, committed when the callback returns; `add_fail <name>` inserts one, then
//! fails: rolled back, and the socket closed with 1011.

use inphms_sdk::{params, route, AsyncWsHandler, Error, Message, Request, Result, WebSocket};

struct AsyncNotes;

impl AsyncWsHandler for AsyncNotes {
    async fn on_message(
        &mut self,
        ws: &WebSocket,
        req: &mut Request<'_>,
        message: Message,
    ) -> Result<()> {
        let text = message.as_text().unwrap_or_default().to_owned();
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
