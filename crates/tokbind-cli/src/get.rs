//! `tokbind get`: fetch a URL with the Token Binding client.

use std::io::Write as _;
use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::Full;
use tokbind_client::{
    Client, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_RESPONSE_TIMEOUT,
};
use tokbind_dpop::DpopKey;
use tokbind_tls::{ServerVerification, TokenBindingConnector};

use crate::Failure;
use crate::input::Timeout;

/// `tokbind get` arguments.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// The https URL to fetch.
    url: http::Uri,
    #[command(flatten)]
    key_parameters: crate::tls_args::KeyParametersArg,
    /// Do not check the server's certificate at all (for a self-signed demo server).
    #[arg(long, conflicts_with = "cacert")]
    insecure: bool,
    /// Trust only the certificates in this PEM file.
    #[arg(long)]
    cacert: Option<PathBuf>,
    /// Where the Token Binding keys live: memory (a fresh key per run), file:DIR, or
    /// pkcs11:MODULE_PATH[:SLOT] with the user PIN in TOKBIND_PKCS11_PIN.
    #[arg(long, default_value = "memory", value_parser = crate::input::parse_key_store)]
    key_store: crate::input::KeyStoreSpec,
    /// Present this TLS client certificate (PEM) when the server asks for one (mTLS:
    /// certificate-bound tokens, RFC 8705).
    #[arg(long, requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// The private key (PEM) of --client-cert.
    #[arg(long, requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// Also prove a key with DPoP (RFC 9449): a proof for this GET, signed by a fresh
    /// P-256 key whose thumbprint (`jkt`) is printed on standard error.
    #[arg(long)]
    dpop: bool,
    /// Give up when the TCP connect and TLS handshake together take longer than this
    /// (10s, 500ms, or seconds).
    #[arg(long, value_name = "DURATION", default_value_t = Timeout(DEFAULT_CONNECT_TIMEOUT))]
    connect_timeout: Timeout,
    /// Give up when the whole response (head and body) has not arrived this long after the
    /// request was sent.
    #[arg(long, value_name = "DURATION", default_value_t = Timeout(DEFAULT_RESPONSE_TIMEOUT))]
    response_timeout: Timeout,
    /// Refuse a response body larger than this.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_RESPONSE_BYTES)]
    max_response_bytes: usize,
}

pub async fn run(args: GetArgs) -> Result<(), Failure> {
    let verification = match (&args.cacert, args.insecure) {
        (Some(path), _) => ServerVerification::Roots(
            std::fs::read(path)
                .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?,
        ),
        (None, true) => ServerVerification::InsecureAcceptAnything,
        (None, false) => ServerVerification::System,
    };
    let keys = args.key_store.open()?;
    let read = |path: &PathBuf| {
        std::fs::read(path)
            .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))
    };
    // The connector starts from the certificate (if any); the rest is set on top.
    let mut tls = TokenBindingConnector::builder();
    if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
        tls = tls
            .client_certificate(&read(cert)?, &read(key)?)
            .map_err(|e| Failure::Usage(format!("--client-cert/--client-key: {e}")))?;
    }
    let client = Client::builder()
        .tls(|_| tls)
        .keys(keys)
        .key_parameters(&args.key_parameters.key_parameters)
        .map(|b| {
            b.server_verification(verification)
                .connect_timeout(args.connect_timeout.0)
                .response_timeout(args.response_timeout.0)
                .max_response_bytes(args.max_response_bytes)
        })
        .and_then(|b| b.build())
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let mut request = http::Request::get(args.url.clone());
    if args.dpop {
        let key = DpopKey::generate().map_err(|e| Failure::Rejected(e.to_string()))?;
        eprintln!("dpop jkt: {}", key.jkt());
        request = request.header("dpop", key.proof("GET", &args.url.to_string(), None, None));
    }
    let request = request
        .body(Full::<Bytes>::default())
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let rejected = |e| Failure::Rejected(format!("{}: {e}", args.url));
    let mut connection = client.connect(&args.url).await.map_err(rejected)?;
    let response = connection.send(request).await.map_err(rejected)?;
    if !response.status().is_success() {
        eprintln!("tokbind: HTTP {}", response.status());
    }
    let mut out = std::io::stdout();
    out.write_all(response.body())
        .and_then(|()| {
            if response.body().ends_with(b"\n") {
                Ok(())
            } else {
                out.write_all(b"\n")
            }
        })
        .map_err(|e| Failure::Rejected(format!("cannot write the response: {e}")))
}
