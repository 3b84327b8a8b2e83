//! The cron workers' LISTEN connection to `cron_db` and their wake-ups: a notification on
//! `cron_trigger`, the poll interval, or a retry with backoff while the server or a
//! database is unavailable.

use super::{pass, stopped, Cron, SLEEP_INTERVAL, TARGET};
use crate::sql_db::{self, DbError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// A LISTEN connection: notifications arrive on the channel, which closes when the
/// connection is lost.
struct Listener {
    rx: mpsc::UnboundedReceiver<()>,
    _client: tokio_postgres::Client,
    driver: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Why LISTEN failed.
enum ListenError {
    /// The server is down, starting up or shutting down: tried again within seconds.
    Unavailable(String),
    /// It answered but LISTEN is impossible (no such database, no CONNECT right, a cluster
    /// in recovery): the workers poll.
    Refused(String),
}

impl From<DbError> for ListenError {
    fn from(e: DbError) -> ListenError {
        if e.is_unavailable() {
            ListenError::Unavailable(e.to_string())
        } else {
            ListenError::Refused(e.to_string())
        }
    }
}

async fn listen(i: u32, cron: &Cron) -> Result<Listener, ListenError> {
    let pools = cron.databases().pools();
    let db = pools.cron_db();
    let (client, mut conn) = sql_db::connect_unpooled(pools.info(), db).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => {
                    if tx.send(()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!(target: TARGET, "cron{i}: LISTEN connection: {e}");
                    return;
                }
                None => return,
            }
        }
    });
    let in_recovery = client
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .map_err(|e| DbError::from_pg(&e))?
        .get::<_, bool>(0);
    if in_recovery {
        return Err(ListenError::Refused(
            "PG cluster in recovery mode, cron trigger not activated".into(),
        ));
    }
    client
        .batch_execute("LISTEN cron_trigger")
        .await
        .map_err(|e| DbError::from_pg(&e))?;
    Ok(Listener {
        rx,
        _client: client,
        driver,
    })
}

/// The first wait before trying again after the server was found unavailable (a LISTEN
/// connection, or a pass); it doubles up to [`RETRY_MAX`].
pub const RETRY_MIN: Duration = Duration::from_millis(250);
/// The longest such wait: jobs due during an outage start within about this after the
/// server is back.
pub const RETRY_MAX: Duration = Duration::from_secs(2);

/// Worker `i`: LISTENs on `cron_db` and runs a pass at each wake-up (a notification, the
/// poll interval), reconnecting with backoff when the server is unavailable and polling
/// when LISTEN is refused.
pub(super) async fn worker(i: u32, cron: Arc<Cron>, mut stop: watch::Receiver<bool>) {
    let cron_db = cron.databases().pools().cron_db();
    // Polling when LISTEN is refused: from 1 s up to the poll interval.
    let mut poll_backoff = Duration::from_secs(1);
    // Reconnecting when the server is unavailable: from RETRY_MIN up to RETRY_MAX.
    let mut retry = RETRY_MIN;
    // Whether the LISTEN connection was lost or could not be made since the last one.
    let mut lost = false;
    // Whether that was logged as a warning.
    let mut warned = false;
    let jitter = Duration::from_secs(i as u64);
    while !*stop.borrow() {
        match listen(i, &cron).await {
            Ok(mut listener) => {
                if lost {
                    tracing::info!(target: TARGET, "cron{i}: listening on database {} again", cron_db);
                    // The server accepts connections: the pools need not wait out the
                    // backoff of their failed attempts during the outage.
                    cron.databases().pools().server_is_back();
                }
                warned = false;
                poll_backoff = Duration::from_secs(1);
                retry = RETRY_MIN;
                // Notifications sent while we were not listening are lost: look everywhere,
                // at once.
                let mut listening = pass_until_done(i, &cron, &mut stop, &mut listener).await;
                while listening {
                    tokio::select! {
                        _ = stopped(&mut stop) => return,
                        msg = listener.rx.recv() => if msg.is_none() {
                            tracing::warn!(target: TARGET, "cron{i}: lost the LISTEN connection to {}; reconnecting", cron_db);
                            break;
                        },
                        _ = tokio::time::sleep(SLEEP_INTERVAL + jitter) => {}
                    }
                    // Spread the herd of workers woken by one notification.
                    tokio::time::sleep(Duration::from_millis(10 * i as u64)).await;
                    while listener.rx.try_recv().is_ok() {}
                    listening = pass_until_done(i, &cron, &mut stop, &mut listener).await;
                }
                lost = true;
            }
            Err(ListenError::Unavailable(e)) => {
                if !warned {
                    tracing::warn!(target: TARGET, "cron{i}: cannot LISTEN on database {} ({e}); trying again every {}s at most", cron_db, RETRY_MAX.as_secs_f64());
                }
                (lost, warned) = (true, true);
                // No pass: the server is unavailable, so would every database be.
                tokio::select! {
                    _ = stopped(&mut stop) => return,
                    _ = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(RETRY_MAX);
            }
            Err(ListenError::Refused(e)) => {
                if !warned {
                    tracing::warn!(target: TARGET, "cron{i}: cannot LISTEN on database {} ({e}); polling every {}s until it can", cron_db, SLEEP_INTERVAL.as_secs());
                }
                (lost, warned) = (true, true);
                let _ = pass(i, &cron, &stop).await;
                let wait = poll_backoff.min(SLEEP_INTERVAL + jitter);
                poll_backoff = (poll_backoff * 2).min(SLEEP_INTERVAL);
                tokio::select! {
                    _ = stopped(&mut stop) => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// Runs passes until one finds every database available, waiting [`RETRY_MIN`] doubling up
/// to [`RETRY_MAX`] between them (a database still coming up is tried again within
/// seconds, not at the next poll). False when the worker is stopped or its LISTEN
/// connection is lost (the caller reconnects, then passes again).
async fn pass_until_done(
    i: u32,
    cron: &Cron,
    stop: &mut watch::Receiver<bool>,
    listener: &mut Listener,
) -> bool {
    let mut wait = RETRY_MIN;
    let mut failures = 0u32;
    loop {
        let Some(e) = pass(i, cron, stop).await else {
            if failures > 0 {
                tracing::info!(target: TARGET, "cron{i}: pass done after {failures} attempt(s) on an unavailable database");
            }
            return true;
        };
        failures += 1;
        if failures == 1 {
            tracing::warn!(target: TARGET, "cron{i}: a database is unavailable ({e}); passing again in {}ms, then with backoff up to {}s", wait.as_millis(), RETRY_MAX.as_secs_f64());
        }
        tokio::select! {
            _ = stopped(stop) => return false,
            msg = listener.rx.recv() => if msg.is_none() {
                tracing::warn!(target: TARGET, "cron{i}: lost the LISTEN connection to {}; reconnecting", cron.databases().pools().cron_db());
                return false;
            },
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(RETRY_MAX);
    }
}
