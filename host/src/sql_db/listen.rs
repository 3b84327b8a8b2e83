//! The host's LISTEN connection for addons (the bus's `imbus`, Odoo's `ImDispatch`): one
//! dedicated, unpooled connection to `cron_db` per host (where [`super::notify`] sends the
//! post-commit NOTIFYs of every host), started on the first wait and supervised by a task on
//! the host's runtime: reconnected with backoff (250 ms doubling to 2 s) when lost, every
//! channel LISTENed again, and the waiters told to resync (notifications sent while it was
//! down are lost). Addons wait for a channel's payloads from their own thread
//! ([`Listeners::wait`], the `listen_wait` host callback).

use super::{connect_unpooled, ConnInfo, DbError};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const TARGET: &str = "inphms.sql_db.listen";

/// The most payloads kept for a channel whose waiter is late: past it they are dropped and
/// the waiter told to resync.
const MAX_QUEUED: usize = 100_000;

const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// What a wait heard.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Heard {
    /// The payloads received on the channel, in order.
    pub payloads: Vec<String>,
    /// The connection was (re)made since the last wait (or payloads were dropped): what
    /// was sent meanwhile was not heard, the waiter should look for itself.
    pub resync: bool,
}

#[derive(Default)]
struct Queue {
    heard: Heard,
}

#[derive(Default)]
struct State {
    started: bool,
    client: Option<Arc<tokio_postgres::Client>>,
    queues: HashMap<String, Queue>,
}

struct Shared {
    state: Mutex<State>,
    cond: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The LISTEN connection of one host (part of [`Databases`](super::Databases)).
pub struct Listeners {
    shared: Arc<Shared>,
    info: ConnInfo,
    cron_db: String,
    runtime: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let channels: Vec<String> = self.shared.lock().queues.keys().cloned().collect();
        f.debug_struct("Listeners")
            .field("channels", &channels)
            .finish()
    }
}

/// Whether `channel` can be LISTENed as it is: an identifier of at most 63 ASCII letters,
/// digits and underscores.
fn check_channel(channel: &str) -> Result<(), DbError> {
    let ok = !channel.is_empty()
        && channel.len() <= 63
        && channel
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(DbError::Other(format!(
            "cannot LISTEN on {channel:?}: expected 1 to 63 ASCII letters, digits or underscores"
        )))
    }
}

impl Listeners {
    /// Nothing listened yet; the connection will go to `cron_db` with `info`, its task on
    /// `runtime` (else the runtime of the first waiter's thread).
    pub fn new(info: ConnInfo, cron_db: &str, runtime: Option<tokio::runtime::Handle>) -> Self {
        Listeners {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                cond: Condvar::new(),
            }),
            info,
            cron_db: cron_db.to_owned(),
            runtime,
        }
    }

    /// Waits at most `timeout` for notifications on `channel` (LISTENed from the first
    /// call on), from a thread that may block (not a runtime worker). The first call on a
    /// channel returns with `resync` once the connection listens to it.
    pub fn wait(&self, channel: &str, timeout: Duration) -> Result<Heard, DbError> {
        check_channel(channel)?;
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        if !state.queues.contains_key(channel) {
            state.queues.insert(channel.to_owned(), Queue::default());
            if let Some(client) = state.client.clone() {
                // Connected already: listen now (the task listens to every channel at its
                // next connection).
                drop(state);
                let runtime = self.runtime()?;
                let sql = format!("LISTEN \"{channel}\"");
                let listened = runtime.block_on(async move { client.batch_execute(&sql).await });
                state = self.shared.lock();
                let queue = state.queues.entry(channel.to_owned()).or_default();
                if listened.is_ok() {
                    queue.heard.resync = true;
                }
            }
        }
        if !state.started {
            let runtime = self.runtime()?;
            state.started = true;
            let (shared, info, db) = (
                Arc::clone(&self.shared),
                self.info.clone(),
                self.cron_db.clone(),
            );
            runtime.spawn(supervise(shared, info, db));
        }
        loop {
            let queue = state.queues.entry(channel.to_owned()).or_default();
            if queue.heard.resync || !queue.heard.payloads.is_empty() {
                return Ok(std::mem::take(&mut queue.heard));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Heard::default());
            }
            state = self
                .shared
                .cond
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn runtime(&self) -> Result<tokio::runtime::Handle, DbError> {
        if let Some(h) = &self.runtime {
            return Ok(h.clone());
        }
        tokio::runtime::Handle::try_current()
            .map_err(|_| DbError::Other("no runtime to LISTEN on".into()))
    }
}

/// The supervising task: connects, LISTENs, hands notifications to the queues, reconnects.
async fn supervise(shared: Arc<Shared>, info: ConnInfo, db: String) {
    let mut retry = RETRY_MIN;
    let mut warned = false;
    loop {
        match listen_once(&shared, &info, &db).await {
            Ok(driver) => {
                if warned {
                    tracing::info!(target: TARGET, "listening on database {db} again");
                }
                (retry, warned) = (RETRY_MIN, false);
                let _ = driver.await;
                shared.lock().client = None;
                tracing::warn!(target: TARGET, "lost the LISTEN connection to {db}; reconnecting");
            }
            Err(e) => {
                if !warned {
                    tracing::warn!(target: TARGET, "cannot LISTEN on database {db} ({e}); trying again every {}s at most", RETRY_MAX.as_secs_f64());
                    warned = true;
                }
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    }
}

/// One connection: its driver task (ends when the connection is lost), once every channel
/// is LISTENed and the waiters are told to resync.
async fn listen_once(
    shared: &Arc<Shared>,
    info: &ConnInfo,
    db: &str,
) -> Result<tokio::task::JoinHandle<()>, DbError> {
    let (client, mut conn) = connect_unpooled(info, db).await?;
    let drv = Arc::clone(shared);
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                    let mut state = drv.lock();
                    if let Some(queue) = state.queues.get_mut(n.channel()) {
                        if queue.heard.payloads.len() < MAX_QUEUED {
                            queue.heard.payloads.push(n.payload().to_owned());
                        } else {
                            queue.heard.resync = true;
                        }
                        drv.cond.notify_all();
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!(target: TARGET, "LISTEN connection: {e}");
                    return;
                }
                None => return,
            }
        }
    });
    let client = Arc::new(client);
    let channels: Vec<String> = {
        let mut state = shared.lock();
        state.client = Some(Arc::clone(&client));
        state.queues.keys().cloned().collect()
    };
    for channel in &channels {
        if let Err(e) = client.batch_execute(&format!("LISTEN \"{channel}\"")).await {
            driver.abort();
            shared.lock().client = None;
            return Err(DbError::from_pg(&e));
        }
    }
    let mut state = shared.lock();
    for channel in channels {
        if let Some(queue) = state.queues.get_mut(&channel) {
            queue.heard.resync = true;
        }
    }
    shared.cond.notify_all();
    drop(state);
    Ok(driver)
}
