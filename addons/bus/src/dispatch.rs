//! The dispatcher (Odoo's `ImDispatch`): which socket of this host is subscribed to which
//! channel, and the thread that fans out what other hosts (or this one) sent.
//!
//! One thread per host process, started on the first subscription, waits on the host's
//! LISTEN connection for `imbus` (`inphms_sdk::bus::listen`). A notification's payload
//! names the channels that received messages; for each database where a socket of this
//! host listens to one of them, the thread reads the new rows of `bus_bus` once (`id` past
//! what it read) and queues each on the sockets subscribed to its channel, in id order, one
//! frame per socket (`WebSocket::send`: never blocks). When the LISTEN connection was
//! (re)made, it reads every database it serves.
//!
//! Rows may commit out of id order (two transactions): the ids read in the last
//! [`HISTORY`] stay remembered and the next reads start before them, as Odoo 18's
//! `_notif_history`, so a row committed late within that window is still delivered, once.
//!
//! A subscription is served without gaps or repeats: registered first (the dispatcher
//! keeps what it reads for it meanwhile), then its backlog read in its callback's
//! transaction (`last` given by the client), then both merged by id and pushed.

use crate::poll::{self, Notification};
use inphms_sdk::{bus, params, WebSocket};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{LazyLock, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

const TARGET: &str = "inphms.addons.bus.dispatch";

/// How long read ids are remembered (Odoo 18's `MAX_NOTIFICATION_HISTORY_SEC`).
pub const HISTORY: Duration = Duration::from_secs(10);
/// The longest wait on the LISTEN connection (Odoo's `TIMEOUT`).
const WAIT: Duration = Duration::from_secs(50);
/// The most rows read at once.
const PAGE: i64 = 5_000;

/// A socket's subscription.
struct Sub {
    db: String,
    channels: Vec<String>,
    /// While its backlog is read: what the dispatcher read for it meanwhile.
    pending: Option<Vec<Notification>>,
    /// The ids of its backlog, not pushed again.
    backlog: HashSet<i64>,
}

/// What the dispatcher read of a database.
#[derive(Default)]
struct DbRead {
    /// Every id up to this one was read, or committed more than [`HISTORY`] after a later
    /// one.
    floor: i64,
    /// The ids read past the floor, with when.
    recent: BTreeMap<i64, Instant>,
}

#[derive(Default)]
struct Index {
    subs: HashMap<u64, Sub>,
    by_channel: HashMap<String, HashSet<u64>>,
    dbs: HashMap<String, DbRead>,
}

impl Index {
    fn unsubscribe(&mut self, socket: u64) -> Option<Sub> {
        let sub = self.subs.remove(&socket)?;
        for channel in &sub.channels {
            if let Some(set) = self.by_channel.get_mut(channel) {
                set.remove(&socket);
                if set.is_empty() {
                    self.by_channel.remove(channel);
                }
            }
        }
        Some(sub)
    }
}

// global: addon-side, one dispatcher per addon image and so per host process (Odoo's
// module singleton `dispatch`); not host state
static INDEX: LazyLock<Mutex<Index>> = LazyLock::new(Default::default);
// global: addon-side, the dispatcher thread is started once per process
static STARTED: Once = Once::new();

fn index() -> MutexGuard<'static, Index> {
    INDEX.lock().unwrap_or_else(|e| e.into_inner())
}

/// Registers `socket`'s subscription to `channels` of `db` (replacing the one before), its
/// backlog to follow with [`go_live`]; `max_id` is the largest id in `bus_bus` now (where
/// the dispatcher starts reading `db` when it did not yet).
pub fn begin(socket: u64, db: &str, channels: Vec<String>, max_id: i64) {
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("bus-dispatch".into())
            .spawn(run);
        if let Err(e) = spawned {
            tracing::error!(target: TARGET, "cannot start the bus dispatcher: {e}");
        }
    });
    let mut index = index();
    index.unsubscribe(socket);
    for channel in &channels {
        index
            .by_channel
            .entry(channel.clone())
            .or_default()
            .insert(socket);
    }
    index.dbs.entry(db.to_owned()).or_insert_with(|| DbRead {
        floor: max_id,
        recent: BTreeMap::new(),
    });
    index.subs.insert(
        socket,
        Sub {
            db: db.to_owned(),
            channels,
            pending: Some(Vec::new()),
            backlog: HashSet::new(),
        },
    );
}

/// Pushes `backlog` and what arrived for `socket` since [`begin`], merged by id, and serves
/// it live from now on.
pub fn go_live(socket: u64, backlog: Vec<Notification>) {
    let mut index = index();
    let Some(sub) = index.subs.get_mut(&socket) else {
        return;
    };
    let mut all = backlog;
    sub.backlog = all.iter().map(|n| n.id).collect();
    for n in sub.pending.take().unwrap_or_default() {
        if !sub.backlog.contains(&n.id) {
            all.push(n);
        }
    }
    all.sort_by_key(|n| n.id);
    tracing::debug!(target: TARGET, "socket {socket} subscribed to {} channel(s) of {}, {} from its backlog", sub.channels.len(), sub.db, all.len());
    if !all.is_empty() {
        push(socket, &all);
    }
}

/// Forgets `socket` (closed).
pub fn unsubscribe(socket: u64) {
    index().unsubscribe(socket);
}

fn push(socket: u64, notifications: &[Notification]) {
    if let Err(e) = WebSocket::from_id(socket).send(poll::frame(notifications)) {
        tracing::debug!(target: TARGET, "socket {socket}: {e}");
    }
}

/// The dispatcher thread.
fn run() {
    let mut failures = 0u32;
    loop {
        let heard = match bus::listen(bus::NOTIFY_CHANNEL, WAIT) {
            Ok(h) => {
                failures = 0;
                h
            }
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::error!(target: TARGET, "Bus.loop error, sleep and retry: {e}");
                }
                // A host without bus services, or a failure of its own: not a busy loop.
                std::thread::sleep(Duration::from_secs(1).min(WAIT) * failures.min(50));
                continue;
            }
        };
        for db in dirty(&heard) {
            if let Err(e) = read(&db) {
                tracing::warn!(target: TARGET, "cannot read the bus of database {db}: {e}");
            }
        }
    }
}

/// The databases to read: those where a socket listens to a channel the payloads name
/// (every database served after a resync).
fn dirty(heard: &bus::Heard) -> Vec<String> {
    let index = index();
    if heard.resync {
        return index.dbs.keys().cloned().collect();
    }
    let mut dbs: Vec<String> = Vec::new();
    for payload in &heard.payloads {
        let Ok(Value::Array(channels)) = serde_json::from_str::<Value>(payload) else {
            tracing::warn!(target: TARGET, "ignored an imbus payload that is no list of channels: {payload:.200}");
            continue;
        };
        for channel in channels {
            let Some(db) = channel.get(0).and_then(Value::as_str) else {
                continue;
            };
            if dbs.iter().any(|d| d == db) {
                continue;
            }
            if index.by_channel.contains_key(&channel.to_string()) {
                dbs.push(db.to_owned());
            }
        }
    }
    dbs
}

/// Reads the new rows of `db` and queues them on their subscribers.
fn read(db: &str) -> inphms_sdk::Result<()> {
    let Some(mut from) = index().dbs.get(db).map(|d| d.floor) else {
        return Ok(());
    };
    loop {
        let rows = bus::execute_on(
            db,
            "SELECT id, channel, message FROM bus_bus WHERE id > $1 ORDER BY id LIMIT $2",
            params![from, PAGE],
        )?;
        let rows: Vec<Notification> = rows.iter().map(poll::from_row).collect::<Result<_, _>>()?;
        let full = rows.len() as i64 == PAGE;
        if let Some(last) = rows.last() {
            from = last.id;
        }
        fan_out(db, rows);
        if !full {
            return Ok(());
        }
    }
}

fn fan_out(db: &str, rows: Vec<Notification>) {
    let now = Instant::now();
    let mut index = index();
    let Index {
        subs,
        by_channel,
        dbs,
    } = &mut *index;
    let Some(read) = dbs.get_mut(db) else {
        return;
    };
    let mut frames: HashMap<u64, Vec<Notification>> = HashMap::new();
    for row in rows {
        if row.id <= read.floor || read.recent.contains_key(&row.id) {
            continue;
        }
        read.recent.insert(row.id, now);
        let Some(sockets) = by_channel.get(&row.channel) else {
            continue;
        };
        for socket in sockets {
            let Some(sub) = subs.get_mut(socket) else {
                continue;
            };
            if sub.db != db {
                continue;
            }
            match &mut sub.pending {
                Some(pending) => pending.push(row.clone()),
                None if sub.backlog.contains(&row.id) => {}
                None => frames.entry(*socket).or_default().push(row.clone()),
            }
        }
    }
    // The floor moves past ids read more than HISTORY ago, lowest first.
    while let Some((&id, &at)) = read.recent.first_key_value() {
        if now.duration_since(at) < HISTORY {
            break;
        }
        read.recent.remove(&id);
        read.floor = read.floor.max(id);
    }
    for (socket, notifications) in frames {
        push(socket, &notifications);
    }
}
