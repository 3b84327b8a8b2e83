//! A request handed to the blocking pool ([`Handed`]), and the gate ([`StartGate`]) that
//! lets its time limit give it up before a thread of the pool starts its handler.

use super::OwnedRequest;
use std::sync::Arc;

/// A request handed to the blocking pool: to run as soon as a thread takes it, or through a
/// [`StartGate`] that its time limit may close first. Unboxed: it moves once, into the
/// task that would hold the request anyway.
#[allow(clippy::large_enum_variant)]
pub(super) enum Handed {
    Now(OwnedRequest),
    Gated(Arc<StartGate>),
}

/// A request queued for the blocking pool, until its handler starts or its time limit gives
/// it up (they race for it), so that a request answered 504 while queued never runs, and
/// its body (a mapping, charged to the budgets) is dropped with the 504, not when a thread
/// of the pool frees, seconds or minutes later.
#[derive(Debug)]
pub(super) struct StartGate(std::sync::Mutex<Gate>);

/// Unboxed: it lives once, in the gate's `Arc`.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(super) enum Gate {
    Queued(OwnedRequest),
    Started,
    GivenUp,
}

impl StartGate {
    pub(super) fn new(request: OwnedRequest) -> StartGate {
        StartGate(std::sync::Mutex::new(Gate::Queued(request)))
    }

    /// The handler's thread: the request to run, unless it was given up.
    pub(super) fn start(&self) -> Option<OwnedRequest> {
        self.take(Gate::Started)
    }

    /// The time limit: whether the handler had not started (and now never will); the
    /// request is dropped here.
    pub(super) fn give_up(&self) -> bool {
        self.take(Gate::GivenUp).is_some()
    }

    /// The queued request, leaving `to` in its place; `None` (and no change) once it was
    /// taken.
    pub(super) fn take(&self, to: Gate) -> Option<OwnedRequest> {
        let mut gate = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match std::mem::replace(&mut *gate, to) {
            Gate::Queued(request) => Some(request),
            taken => {
                *gate = taken;
                None
            }
        }
    }
}
