//! `tokbind serve`: a demo server protected by the verifying layer.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use tokbind_proto::{ConnectionInfo, KeyParameters, TokenBindingId};
use tokbind_tls::{SelfSigned, TokenBindingAcceptor};
use tower_tokbind::{ProvidedBinding, ReferredBinding, TokenBindingLayer};

use crate::Failure;

/// `tokbind serve` arguments.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Certificate chain (PEM). Without --cert/--key a self-signed certificate for
    /// localhost and the listen address is generated.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Private key (PEM) for --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Key parameters to accept, most preferred first.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ecdsap256,rsa2048_pss,rsa2048_pkcs1.5",
        value_parser = crate::input::parse_key_parameters
    )]
    key_parameters: Vec<KeyParameters>,
    /// Negotiate Token Binding on TLS 1.3 too (draft-ietf-tokbind-tls13).
    #[arg(long)]
    tls13_token_binding: bool,
}

pub async fn run(args: ServeArgs) -> Result<(), Failure> {
    let (cert, key) = match (&args.cert, &args.key) {
        (Some(c), Some(k)) => (read(c)?, read(k)?),
        _ => {
            let ip = args.listen.ip().to_string();
            let generated = SelfSigned::generate(&["localhost", &ip])
                .map_err(|e| Failure::Rejected(format!("cannot generate a certificate: {e}")))?;
            (generated.cert_pem, generated.key_pem)
        }
    };
    let acceptor = TokenBindingAcceptor::builder(&cert, &key)
        .and_then(|b| b.key_parameters(&args.key_parameters))
        .map(|b| b.tls13_token_binding(args.tls13_token_binding))
        .and_then(|b| b.build())
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::Rejected(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::Rejected(e.to_string()))?;

    let app = Router::new()
        .route("/", get(whoami))
        .layer(TokenBindingLayer::new());
    // The first line is the contract scripts and tests wait for.
    println!("listening on https://{addr}");
    let _ = std::io::stdout().flush();
    tokbind_tls::serve(listener, acceptor, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Failure::Rejected(format!("server failed: {e}")))
}

pub(crate) fn read(path: &PathBuf) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))
}

/// `GET /`: what this connection negotiated and which IDs the request proved.
async fn whoami(
    Extension(info): Extension<Arc<ConnectionInfo>>,
    provided: Option<ProvidedBinding>,
    referred: Option<ReferredBinding>,
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
    }))
}
