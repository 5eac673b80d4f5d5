//! How much of a server a client may hold, and for how long: the limits [`serve`](crate::serve())
//! applies to every connection.
//!
//! A client that connects and then sends nothing, sends its request one byte at a time,
//! or keeps a connection open after its last request holds a connection (and its file
//! descriptor and buffers) without doing anything useful. Each limit bounds one way of
//! doing that; the README's "Limits" section compares the defaults with nginx and hyper.

use std::time::Duration;

use crate::error::ConfigError;

/// The limits of [`serve`](crate::serve()). [`Limits::default()`] is safe for a server on
/// the internet; each setter documents its default.
///
/// The TLS handshake has its own limit on the acceptor,
/// [`AcceptorBuilder::handshake_timeout`](crate::AcceptorBuilder::handshake_timeout).
///
/// ```
/// use std::time::Duration;
/// use tokbind_tls::{Limits, SelfSigned, ServerVerification, TokenBindingAcceptor, TokenBindingConnector};
/// use tokio::io::AsyncReadExt as _;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let limits = Limits::default()
///     .header_read_timeout(Duration::from_millis(200))
///     .idle_timeout(Duration::from_secs(15))
///     .max_connections(10_000)?;
///
/// let cert = SelfSigned::generate(&["localhost"])?;
/// let acceptor = TokenBindingAcceptor::builder(&cert.cert_pem, &cert.key_pem)?.build()?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let addr = listener.local_addr()?;
/// let app = tower::service_fn(|_req: http::Request<tokbind_tls::RequestBody>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hello")))
/// });
/// tokio::spawn(std::future::IntoFuture::into_future(
///     tokbind_tls::serve(listener, acceptor, app).limits(limits),
/// ));
///
/// // A client that completes the handshake and then sends nothing is closed once the
/// // header read timeout has passed.
/// let connector = TokenBindingConnector::builder()
///     .server_verification(ServerVerification::Roots(cert.cert_pem.clone()))
///     .build()?;
/// let tcp = tokio::net::TcpStream::connect(addr).await?;
/// let (mut tls, _) = connector.connect("localhost", tcp).await?;
/// let mut buf = [0u8; 1];
/// let read = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await?;
/// assert!(matches!(read, Ok(0) | Err(_)), "the server closed the connection");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Limits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) max_header_bytes: usize,
    pub(crate) http2_max_header_list_size: u32,
    pub(crate) http2_max_concurrent_streams: u32,
    pub(crate) http2_keep_alive_interval: Option<Duration>,
    pub(crate) http2_keep_alive_timeout: Duration,
    pub(crate) progress_timeout: Duration,
    pub(crate) min_data_rate: u32,
    pub(crate) drain_timeout: Duration,
}

// The default leaves room for the largest Sec-Token-Binding value and 8 KiB more.
const _: () = assert!(
    Limits::DEFAULT_MAX_HEADER_BYTES >= tokbind_proto::header::MAX_HEADER_VALUE_LEN + 8 * 1024
);

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            max_header_bytes: Self::DEFAULT_MAX_HEADER_BYTES,
            http2_max_header_list_size: Self::DEFAULT_HTTP2_MAX_HEADER_LIST_SIZE,
            http2_max_concurrent_streams: Self::DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS,
            http2_keep_alive_interval: Some(Self::DEFAULT_HTTP2_KEEP_ALIVE_INTERVAL),
            http2_keep_alive_timeout: Self::DEFAULT_HTTP2_KEEP_ALIVE_TIMEOUT,
            progress_timeout: Self::DEFAULT_PROGRESS_TIMEOUT,
            min_data_rate: Self::DEFAULT_MIN_DATA_RATE,
            drain_timeout: Self::DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

impl Limits {
    /// Default of [`header_read_timeout`](Self::header_read_timeout): 10 s.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default of [`idle_timeout`](Self::idle_timeout): 30 s.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default of [`max_connections`](Self::max_connections): 4096.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
    /// Default of [`max_header_bytes`](Self::max_header_bytes): 96 KiB, room for the
    /// largest `Sec-Token-Binding` value RFC 8471 allows
    /// ([`MAX_HEADER_VALUE_LEN`](tokbind_proto::header::MAX_HEADER_VALUE_LEN), 87,384
    /// bytes) and 8 KiB more, so that `TokenBindingLayer` and not the HTTP parser judges
    /// it.
    pub const DEFAULT_MAX_HEADER_BYTES: usize = 96 * 1024;
    /// The smallest [`max_header_bytes`](Self::max_header_bytes) hyper accepts: 8 KiB.
    pub const MIN_MAX_HEADER_BYTES: usize = 8 * 1024;
    /// Default of [`http2_max_header_list_size`](Self::http2_max_header_list_size): 16 KiB
    /// (hyper's).
    pub const DEFAULT_HTTP2_MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;
    /// Default of [`http2_max_concurrent_streams`](Self::http2_max_concurrent_streams):
    /// 100, the least RFC 9113 §6.5.2 recommends.
    pub const DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS: u32 = 100;
    /// Default of [`http2_keep_alive`](Self::http2_keep_alive)'s interval: 20 s.
    pub const DEFAULT_HTTP2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);
    /// Default of [`http2_keep_alive`](Self::http2_keep_alive)'s timeout: 20 s (hyper's).
    pub const DEFAULT_HTTP2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
    /// Default of [`progress_timeout`](Self::progress_timeout): 30 s.
    pub const DEFAULT_PROGRESS_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default of [`min_data_rate`](Self::min_data_rate): 500 bytes a second (Apache
    /// `mod_reqtimeout`'s `MinRate`).
    pub const DEFAULT_MIN_DATA_RATE: u32 = 500;
    /// Default of [`drain_timeout`](Self::drain_timeout): 30 s.
    pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

    /// How long a new connection may take, from the end of its TLS handshake, to deliver
    /// the head (request line and headers) of its first request (default 10 s). A client
    /// that sends nothing, or sends its head a byte at a time, is closed when it runs out.
    ///
    /// It covers HTTP/1.1 and HTTP/2 alike, including the bytes read before the protocol is
    /// known (which hyper's own HTTP/1.1 `header_read_timeout` does not: `serve` uses this
    /// one instead).
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long a connection that has served a request may wait, with no request in
    /// flight, for the head of its next one (default 30 s): the keep-alive timeout of
    /// HTTP/1.1 and the idle timeout of HTTP/2 (which is closed with a GOAWAY).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How many connections may be open at once, TLS handshakes included (default 4096).
    ///
    /// At the limit the server stops accepting, so new clients wait in the kernel's listen
    /// backlog, and it closes connections that have served a request and are idle to make
    /// room. Fails for 0.
    pub fn max_connections(mut self, max: usize) -> Result<Self, ConfigError> {
        if max == 0 {
            return Err(ConfigError::Limit {
                name: "max_connections",
                minimum: 1,
                value: 0,
            });
        }
        self.max_connections = max;
        Ok(self)
    }

    /// The most bytes an HTTP/1.1 request head may take (default 96 KiB; see
    /// [`DEFAULT_MAX_HEADER_BYTES`](Self::DEFAULT_MAX_HEADER_BYTES)). A larger head is
    /// answered `431 Request Header Fields Too Large` by hyper. This is hyper's
    /// `max_buf_size`, so it fails below hyper's minimum of 8 KiB.
    pub fn max_header_bytes(mut self, max: usize) -> Result<Self, ConfigError> {
        if max < Self::MIN_MAX_HEADER_BYTES {
            return Err(ConfigError::Limit {
                name: "max_header_bytes",
                minimum: Self::MIN_MAX_HEADER_BYTES as u64,
                value: max as u64,
            });
        }
        self.max_header_bytes = max;
        Ok(self)
    }

    /// `SETTINGS_MAX_HEADER_LIST_SIZE` of HTTP/2 (RFC 9113 §6.5.2), the size of a request's
    /// header fields as HPACK counts it (default 16 KiB). A larger header block ends the
    /// connection.
    pub fn http2_max_header_list_size(mut self, max: u32) -> Self {
        self.http2_max_header_list_size = max;
        self
    }

    /// `SETTINGS_MAX_CONCURRENT_STREAMS` of HTTP/2 (RFC 9113 §6.5.2): how many requests one
    /// connection may have in flight (default 100).
    pub fn http2_max_concurrent_streams(mut self, max: u32) -> Self {
        self.http2_max_concurrent_streams = max;
        self
    }

    /// Send an HTTP/2 PING every `interval` (`None`: never) and close the connection when
    /// one is not answered within `timeout` (defaults 20 s and 20 s). It finds peers that
    /// went away while a request was in flight, which no other limit here would notice.
    pub fn http2_keep_alive(
        mut self,
        interval: impl Into<Option<Duration>>,
        timeout: Duration,
    ) -> Self {
        self.http2_keep_alive_interval = interval.into();
        self.http2_keep_alive_timeout = timeout;
        self
    }

    /// How long a request in flight may wait on its client at a time (default 30 s): for
    /// the next bytes of its body (the application's read of the
    /// [`RequestBody`](crate::RequestBody) then fails with a timeout), or for the client to
    /// read more of the response (the connection is then closed). Time the application
    /// takes to answer never counts. [`Duration::MAX`] turns it off, along with
    /// [`min_data_rate`](Self::min_data_rate).
    ///
    /// It bounds the slow-body and slow-read attacks that the header read and idle
    /// timeouts cannot see, because they end where a request begins.
    pub fn progress_timeout(mut self, timeout: Duration) -> Self {
        self.progress_timeout = timeout;
        self
    }

    /// The slowest a client may send a request body or read a response, in bytes a second
    /// (default 500; 0 turns it off). The waits of one body, or of one connection's
    /// writes, may add up to the [`progress_timeout`](Self::progress_timeout) plus one
    /// second for every `bytes_per_second` moved, so a client cannot hold a request by
    /// moving a byte just before each timeout. It is Apache `mod_reqtimeout`'s `MinRate`.
    pub fn min_data_rate(mut self, bytes_per_second: u32) -> Self {
        self.min_data_rate = bytes_per_second;
        self
    }

    /// How long, after a graceful shutdown begins, requests in flight (and connections
    /// upgraded to another protocol) have to finish before their connections are closed
    /// and the server's future completes (default 30 s).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    pub(crate) fn pace(&self) -> crate::pace::Pace {
        crate::pace::Pace {
            timeout: self.progress_timeout,
            min_rate: self.min_data_rate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_values_are_typed_errors() {
        assert!(matches!(
            Limits::default().max_connections(0),
            Err(ConfigError::Limit {
                name: "max_connections",
                ..
            })
        ));
        assert!(matches!(
            Limits::default().max_header_bytes(8191),
            Err(ConfigError::Limit {
                name: "max_header_bytes",
                minimum: 8192,
                value: 8191
            })
        ));
        assert_eq!(
            Limits::default()
                .max_header_bytes(8192)
                .unwrap()
                .max_header_bytes,
            8192
        );
    }
}
