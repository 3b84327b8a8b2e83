//! The byte budget of the messages waiting to be written to websockets: each socket may
//! hold at most `websocket_send_buffer` bytes queued, and all the sockets of a host at most
//! `websocket_send_buffer_total`. A message is charged when it is queued ([`Budget::take`])
//! and the charge is given back when the message is written or dropped ([`Charge`]'s
//! `Drop`, which also wakes a loop handler waiting for room, [`Budget::drained`]).
//!
//! A message alone in its socket's queue is always accepted, whatever its size (the
//! message limit bounds it), so that one large message never wedges a socket; a message
//! that would take the socket, or the host, past its budget is refused, and the socket is
//! closed with 1013 (Try Again Later) by the caller: a client that does not read never
//! makes the host's memory grow past the budgets.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// One socket's account, and the host's total it also charges.
#[derive(Debug)]
pub(super) struct Budget {
    queued: AtomicUsize,
    limit: usize,
    total: Arc<AtomicUsize>,
    total_limit: usize,
    /// Notified each time a charge is given back.
    pub(super) drained: Notify,
}

/// Which budget a refused message would have exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// The socket's own (`websocket_send_buffer`).
    Socket(usize),
    /// The host's, all sockets together (`websocket_send_buffer_total`).
    Total(usize),
}

impl std::fmt::Display for Over {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Over::Socket(n) => write!(f, "its {n} bytes of websocket_send_buffer"),
            Over::Total(n) => write!(
                f,
                "the {n} bytes of websocket_send_buffer_total (all sockets)"
            ),
        }
    }
}

/// Bytes charged for one queued message; given back when dropped.
#[derive(Debug)]
pub(super) struct Charge {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.queued.fetch_sub(self.bytes, Ordering::AcqRel);
        self.budget.total.fetch_sub(self.bytes, Ordering::AcqRel);
        self.budget.drained.notify_waiters();
    }
}

/// Adds `bytes` to `counter` when it stays within `limit` or the counter is empty.
fn add_within(counter: &AtomicUsize, bytes: usize, limit: usize) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n == 0 || n.saturating_add(bytes) <= limit).then(|| n.saturating_add(bytes))
        })
        .is_ok()
}

impl Budget {
    pub(super) fn new(limit: usize, total: Arc<AtomicUsize>, total_limit: usize) -> Budget {
        Budget {
            queued: AtomicUsize::new(0),
            limit,
            total,
            total_limit,
            drained: Notify::new(),
        }
    }

    /// Charges `bytes` for a message to queue, or says which budget it would exceed.
    pub(super) fn take(self: &Arc<Self>, bytes: usize) -> Result<Charge, Over> {
        if !add_within(&self.queued, bytes, self.limit) {
            return Err(Over::Socket(self.limit));
        }
        if !add_within(&self.total, bytes, self.total_limit) {
            self.queued.fetch_sub(bytes, Ordering::AcqRel);
            return Err(Over::Total(self.total_limit));
        }
        Ok(Charge {
            budget: Arc::clone(self),
            bytes,
        })
    }

    /// Bytes queued on this socket.
    pub(super) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_and_the_host_are_bounded_by_bytes() {
        let total = Arc::new(AtomicUsize::new(0));
        let a = Arc::new(Budget::new(100, Arc::clone(&total), 150));
        let b = Arc::new(Budget::new(100, Arc::clone(&total), 150));
        // Alone in its queue, a message larger than the budget passes.
        let big = a.take(500).unwrap();
        assert_eq!(a.take(1).unwrap_err(), Over::Socket(100));
        drop(big);
        assert_eq!((a.queued(), total.load(Ordering::Acquire)), (0, 0));
        let one = a.take(60).unwrap();
        let _two = a.take(40).unwrap();
        assert_eq!(a.take(1).unwrap_err(), Over::Socket(100));
        // The host's total: 100 on `a`, so `b` gets 50 more.
        let _three = b.take(50).unwrap();
        assert_eq!(b.take(1).unwrap_err(), Over::Total(150));
        assert_eq!(b.queued(), 50, "a refused charge is not kept");
        drop(one);
        assert!(b.take(10).is_ok());
    }
}
