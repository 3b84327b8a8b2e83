//! What passes between a socket's connection task and everyone else ([`Link`]): the
//! messages received and not yet taken, the commands (sends, closes) not yet done, a close
//! asked for at once, and the socket's close status once its task ended.
//!
//! One mutex over two queues and three [`Notify`]s, instead of two bounded channels and a
//! watch (issue 17): a tokio channel allocates its first block of slots (32 commands,
//! 2.8 KiB; 32 messages, 1.3 KiB) and its shared state (512 bytes) when created, so an
//! idle socket held ≈ 5 KiB of channels it did not use. An empty `VecDeque` holds nothing;
//! a queue drained is freed ([`shrink_idle`]). The bounds are the channels' were:
//! [`INCOMING_QUEUE`](super::INCOMING_QUEUE) messages received (past it the socket is not
//! read, so TCP pushes back) and [`SEND_QUEUE`](super::SEND_QUEUE) commands.

use super::registry::Command;
use super::{INCOMING_QUEUE, SEND_QUEUE};
use inphms_sdk::abi::WsMessage;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;

/// A socket's queues and wake-ups (see the module docs).
#[derive(Default)]
pub(super) struct Link {
    state: Mutex<State>,
    /// Wakes the connection task: a command queued, a close asked for, room made in the
    /// incoming queue (`notify_one`: a wake-up given while it works is kept for its next
    /// wait).
    task: Notify,
    /// Wakes whoever waits for the next message (a message received, or the task ended).
    reader: Notify,
    /// Wakes whoever waits for room in the command queue (the task took one, or ended).
    room: Notify,
}

#[derive(Default)]
struct State {
    incoming: VecDeque<WsMessage>,
    commands: VecDeque<Command>,
    /// A close asked for at once, ahead of the commands queued.
    shutdown: Option<(u16, String)>,
    /// The close code and reason, set when the connection task ends: then the commands are
    /// refused, and the reader gets the close once the messages received are taken.
    closed: Option<(u16, String)>,
}

/// Why a command was not queued.
pub(super) enum Refused {
    /// The connection task has ended.
    Closed(Command),
    /// [`SEND_QUEUE`] commands wait already.
    Full(Command),
}

/// What the connection task is to do next, taken from the link without waiting.
pub(super) enum Work {
    /// Close at once with this code and reason.
    Shut(u16, String),
    /// Do this command.
    Command(Command),
}

/// Frees a queue's storage once drained: an idle socket keeps none (a queue's first push
/// allocates 4 slots, 352 bytes of commands; an allocation per message, cheaper than
/// keeping them on every idle socket).
fn shrink_idle<T>(queue: &mut VecDeque<T>) {
    if queue.is_empty() && queue.capacity() > 0 {
        *queue = VecDeque::new();
    }
}

impl Link {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    // --- everyone else's side ---

    /// Queues `command` for the connection task.
    pub(super) fn push(&self, command: Command) -> Result<(), Refused> {
        {
            let mut state = self.lock();
            if state.closed.is_some() {
                return Err(Refused::Closed(command));
            }
            if state.commands.len() >= SEND_QUEUE {
                return Err(Refused::Full(command));
            }
            state.commands.push_back(command);
        }
        self.task.notify_one();
        Ok(())
    }

    /// Queues `command`, waiting for room in the queue.
    pub(super) async fn push_waiting(&self, mut command: Command) -> Result<(), Command> {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered before the check: room made in between still wakes us.
            room.as_mut().enable();
            match self.push(command) {
                Ok(()) => return Ok(()),
                Err(Refused::Closed(c)) => return Err(c),
                Err(Refused::Full(c)) => command = c,
            }
            room.await;
        }
    }

    /// Asks the task to close at once (replacing a close asked for before).
    pub(super) fn shut(&self, code: u16, reason: &str) {
        self.lock().shutdown = Some((code, reason.to_owned()));
        self.task.notify_one();
    }

    /// Whether the connection task has ended.
    pub(super) fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }

    /// The next message received (`Ok`), or the close once every message was taken
    /// (`Err`); waits for either.
    pub(super) async fn next(&self) -> Result<WsMessage, Option<(u16, String)>> {
        loop {
            let woken = self.reader.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            {
                let mut state = self.lock();
                let was_full = state.incoming.len() >= INCOMING_QUEUE;
                if let Some(message) = state.incoming.pop_front() {
                    shrink_idle(&mut state.incoming);
                    drop(state);
                    if was_full {
                        self.task.notify_one();
                    }
                    return Ok(message);
                }
                if state.closed.is_some() {
                    return Err(state.closed.clone());
                }
            }
            woken.await;
        }
    }

    // --- the connection task's side ---

    /// What to do next, without waiting: a close asked for at once first, then the
    /// oldest command (none while `closing`); and whether a message may be read (room in
    /// the incoming queue).
    pub(super) fn take_work(&self, closing: bool) -> (Option<Work>, bool) {
        let mut state = self.lock();
        let may_read = state.incoming.len() < INCOMING_QUEUE;
        if closing {
            return (None, may_read);
        }
        if let Some((code, reason)) = state.shutdown.take() {
            return (Some(Work::Shut(code, reason)), may_read);
        }
        let command = state.commands.pop_front();
        if command.is_some() {
            shrink_idle(&mut state.commands);
            drop(state);
            self.room.notify_waiters();
            return (command.map(Work::Command), may_read);
        }
        (None, may_read)
    }

    /// Waits until something is given to the task (see [`Link::task`]).
    pub(super) async fn woken(&self) {
        self.task.notified().await;
    }

    /// Hands a message received to the reader.
    pub(super) fn deliver(&self, message: WsMessage) {
        self.lock().incoming.push_back(message);
        self.reader.notify_waiters();
    }

    /// The task ended with `status`: the commands still queued are dropped (their charges
    /// given back, their waiters told), and the reader gets the close after the messages.
    pub(super) fn end(&self, status: (u16, String)) {
        let dropped = {
            let mut state = self.lock();
            state.closed = Some(status);
            state.shutdown = None;
            std::mem::take(&mut state.commands)
        };
        drop(dropped);
        self.reader.notify_waiters();
        self.room.notify_waiters();
    }
}
