//! `tokbind proxy`: a TLS-terminating reverse proxy that makes any HTTP backend Token
//! Binding-capable (draft-ietf-tokbind-ttrp-09). The proxy itself is
//! [`tokbind_proxy::Proxy`]; this is its command line: `--upstream-*` set its options, and
//! clients are held to the same limits as `tokbind serve` (`--header-read-timeout` and the
//! rest; a request body sent too slowly is a 408 `request_body_timeout`).

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use http::Uri;
use tokbind_proxy::Proxy;
use tokio::sync::Semaphore;

use crate::Failure;
use crate::input::Timeout;

/// `tokbind proxy` arguments.
#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// The backend, e.g. `http://127.0.0.1:8080`.
    #[arg(long)]
    upstream: Uri,
    #[command(flatten)]
    tls: crate::tls_args::ServerTlsArgs,
    #[command(flatten)]
    limits: crate::limit_args::LimitArgs,
    /// Speak HTTP/2 to the backend (cleartext, prior knowledge) instead of HTTP/1.1.
    #[arg(long)]
    upstream_http2: bool,
    /// Give up connecting to the backend after this long (answering 504).
    #[arg(long, value_name = "DURATION", default_value_t = Timeout(Duration::from_secs(5)))]
    upstream_connect_timeout: Timeout,
    /// Give up waiting for the backend's response headers after this long from the end of
    /// the request body (answering 504), for the backend to take more of the request body,
    /// and for each part of its response body (cutting the response off).
    #[arg(long, value_name = "DURATION", default_value_t = Timeout(Duration::from_secs(30)))]
    upstream_timeout: Timeout,
    /// Send at most this many requests to the backend at once, each until its response
    /// has been forwarded; one that finds no place within --upstream-connect-timeout is
    /// answered 503.
    #[arg(long, value_name = "N", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=Semaphore::MAX_PERMITS as u64))]
    upstream_max_requests: u64,
    /// Keep at most this many idle connections to the backend.
    #[arg(long, value_name = "N", default_value_t = 32)]
    upstream_max_idle: usize,
    /// Close an idle connection to the backend after this long.
    #[arg(long, value_name = "DURATION", default_value_t = Timeout(Duration::from_secs(30)))]
    upstream_idle_timeout: Timeout,
}

pub async fn run(args: ProxyArgs) -> Result<(), Failure> {
    let proxy = Proxy::new(args.upstream)
        .map_err(|e| Failure::Usage(format!("--upstream must be http://HOST:PORT, got {}", e.0)))?;
    let acceptor = args
        .tls
        .acceptor(args.listen, args.limits.handshake_timeout())?;
    let limits = args.limits.limits()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::Rejected(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::Rejected(e.to_string()))?;

    let max_requests =
        usize::try_from(args.upstream_max_requests).unwrap_or(Semaphore::MAX_PERMITS);
    let app = proxy
        .upstream_http2(args.upstream_http2)
        .upstream_connect_timeout(args.upstream_connect_timeout.0)
        .upstream_timeout(args.upstream_timeout.0)
        .upstream_max_requests(max_requests)
        .upstream_max_idle(args.upstream_max_idle)
        .upstream_idle_timeout(args.upstream_idle_timeout.0)
        .into_router();

    // Signals are handled from here on, before anyone is told the server listens.
    let shutdown = crate::shutdown::requested();
    println!("listening on https://{addr}");
    let _ = std::io::stdout().flush();
    tokbind_tls::serve(listener, acceptor, app)
        .limits(limits)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Failure::Rejected(format!("proxy failed: {e}")))
}
