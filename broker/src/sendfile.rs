//! Sending a segment file range to a client's socket with `sendfile(2)`: the kernel moves
//! the bytes from the page cache to the socket, so the broker never copies them (Kafka's
//! zero-copy fetch). Used by the connection writer for large Fetch record sets.

use std::io;
use std::os::fd::AsRawFd;

use riffle_storage::FileRange;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// At most this much per `sendfile` call, so one large range does not hold the worker
/// thread in the kernel for long.
const MAX_BYTES_PER_CALL: usize = 1024 * 1024;

/// Sends all of `range` to `socket`, waiting whenever the socket's buffer is full.
///
/// # Errors
/// A socket error, or `UnexpectedEof` if the file ends before the range does (it was
/// truncated under us); either way the response is incomplete and the connection must close.
pub async fn send_file_range(socket: &TcpStream, range: &FileRange) -> io::Result<()> {
    let mut offset = libc::off_t::try_from(range.position())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut remaining_bytes = range.len();
    while remaining_bytes > 0 {
        socket.writable().await?;
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
            Ok(sent) => remaining_bytes -= sent,
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
