//! Signals of the server process (Odoo's `ThreadedServer.signal_handler`), turned into
//! coalesced events: a first SIGINT or SIGTERM asks for a graceful stop and a second one
//! exits at once ("Forced shutdown."); SIGHUP asks for an addon swap (several while one
//! runs make one more); SIGQUIT asks for a dump of what is running; SIGUSR1 reopens the log
//! file (after logrotate moved it). No signal ever takes the
//! default action (which would kill the process) once [`Signals::install`] has run.
//!
//! A phoenix re-exec blocks these signals before `execve` so that none kills the process
//! between the two images; [`Signals::install`] unblocks them once its handlers are in
//! place, and the pending ones are delivered then.

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{watch, Notify};

/// The signals the server handles.
pub const HANDLED: [Signal; 5] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
];

/// The events the service loop waits on.
#[derive(Clone)]
pub struct Signals {
    /// Turns true at the first SIGINT or SIGTERM.
    pub stop: watch::Receiver<bool>,
    /// Notified at SIGHUP (one stored permit: signals during a swap coalesce).
    pub reload: Arc<Notify>,
    /// Notified at SIGQUIT.
    pub dump: Arc<Notify>,
}

/// The set of [`HANDLED`] signals.
pub fn handled_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in HANDLED {
        set.add(s);
    }
    set
}

impl Signals {
    /// Installs the handlers (inside the runtime) and unblocks the handled signals.
    pub fn install() -> std::io::Result<Signals> {
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        let mut quit = signal(SignalKind::quit())?;
        let mut usr1 = signal(SignalKind::user_defined1())?;
        let (stop_tx, stop) = watch::channel(false);
        let reload = Arc::new(Notify::new());
        let dump = Arc::new(Notify::new());
        let (reload_tx, dump_tx) = (Arc::clone(&reload), Arc::clone(&dump));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = int.recv() => stop_signal(&stop_tx),
                    _ = term.recv() => stop_signal(&stop_tx),
                    _ = hup.recv() => reload_tx.notify_one(),
                    _ = quit.recv() => dump_tx.notify_one(),
                    _ = usr1.recv() => crate::netsvc::reopen(),
                }
            }
        });
        // Handlers are in place: deliver what was blocked across a re-exec.
        let _ =
            nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&handled_set()), None);
        Ok(Signals { stop, reload, dump })
    }
}

fn stop_signal(stop: &watch::Sender<bool>) {
    if *stop.borrow() {
        eprintln!("Forced shutdown.");
        crate::netsvc::flush();
        std::process::exit(0);
    }
    tracing::info!(target: "inphms.service.server", "Initiating shutdown");
    tracing::info!(target: "inphms.service.server", "Hit CTRL-C again or send a second signal to force the shutdown.");
    let _ = stop.send(true);
}
