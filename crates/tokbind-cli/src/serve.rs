//! `tokbind serve`: a demo server protected by the verifying layer (and the DPoP layer).

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use tokbind_dpop::{DpopLayer, DpopVerifier};
use tokbind_proto::{ConnectionInfo, Mechanism, ProvenKeys, TokenBindingId};
use tower_tokbind::{ProvidedBinding, ReferredBinding, TokenBindingLayer};

use crate::Failure;

/// `tokbind serve` arguments.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// The origin clients address, which DPoP proofs must name in `htu` (default
    /// `https://` and the address listened on).
    #[arg(long)]
    public_origin: Option<String>,
    #[command(flatten)]
    tls: crate::tls_args::ServerTlsArgs,
    #[command(flatten)]
    limits: crate::limit_args::LimitArgs,
}

pub async fn run(args: ServeArgs) -> Result<(), Failure> {
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

    let origin = args
        .public_origin
        .unwrap_or_else(|| format!("https://{addr}"));
    let dpop = DpopLayer::new(DpopVerifier::new(), &origin)
        .map_err(|e| Failure::Usage(format!("--public-origin {origin}: {e}")))?;
    let app = Router::new()
        .route("/", get(whoami))
        .layer(dpop)
        .layer(TokenBindingLayer::new());
    // Signals are handled from here on, before anyone is told the server listens.
    let shutdown = crate::shutdown::requested();
    // The first line is the contract scripts and tests wait for.
    println!("listening on https://{addr}");
    let _ = std::io::stdout().flush();
    tokbind_tls::serve(listener, acceptor, app)
        .limits(limits)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Failure::Rejected(format!("server failed: {e}")))
}

/// `GET /`: what this connection negotiated, which IDs the request proved, the DPoP key
/// when the request carried a valid proof, and the client certificate's thumbprint when
/// there is one.
async fn whoami(
    Extension(info): Extension<Arc<ConnectionInfo>>,
    provided: Option<ProvidedBinding>,
    referred: Option<ReferredBinding>,
    proven: Option<Extension<ProvenKeys>>,
) -> Json<Value> {
    fn id(id: &TokenBindingId) -> Value {
        json!({ "tbid": id.to_base64url(), "tbh": id.tbh().to_string() })
    }
    Json(json!({
        "tls_version": info.tls_version().to_string(),
        "token_binding": info.negotiated().map(|n| json!({
            "version": n.version.to_string(),
            "key_parameters": n.key_parameters.to_string(),
        })),
        "provided": provided.map(|p| id(&p.0)),
        "referred": referred.map(|r| id(&r.0)),
        // With a DPoP proof: what a DPoP-bound token's `cnf` would name.
        "dpop": proven.as_ref().and_then(|k| k.by(Mechanism::Dpop)).map(|k| json!({
            "jkt": k.thumbprint().to_string(),
        })),
        // With --client-certificates: what a certificate-bound token's `cnf` would name.
        "client_certificate": info.client_certificate_key().map(|k| json!({
            "x5t#S256": k.thumbprint().to_string(),
        })),
    }))
}
