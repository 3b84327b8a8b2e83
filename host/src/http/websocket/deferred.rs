//! Sends held until their callback's transaction commits: while an event callback of a
//! websocket runs ([`Held::begin`], on the callback's thread), every message it sends with
//! [`send_queued`](super::send_queued), to any socket, is kept here; once its transaction
//! commits, [`Held::flush`] queues them in order; when it is rolled back, or retried after
//! a serialization failure, or the callback failed, they are dropped (as Odoo's bus
//! notifications, sent on commit). A retried callback therefore sends its messages once.

use super::registry::Sockets;
use inphms_sdk::abi::WsMessage;
use std::cell::RefCell;

thread_local! {
    // The running socket callback's held sends (`None`: no callback runs on this thread).
    // global: thread-local invocation context, as `application::current`
    static HELD: RefCell<Option<Vec<(u64, WsMessage)>>> = const { RefCell::new(None) };
}

/// Keeps `message` for socket `id` when a callback runs on this thread (`None`), else
/// gives it back to be sent now.
pub(super) fn hold(id: u64, message: WsMessage) -> Option<WsMessage> {
    HELD.with_borrow_mut(|held| match held {
        Some(held) => {
            held.push((id, message));
            None
        }
        None => Some(message),
    })
}

/// The sends of one callback, held while it runs on this thread (see the module docs).
/// Dropped without [`flush`](Held::flush) (a panic went through), what it held is dropped.
#[derive(Debug)]
pub struct Held {
    /// What an outer holder had held (restored when this one ends).
    previous: Option<Vec<(u64, WsMessage)>>,
    ended: bool,
}

impl Held {
    /// Starts holding this thread's sends.
    pub fn begin() -> Held {
        Held {
            previous: HELD.replace(Some(Vec::new())),
            ended: false,
        }
    }

    /// Drops what was held so far (an attempt of the callback that is retried).
    pub fn restart() {
        HELD.with_borrow_mut(|held| {
            if let Some(held) = held {
                held.clear();
            }
        });
    }

    /// Stops holding; sends what was held (the callback's transaction committed) and
    /// returns how many were refused (logged).
    pub fn flush(mut self, sockets: &Sockets) -> usize {
        let held = self.end();
        let mut refused = 0;
        for (id, message) in held {
            if let Err(e) = super::send_queued(sockets, id, message) {
                tracing::debug!(target: super::TARGET, "websocket {id}: a send of a committed callback refused: {e}");
                refused += 1;
            }
        }
        refused
    }

    /// Stops holding and drops what was held (rolled back, or the callback failed); how
    /// many.
    pub fn discard(mut self) -> usize {
        self.end().len()
    }

    /// Holds again, on this thread, what [`take`](Held::take) gave back: an async
    /// callback's sends, held across its polls (each poll may run on another thread).
    pub fn resume(held: Vec<(u64, WsMessage)>) -> Held {
        Held {
            previous: HELD.replace(Some(held)),
            ended: false,
        }
    }

    /// Stops holding on this thread and gives back what was held, unsent.
    pub fn take(mut self) -> Vec<(u64, WsMessage)> {
        self.end()
    }

    fn end(&mut self) -> Vec<(u64, WsMessage)> {
        self.ended = true;
        HELD.replace(self.previous.take()).unwrap_or_default()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if !self.ended {
            self.end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_are_held_until_flushed_and_dropped_on_restart() {
        let text = |t: &str| WsMessage::Text(t.into());
        assert!(hold(1, text("now")).is_some(), "no callback: sent now");
        let held = Held::begin();
        assert!(hold(1, text("first attempt")).is_none());
        Held::restart();
        assert!(hold(1, text("second attempt")).is_none());
        let mut held = held;
        let kept = held.end();
        assert_eq!(kept, vec![(1, text("second attempt"))]);
        assert!(hold(1, text("after")).is_some(), "no longer held");
        let held = Held::begin();
        assert!(hold(2, text("x")).is_none());
        assert_eq!(held.discard(), 1);
        assert!(hold(2, text("y")).is_some());
    }
}
