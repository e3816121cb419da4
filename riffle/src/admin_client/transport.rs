//! The admin client's byte stream: a TCP socket, or TLS over one (rustls, blocking).
//!
//! [`connect`] tries each `HOST:PORT` of the bootstrap list in order and, for TLS, finishes
//! the handshake before returning, so a certificate problem is reported as a handshake
//! error naming the broker rather than as a failed first request. The socket's read and
//! write timeouts ([`IO_TIMEOUT`]) bound the handshake too.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

use super::{AdminClientError, CONNECT_TIMEOUT, IO_TIMEOUT, socket_error};

/// A connected stream to the broker.
pub(super) enum Transport {
    /// PLAINTEXT and SASL_PLAINTEXT.
    Plain(TcpStream),
    /// SSL and SASL_SSL. Boxed: the TLS state is far larger than a socket.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Transport {
    /// Sets the socket's read and write timeouts.
    pub(super) fn set_timeouts(&self, timeout: Duration) -> io::Result<()> {
        let socket = match self {
            Transport::Plain(stream) => stream,
            Transport::Tls(stream) => stream.get_ref(),
        };
        socket.set_read_timeout(Some(timeout))?;
        socket.set_write_timeout(Some(timeout))
    }
}

impl Read for Transport {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.read(buffer),
            Transport::Tls(stream) => stream.read(buffer),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.write(bytes),
            Transport::Tls(stream) => stream.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => stream.flush(),
            Transport::Tls(stream) => stream.flush(),
        }
    }
}

/// Connects to the first broker of `bootstrap` (`HOST:PORT[,HOST:PORT...]`) that accepts,
/// then runs the TLS handshake over it when `tls` is given.
pub(super) fn connect(
    bootstrap: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<(Transport, SocketAddr), AdminClientError> {
    let (stream, peer, host) = connect_tcp(bootstrap)?;
    let Some(tls) = tls else {
        return Ok((Transport::Plain(stream), peer));
    };
    let server_name = ServerName::try_from(host.clone())
        .map_err(|_| AdminClientError::InvalidServerName { host })?;
    let connection = ClientConnection::new(tls, server_name).map_err(|source| {
        AdminClientError::TlsHandshake {
            peer,
            source: io::Error::new(ErrorKind::InvalidData, source),
        }
    })?;
    let mut stream = StreamOwned::new(connection, stream);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|source| handshake_error(peer, source))?;
    }
    Ok((Transport::Tls(Box::new(stream)), peer))
}

/// A TLS error (rustls reports them as invalid data) or an alert names the handshake; a
/// timeout or closed socket is classified as for any request.
fn handshake_error(peer: SocketAddr, source: io::Error) -> AdminClientError {
    match source.kind() {
        ErrorKind::InvalidData => AdminClientError::TlsHandshake { peer, source },
        _ => socket_error("TLS handshake", peer, source),
    }
}

/// Resolves each entry of `bootstrap` in turn and connects to the first address that
/// answers. Returns the socket, its address and the host name as written (for TLS).
fn connect_tcp(bootstrap: &str) -> Result<(TcpStream, SocketAddr, String), AdminClientError> {
    let mut last_error: Option<AdminClientError> = None;
    for entry in bootstrap
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
    {
        let addresses = match entry.to_socket_addrs() {
            Ok(addresses) => addresses,
            Err(source) => {
                last_error = Some(AdminClientError::Resolve {
                    bootstrap: entry.to_owned(),
                    source,
                });
                continue;
            }
        };
        for address in addresses {
            match connect_address(address) {
                Ok(stream) => return Ok((stream, address, host_of(entry))),
                Err(source) => {
                    last_error = Some(AdminClientError::Connect {
                        bootstrap: entry.to_owned(),
                        source,
                    });
                }
            }
        }
    }
    Err(last_error.unwrap_or_else(|| AdminClientError::Resolve {
        bootstrap: bootstrap.to_owned(),
        source: io::Error::new(ErrorKind::NotFound, "no HOST:PORT given"),
    }))
}

/// One TCP connection with [`IO_TIMEOUT`] on reads and writes and Nagle off.
fn connect_address(address: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&address, CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The host part of `HOST:PORT`, without the brackets of `[::1]:9092`.
fn host_of(entry: &str) -> String {
    let host = entry.rsplit_once(':').map_or(entry, |(host, _port)| host);
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_of_a_bootstrap_entry_drops_port_and_brackets() {
        // The TLS server name comes from it: a name, an IPv4 or an IPv6 address.
        assert_eq!(host_of("localhost:9093"), "localhost");
        assert_eq!(host_of("127.0.0.1:9093"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9093"), "::1");
    }
}
