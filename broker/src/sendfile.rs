//! Sending a segment file range to a client's socket with `sendfile(2)`: the kernel moves
//! the bytes from the page cache to the socket, so the broker never copies them (Kafka's
//! zero-copy fetch). Used by the connection writer for large Fetch record sets.
//!
//! A TLS connection cannot use it (the bytes must be encrypted in user space, and rustls
//! is no kernel TLS), so [`write_file_range`] reads the range in chunks and writes them
//! through the TLS stream instead, as Kafka does on its SSL listeners.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use riffle_storage::FileRange;
use tokio::io::{AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::connection::write_stall::write_stalled_error;

/// At most this much per `sendfile` call, so one large range does not hold the worker
/// thread in the kernel for long.
const MAX_BYTES_PER_CALL: usize = 1024 * 1024;

/// The chunk [`write_file_range`] reads and encrypts at a time: a few TLS records (16 KiB
/// each), small enough that a connection holds little memory for a large fetch.
const COPY_CHUNK_BYTES: usize = 256 * 1024;

/// Sends all of `range` to `socket`, waiting whenever the socket's buffer is full, each
/// time for at most `stall_timeout` without a byte sent.
///
/// # Errors
/// A socket error, a stall ([`crate::connection::write_stall::WriteStalled`]), or
/// `UnexpectedEof` if the file ends before the range does (it was truncated under us);
/// either way the response is incomplete and the connection must close.
pub async fn send_file_range(
    socket: &TcpStream,
    range: &FileRange,
    stall_timeout: Duration,
) -> io::Result<()> {
    let mut offset = libc::off_t::try_from(range.position())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut remaining_bytes = range.len();
    let mut last_progress = Instant::now();
    while remaining_bytes > 0 {
        tokio::time::timeout_at(last_progress + stall_timeout, socket.writable())
            .await
            .map_err(|_elapsed| write_stalled_error(stall_timeout))??;
        let count = remaining_bytes.min(MAX_BYTES_PER_CALL);
        let sent = socket.try_io(Interest::WRITABLE, || {
            // SAFETY: both descriptors stay open for the call (the socket and the range are
            // borrowed), and `offset` is an off_t the kernel reads and advances.
            let sent = unsafe {
                libc::sendfile(
                    socket.as_raw_fd(),
                    range.file().as_raw_fd(),
                    &raw mut offset,
                    count,
                )
            };
            usize::try_from(sent).map_err(|_| io::Error::last_os_error())
        });
        match sent {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{} ends before the range sent", range.path().display()),
                ));
            }
            Ok(sent) => {
                remaining_bytes -= sent;
                last_progress = Instant::now();
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Copies all of `range` to `writer` through user space, [`COPY_CHUNK_BYTES`] at a time:
/// for TLS streams, which must see the bytes to encrypt them.
///
/// Each chunk is one `pread`, run on the worker thread like `sendfile` above: the range
/// was just located through the page cache, so the read is a memory copy.
///
/// # Errors
/// A read or write error, or `UnexpectedEof` if the file ends before the range does.
pub async fn write_file_range<W: AsyncWrite + Unpin + ?Sized>(
    writer: &mut W,
    range: &FileRange,
) -> io::Result<()> {
    let mut chunk = vec![0u8; range.len().min(COPY_CHUNK_BYTES)];
    let mut position = range.position();
    let mut remaining_bytes = range.len();
    while remaining_bytes > 0 {
        let wanted = remaining_bytes.min(chunk.len());
        let read = range.file().read_at(&mut chunk[..wanted], position)?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} ends before the range sent", range.path().display()),
            ));
        }
        writer.write_all(&chunk[..read]).await?;
        remaining_bytes -= read;
        position += u64::try_from(read).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    }
    Ok(())
}
