//! Command-line arguments shared by the commands that terminate or open Token Binding TLS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokbind_proto::KeyParameters;
use tokbind_tls::{SelfSigned, TokenBindingAcceptor};

use crate::Failure;

/// `--key-parameters`.
#[derive(Debug, clap::Args)]
pub struct KeyParametersArg {
    /// Key parameters, most preferred first.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ecdsap256,rsa2048_pss,rsa2048_pkcs1.5",
        value_parser = crate::input::parse_key_parameters
    )]
    pub key_parameters: Vec<KeyParameters>,
}

/// The TLS side of `tokbind serve` and `tokbind proxy`.
#[derive(Debug, clap::Args)]
pub struct ServerTlsArgs {
    /// Certificate chain (PEM). Without --cert/--key a self-signed certificate for
    /// localhost and the listen address is generated.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Private key (PEM) for --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    #[command(flatten)]
    key_parameters: KeyParametersArg,
    /// Negotiate Token Binding on TLS 1.3 too (draft-ietf-tokbind-tls13).
    #[arg(long)]
    tls13_token_binding: bool,
    /// Ask clients for a TLS certificate (optional for them; any certificate, self-signed
    /// included: it binds tokens by its thumbprint, RFC 8705 §3). `tokbind proxy` forwards
    /// it in `Client-Cert` (RFC 9440).
    #[arg(long)]
    client_certificates: bool,
}

impl ServerTlsArgs {
    /// The acceptor these arguments describe, for a server listening on `listen` that
    /// gives clients `handshake_timeout` for their TLS handshake.
    pub fn acceptor(
        &self,
        listen: SocketAddr,
        handshake_timeout: Duration,
    ) -> Result<TokenBindingAcceptor, Failure> {
        let (cert, key) = match (&self.cert, &self.key) {
            (Some(c), Some(k)) => (read(c)?, read(k)?),
            _ => {
                let generated = SelfSigned::generate(&["localhost", &listen.ip().to_string()])
                    .map_err(|e| {
                        Failure::Rejected(format!("cannot generate a certificate: {e}"))
                    })?;
                (generated.cert_pem, generated.key_pem)
            }
        };
        TokenBindingAcceptor::builder(&cert, &key)
            .and_then(|b| b.key_parameters(&self.key_parameters.key_parameters))
            .map(|b| b.tls13_token_binding(self.tls13_token_binding))
            .map(|b| b.request_client_certificates(self.client_certificates))
            .map(|b| b.handshake_timeout(handshake_timeout))
            .and_then(|b| b.build())
            .map_err(|e| Failure::Usage(e.to_string()))
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))
}
