//! `tokbind proxy`: a TLS-terminating reverse proxy that makes any HTTP backend Token
//! Binding-capable (draft-ietf-tokbind-ttrp-09).
//!
//! It negotiates Token Binding, verifies `Sec-Token-Binding` with the same
//! `TokenBindingLayer` (and its per-connection cache) as a direct server — so a header
//! replayed on another connection, forged or malformed is answered with the layer's 400 and
//! never reaches the backend — then forwards the request with the verified IDs in
//! `Sec-Provided-Token-Binding-ID`, `Sec-Referred-Token-Binding-ID` and
//! `Sec-Other-Token-Binding-ID`, after removing any copies the client sent. With
//! `--client-certificates`, the certificate a client authenticated with goes along in
//! `Client-Cert` (RFC 9440), so certificate-bound tokens work behind it. Bodies stream in
//! both directions; responses (including `Include-Referred-Token-Binding-ID`) pass back
//! unchanged; an unreachable backend is a 502.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::header::{CONNECTION, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokbind_proto::ConnectionInfo;
use tower_tokbind::TokenBindingLayer;
use tower_tokbind::TokenBindingState;
use tower_tokbind::ttrp::{
    CLIENT_CERT, SEC_OTHER_TOKEN_BINDING_ID, SEC_PROVIDED_TOKEN_BINDING_ID,
    SEC_REFERRED_TOKEN_BINDING_ID, encode_client_cert, encode_others, strip_forwarding_headers,
};

use crate::Failure;

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
    /// Speak HTTP/2 to the backend (cleartext, prior knowledge) instead of HTTP/1.1.
    #[arg(long)]
    upstream_http2: bool,
    /// Give up on the backend after this many seconds (answering 502).
    #[arg(long, default_value_t = 30)]
    upstream_timeout: u64,
}

struct Proxy {
    client: Client<HttpConnector, Body>,
    upstream: Uri,
    http2: bool,
    timeout: Duration,
}

pub async fn run(args: ProxyArgs) -> Result<(), Failure> {
    if args.upstream.scheme_str() != Some("http") || args.upstream.authority().is_none() {
        return Err(Failure::Usage(format!(
            "--upstream must be http://HOST:PORT, got {}",
            args.upstream
        )));
    }
    let acceptor = args.tls.acceptor(args.listen)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::Rejected(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::Rejected(e.to_string()))?;

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(args.upstream_timeout)));
    let client = Client::builder(TokioExecutor::new())
        .http2_only(args.upstream_http2)
        .build(connector);
    let proxy = Arc::new(Proxy {
        client,
        upstream: args.upstream,
        http2: args.upstream_http2,
        timeout: Duration::from_secs(args.upstream_timeout),
    });
    let app = Router::new()
        .fallback(forward)
        .with_state(proxy)
        .layer(TokenBindingLayer::new());

    println!("listening on https://{addr}");
    let _ = std::io::stdout().flush();
    tokbind_tls::serve(listener, acceptor, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Failure::Rejected(format!("proxy failed: {e}")))
}

/// Connection-level headers a proxy must not forward (RFC 9110 §7.6.1), plus any the
/// `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(name);
    }
}

fn bad_gateway(detail: String) -> Response {
    tracing::warn!(%detail, "upstream unavailable");
    tower_tokbind::problem::problem_response(
        StatusCode::BAD_GATEWAY,
        "upstream_unavailable",
        &detail,
    )
}

async fn forward(State(proxy): State<Arc<Proxy>>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let original_host = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            parts
                .headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        });
    // Whatever the client sent about Token Binding is replaced by what was verified here.
    strip_forwarding_headers(&mut parts.headers);
    strip_hop_by_hop(&mut parts.headers);
    if let Some(v) = parts
        .extensions
        .get::<TokenBindingState>()
        .and_then(TokenBindingState::verified)
    {
        let value =
            |s: String| HeaderValue::try_from(s).expect("base64url and hex are header-safe");
        parts.headers.insert(
            SEC_PROVIDED_TOKEN_BINDING_ID,
            value(v.provided.to_base64url()),
        );
        if let Some(r) = &v.referred {
            parts
                .headers
                .insert(SEC_REFERRED_TOKEN_BINDING_ID, value(r.to_base64url()));
        }
        if let Some(others) = encode_others(&v.others) {
            parts
                .headers
                .insert(SEC_OTHER_TOKEN_BINDING_ID, value(others));
        }
    }
    if let Some(der) = parts
        .extensions
        .get::<Arc<ConnectionInfo>>()
        .and_then(|info| info.client_certificate())
    {
        parts.headers.insert(CLIENT_CERT, encode_client_cert(der));
    }
    parts
        .headers
        .insert("x-forwarded-proto", HeaderValue::from_static("https"));
    if let Some(host) = original_host.and_then(|h| HeaderValue::try_from(h).ok()) {
        parts.headers.insert(HOST, host);
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let upstream = format!(
        "{}://{}{path}",
        proxy.upstream.scheme_str().unwrap_or("http"),
        proxy.upstream.authority().map_or("", |a| a.as_str())
    );
    parts.uri = match upstream.parse() {
        Ok(u) => u,
        Err(e) => return bad_gateway(format!("cannot build the upstream URI: {e}")),
    };
    parts.version = if proxy.http2 {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    parts.extensions = Default::default();

    match tokio::time::timeout(
        proxy.timeout,
        proxy.client.request(http::Request::from_parts(parts, body)),
    )
    .await
    {
        Ok(Ok(res)) => {
            let (mut parts, body) = res.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Body::new(body))
        }
        Ok(Err(e)) => bad_gateway(format!("the backend cannot be reached: {e}")),
        Err(_) => bad_gateway(format!(
            "the backend did not answer within {} s",
            proxy.timeout.as_secs()
        )),
    }
}
