//! Graceful shutdown, one mechanism: a watch channel every connection selects on.
//!
//! The server flips it on SIGTERM or Ctrl-C; each connection stops reading new requests,
//! answers the ones it has, and ends. Each connection task holds a clone of a completion
//! sender; when the last one drops, the server knows every connection is done and the
//! logs can be flushed and marked clean.

use tokio::sync::watch;

/// A connection's view of the shutdown signal.
#[derive(Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

impl Shutdown {
    /// A signal and the sender that fires it.
    pub fn new() -> (watch::Sender<bool>, Shutdown) {
        let (sender, receiver) = watch::channel(false);
        (sender, Shutdown { receiver })
    }

    /// Whether shutdown has begun.
    pub fn is_shutdown(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Resolves once shutdown begins (at once if it already has).
    pub async fn recv(&mut self) {
        // An error means the sender is gone, which only happens when the server is.
        let _ = self.receiver.wait_for(|stopping| *stopping).await;
    }
}
