//! A deadline on progress for a connection's responses: a client that sends requests but
//! never reads the answers fills its socket buffers, the writer waits, and the connection
//! would hold its slot and its buffers for ever.
//!
//! [`StallGuard`] wraps the write half: once a write, flush or shutdown cannot proceed, the
//! socket must accept bytes within `response_write_timeout`, or the operation fails with
//! [`WriteStalled`]. Any byte accepted restarts the clock, so a slow reader is served and
//! only one that has stopped is closed. `sendfile` waits on the socket itself, so it takes
//! the same timeout ([`crate::sendfile::send_file_range`]).
//!
//! Kafka has no separate setting: its selector mutes a connection while a response is
//! unsent and closes it once no byte has moved for `connections.max.idle.ms`. The default
//! here is that same value.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::AsyncWrite;
use tokio::time::{Instant, Sleep};

/// No byte of a response was accepted by the socket for `timeout_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no response bytes accepted for {timeout_ms} ms")]
pub struct WriteStalled {
    /// The limit, `response_write_timeout_ms`.
    pub timeout_ms: u64,
}

/// The I/O error a stalled write fails with; [`write_stalled`] recognises it.
pub fn write_stalled_error(timeout: Duration) -> io::Error {
    let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    io::Error::new(io::ErrorKind::TimedOut, WriteStalled { timeout_ms })
}

/// The stall an I/O error reports, if it is one.
pub fn write_stalled(error: &io::Error) -> Option<WriteStalled> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<WriteStalled>())
        .copied()
}

/// A write half whose operations fail with [`WriteStalled`] once the socket has accepted
/// nothing for `timeout` while they wait.
pub struct StallGuard<W> {
    inner: W,
    timeout: Duration,
    /// When the waiting operation fails; set at its first `Pending` after progress. Boxed
    /// once per connection, reset rather than re-created.
    deadline: Pin<Box<Sleep>>,
    /// Whether `deadline` is running: an operation is waiting and nothing moved since.
    waiting: bool,
}

impl<W> StallGuard<W> {
    /// Guards `inner` with `timeout`.
    pub fn new(inner: W, timeout: Duration) -> Self {
        StallGuard {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            waiting: false,
        }
    }

    /// The guarded write half.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// How long an operation may wait without progress.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Passes a finished poll through (progress: the clock stops) or, while it waits,
    /// starts the clock and fails the operation when it runs out.
    fn watch<T>(
        &mut self,
        context: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.waiting = false;
            return poll;
        }
        if !self.waiting {
            self.waiting = true;
            self.deadline.as_mut().reset(Instant::now() + self.timeout);
        }
        match self.deadline.as_mut().poll(context) {
            Poll::Ready(()) => Poll::Ready(Err(write_stalled_error(self.timeout))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for StallGuard<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(context, bytes);
        this.watch(context, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(context, buffers);
        this.watch(context, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(context);
        this.watch(context, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_shutdown(context);
        this.watch(context, poll)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(200);

    #[tokio::test]
    async fn a_write_nobody_reads_fails_after_the_timeout() {
        // Proves the deadline: with the peer's buffer full and nothing read, a write fails
        // with WriteStalled once the timeout has passed since it started waiting.
        let (_reader, writer) = tokio::io::duplex(16);
        let mut guarded = StallGuard::new(writer, TIMEOUT);
        let started = Instant::now();
        let error = guarded
            .write_all(&[0u8; 64])
            .await
            .expect_err("nobody reads");
        assert_eq!(
            write_stalled(&error),
            Some(WriteStalled { timeout_ms: 200 })
        );
        let elapsed = started.elapsed();
        assert!(elapsed >= TIMEOUT, "{elapsed:?}");
        assert!(elapsed < TIMEOUT * 10, "{elapsed:?}");
    }

    #[tokio::test]
    async fn a_slow_reader_is_served_however_long_the_whole_write_takes() {
        // Proves the clock restarts with every byte accepted: a peer that reads 8 bytes
        // every 50 ms receives 96 bytes, which take 0.6 s, three times the timeout.
        let (mut reader, writer) = tokio::io::duplex(8);
        let mut guarded = StallGuard::new(writer, TIMEOUT);
        let slow_reader = tokio::spawn(async move {
            let mut received = Vec::new();
            let mut chunk = [0u8; 8];
            while received.len() < 96 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let count = reader.read(&mut chunk).await.expect("read");
                received.extend_from_slice(&chunk[..count]);
            }
            received
        });
        let started = Instant::now();
        guarded
            .write_all(&[7u8; 96])
            .await
            .expect("a slow reader is not stalled");
        let received = slow_reader.await.expect("the reader task");
        assert_eq!(received, vec![7u8; 96]);
        assert!(started.elapsed() > TIMEOUT * 2, "{:?}", started.elapsed());
    }
}
