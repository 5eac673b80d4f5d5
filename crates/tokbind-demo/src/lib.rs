//! The federated sign-in demo (RFC 8473 §5, OAuth 2.0 Token Binding, OIDC Token Bound
//! Authentication): an IdP ([`idp`]) and an RP ([`rp`]), both serving over Token Binding
//! TLS, and a client walking through them ([`flow`]).
//!
//! Used by `examples/federated_sign_in.rs`, the end-to-end tests and the `tokbind-demo`
//! binary that `docker-compose.yml` runs. Not published: it is the reference wiring, to
//! read and copy.

pub mod cli;
pub mod flow;
pub mod idp;
pub mod rp;
pub mod store;

use std::net::SocketAddr;

use tokbind_client::Client;
use tokbind_oauth::TokenIssuer;
use tokbind_tls::{SelfSigned, ServerVerification, TokenBindingAcceptor};
use tower_tokbind::TokenBindingLayer;
use tower_tokbind::cookie::CookieKeys;
use tower_tokbind::ttrp::ForwardedTokenBindingLayer;

use crate::store::SharedStore;

/// Errors of the demo plumbing.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The RP's `client_id` at the IdP.
pub const CLIENT_ID: &str = "rp";
/// The audience of access tokens for the RP's API.
pub const API_AUDIENCE: &str = "rp-api";
/// The `client_id` of the native app: a public client that binds its tokens with DPoP.
pub const APP_CLIENT_ID: &str = "app";
/// The app's redirect URI: loopback, as a native app's is (RFC 8252 §7.3). Nothing
/// listens there; the app reads the code from the IdP's redirect.
pub const APP_REDIRECT_URI: &str = "http://127.0.0.1/callback";

/// Both servers, started in this process on loopback.
pub struct InProcess {
    /// The IdP's base URL.
    pub idp_url: String,
    /// The RP's base URL.
    pub rp_url: String,
    /// Both self-signed certificates (PEM), for clients to trust.
    pub roots: Vec<u8>,
}

impl InProcess {
    /// How a client trusts both servers.
    pub fn verification(&self) -> ServerVerification {
        ServerVerification::Roots(self.roots.clone())
    }

    /// The endpoints for [`flow::walk`].
    pub fn endpoints(&self) -> flow::Endpoints {
        flow::Endpoints {
            rp: self.rp_url.clone(),
            idp: self.idp_url.clone(),
            verification: self.verification(),
        }
    }
}

/// Start the RP on `127.0.0.1` and the IdP on `127.0.0.2` (ports chosen by the system),
/// each serving in a background task for as long as the runtime runs.
///
/// Two addresses, because a client keeps one key per site (eTLD+1, or the IP address): on
/// one address the RP and the IdP would be the same site, sharing one key.
pub async fn start_in_process() -> Result<InProcess, Error> {
    start_in_process_as(Deployment::Direct).await
}

/// How an app is served: on its own Token Binding listener, or as a plain HTTP backend
/// behind the TTRP proxy (`tokbind_proxy::Proxy`, draft-ietf-tokbind-ttrp-09), which
/// verifies Token Binding and forwards the verified IDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deployment {
    /// `TokenBindingLayer` in the app, on the TLS listener.
    Direct,
    /// The proxy on the TLS listener, the app on a loopback port behind
    /// `ForwardedTokenBindingLayer`, trusting only `127.0.0.1` (the proxy).
    BehindProxy,
}

/// Serve `routes` (an app without a Token Binding layer) to the clients of `listener`
/// over Token Binding TLS with `cert`, as `deployment` says, in background tasks for as
/// long as the runtime runs.
pub async fn serve(
    deployment: Deployment,
    listener: tokio::net::TcpListener,
    cert: &SelfSigned,
    routes: axum::Router,
) -> Result<(), Error> {
    let acceptor = TokenBindingAcceptor::builder(&cert.cert_pem, &cert.key_pem)?.build()?;
    let app = match deployment {
        Deployment::Direct => routes.layer(TokenBindingLayer::new()),
        Deployment::BehindProxy => {
            let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let upstream = format!("http://{}", backend.local_addr()?).parse()?;
            let app = routes
                .layer(ForwardedTokenBindingLayer::trusting(["127.0.0.1"])?)
                .into_make_service_with_connect_info::<SocketAddr>();
            tokio::spawn(async move { axum::serve(backend, app).await });
            tokbind_proxy::Proxy::new(upstream)?.into_router()
        }
    };
    tokio::spawn(async move { tokbind_tls::serve(listener, acceptor, app).await });
    Ok(())
}

/// As [`start_in_process`], each server deployed as `deployment` says.
pub async fn start_in_process_as(deployment: Deployment) -> Result<InProcess, Error> {
    let idp_listener = tokio::net::TcpListener::bind("127.0.0.2:0").await?;
    let rp_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let idp_url = url_of(idp_listener.local_addr()?);
    let rp_url = url_of(rp_listener.local_addr()?);
    let idp_cert = SelfSigned::generate(&["127.0.0.2", "localhost"])?;
    let rp_cert = SelfSigned::generate(&["127.0.0.1", "localhost"])?;

    let issuer = TokenIssuer::generate(idp_url.clone())?;
    let jwks = issuer.jwks();
    let idp_app = idp::routes(
        issuer,
        registered_clients(&rp_url),
        SharedStore::memory(),
        idp::fresh_nonces(),
    );

    let back_channel = Client::builder()
        .server_verification(ServerVerification::Roots(idp_cert.cert_pem.clone()))
        .build()?;
    let rp_app = rp::routes(
        rp_config(&rp_url, &idp_url),
        &jwks,
        back_channel,
        CookieKeys::generate()?,
        SharedStore::memory(),
    )?;

    serve(deployment, idp_listener, &idp_cert, idp_app).await?;
    serve(deployment, rp_listener, &rp_cert, rp_app).await?;

    Ok(InProcess {
        idp_url,
        rp_url,
        roots: [idp_cert.cert_pem, rp_cert.cert_pem].concat(),
    })
}

/// The RP as registered at the IdP.
pub fn registered_client(rp_url: &str) -> idp::RegisteredClient {
    idp::RegisteredClient {
        client_id: CLIENT_ID.into(),
        redirect_uri: format!("{rp_url}/callback"),
        api_audience: API_AUDIENCE.into(),
    }
}

/// Every client registered at the IdP: the RP, and the native app of the DPoP sign-in,
/// whose access tokens are for the RP's API too.
pub fn registered_clients(rp_url: &str) -> Vec<idp::RegisteredClient> {
    vec![
        registered_client(rp_url),
        idp::RegisteredClient {
            client_id: APP_CLIENT_ID.into(),
            redirect_uri: APP_REDIRECT_URI.into(),
            api_audience: API_AUDIENCE.into(),
        },
    ]
}

/// The RP's configuration.
pub fn rp_config(rp_url: &str, idp_url: &str) -> rp::RpConfig {
    rp::RpConfig {
        public_url: rp_url.into(),
        idp_url: idp_url.into(),
        client_id: CLIENT_ID.into(),
        api_audience: API_AUDIENCE.into(),
    }
}

fn url_of(addr: SocketAddr) -> String {
    format!("https://{addr}")
}
