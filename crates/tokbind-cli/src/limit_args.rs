//! The limits `tokbind serve` and `tokbind proxy` hold their clients to (see the README's
//! "Limits" section for the defaults and why).

use std::time::Duration;

use tokbind_tls::{AcceptorBuilder, Limits};

use crate::Failure;
use crate::input::{Interval, Timeout};

/// `--handshake-timeout`, `--header-read-timeout`, `--idle-timeout`, `--max-connections`,
/// `--max-header-bytes`, the HTTP/2 ones, `--progress-timeout`, `--min-data-rate` and
/// `--drain-timeout`.
#[derive(Debug, clap::Args)]
pub struct LimitArgs {
    /// How long a client may take for its TLS handshake (10s, 500ms, or seconds).
    #[arg(long, value_name = "DURATION", default_value_t = Timeout(AcceptorBuilder::DEFAULT_HANDSHAKE_TIMEOUT))]
    handshake_timeout: Timeout,
    /// How long a new connection may take, after its TLS handshake, to send the head of
    /// its first request.
    #[arg(long, value_name = "DURATION", default_value_t = Timeout(Limits::DEFAULT_HEADER_READ_TIMEOUT))]
    header_read_timeout: Timeout,
    /// How long a connection may wait with no request in flight after its last response
    /// (HTTP/1.1 keep-alive, HTTP/2 idle).
    #[arg(long, value_name = "DURATION", default_value_t = Timeout(Limits::DEFAULT_IDLE_TIMEOUT))]
    idle_timeout: Timeout,
    /// How many connections may be open at once; beyond that new clients wait in the
    /// listen backlog and idle keep-alive connections are closed.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT_MAX_CONNECTIONS as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: u64,
    /// The most bytes of an HTTP/1.1 request head (431 beyond; at least 8192).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::DEFAULT_MAX_HEADER_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(Limits::MIN_MAX_HEADER_BYTES as u64..))]
    max_header_bytes: u64,
    /// HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE: the most bytes of a request's header fields.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::DEFAULT_HTTP2_MAX_HEADER_LIST_SIZE)]
    http2_max_header_list_size: u32,
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: requests in flight on one connection.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS)]
    http2_max_concurrent_streams: u32,
    /// Send an HTTP/2 PING this often (`off`: never).
    #[arg(long, value_name = "DURATION", default_value_t = Interval(Some(Limits::DEFAULT_HTTP2_KEEP_ALIVE_INTERVAL)))]
    http2_keep_alive_interval: Interval,
    /// Close an HTTP/2 connection whose PING is not answered within this.
    #[arg(long, value_name = "DURATION", default_value_t = Timeout(Limits::DEFAULT_HTTP2_KEEP_ALIVE_TIMEOUT))]
    http2_keep_alive_timeout: Timeout,
    /// How long a request in flight may wait on its client at a time: for more of its body,
    /// or for the client to read more of the response.
    #[arg(long, value_name = "DURATION", default_value_t = Timeout(Limits::DEFAULT_PROGRESS_TIMEOUT))]
    progress_timeout: Timeout,
    /// The slowest a client may send a body or read a response, in bytes a second
    /// (0: no minimum).
    #[arg(long, value_name = "BYTES_PER_SECOND", default_value_t = Limits::DEFAULT_MIN_DATA_RATE)]
    min_data_rate: u32,
    /// After the first SIGINT or SIGTERM, how long requests in flight have to finish (a
    /// second signal stops at once).
    #[arg(long, value_name = "DURATION", default_value_t = Timeout(Limits::DEFAULT_DRAIN_TIMEOUT))]
    drain_timeout: Timeout,
}

impl LimitArgs {
    /// The TLS handshake timeout, which the acceptor applies.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout.0
    }

    /// The limits of the HTTP server.
    pub fn limits(&self) -> Result<Limits, Failure> {
        Limits::default()
            .header_read_timeout(self.header_read_timeout.0)
            .idle_timeout(self.idle_timeout.0)
            .http2_max_header_list_size(self.http2_max_header_list_size)
            .http2_max_concurrent_streams(self.http2_max_concurrent_streams)
            .http2_keep_alive(
                self.http2_keep_alive_interval.0,
                self.http2_keep_alive_timeout.0,
            )
            .progress_timeout(self.progress_timeout.0)
            .min_data_rate(self.min_data_rate)
            .drain_timeout(self.drain_timeout.0)
            .max_connections(usize::try_from(self.max_connections).unwrap_or(usize::MAX))
            .and_then(|l| {
                l.max_header_bytes(usize::try_from(self.max_header_bytes).unwrap_or(usize::MAX))
            })
            .map_err(|e| Failure::Usage(e.to_string()))
    }
}
