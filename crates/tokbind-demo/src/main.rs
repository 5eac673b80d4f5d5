//! `tokbind-demo`: the federated sign-in demo, in one process or as separate services.
//!
//! ```text
//! tokbind-demo all [--serve]                                   # both servers + the walkthrough
//! tokbind-demo idp --listen 0.0.0.0:8443 --public-url https://idp:8443 --rp-url https://rp:8444
//! tokbind-demo rp  --listen 0.0.0.0:8444 --public-url https://rp:8444 --idp-url https://idp:8443 --insecure
//! tokbind-demo client --rp-url https://rp:8444 --idp-url https://idp:8443 --insecure
//! ```
//!
//! As separate services each server has its own self-signed certificate, so the RP's back
//! channel and the client run with `--insecure` (no certificate check): demo only.
//!
//! Several instances of a server share `--redis`, `--tls-cert`/`--tls-key`, the keys from
//! `keygen` (as variables, or files named by `TOKBIND_SIGNING_KEYS_FILE` and
//! `TOKBIND_COOKIE_KEYS_FILE`), and (RP) `--back-channel-keys`; `--instance` names each in a
//! response header.
//! `tests/scale_out.rs` runs two of each behind HAProxy.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser as _;
use http_body_util::Full;
use std::sync::Arc;

use tokbind_client::{Client, FileKeyStore};
use tokbind_demo::cli::{InstanceArgs, Role};
use tokbind_demo::store::SharedStore;
use tokbind_demo::{Error, flow, idp, registered_clients, rp, rp_config};
use tokbind_oauth::TokenIssuer;
use tokbind_tls::{SelfSigned, ServerVerification, TokenBindingAcceptor};
use tower_tokbind::cookie::CookieKeys;

fn verification(insecure: bool) -> ServerVerification {
    if insecure {
        ServerVerification::InsecureAcceptAnything
    } else {
        ServerVerification::System
    }
}

fn host_of(url: &str) -> Result<String, Error> {
    let uri: http::Uri = url.parse()?;
    Ok(uri.host().ok_or("URL without a host")?.to_string())
}

/// Key material given inline (a flag or variable) or in a file (a mounted secret), if at
/// all.
fn key_config(inline: Option<String>, file: Option<PathBuf>) -> Result<Option<String>, Error> {
    match file {
        Some(path) => std::fs::read_to_string(&path)
            .map(Some)
            .map_err(|e| format!("cannot read {}: {e}", path.display()).into()),
        None => Ok(inline),
    }
}

/// The name of the response header that says which instance answered.
const INSTANCE_HEADER: &str = "tokbind-instance";

async fn serve(
    listen: SocketAddr,
    public_url: &str,
    instance: &InstanceArgs,
    mut app: axum::Router,
) -> Result<(), Error> {
    let (cert_pem, key_pem) = match (&instance.tls_cert, &instance.tls_key) {
        (Some(cert), Some(key)) => (std::fs::read(cert)?, std::fs::read(key)?),
        _ => {
            let cert = SelfSigned::generate(&[&host_of(public_url)?, "localhost", "127.0.0.1"])?;
            (cert.cert_pem, cert.key_pem)
        }
    };
    let acceptor = TokenBindingAcceptor::builder(&cert_pem, &key_pem)?.build()?;
    if let Some(name) = &instance.instance {
        let value = http::HeaderValue::from_str(name)?;
        app = app.layer(axum::middleware::map_response(
            move |mut res: axum::response::Response| {
                let value = value.clone();
                async move {
                    res.headers_mut().insert(INSTANCE_HEADER, value);
                    res
                }
            },
        ));
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let name = instance.instance.as_deref().unwrap_or("this instance");
    println!("{name} listening on {public_url} ({listen})");
    tokbind_tls::serve(listener, acceptor, app).await?;
    Ok(())
}

/// Retry `attempt` until it succeeds or a minute has passed (the other service may still
/// be starting).
async fn patiently<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut last = None;
    for _ in 0..120 {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!(
        "{what}: {}",
        last.map_or_else(String::new, |e| e.to_string())
    )
    .into())
}

async fn run(role: Role) -> Result<bool, Error> {
    match role {
        Role::All { serve } => {
            let servers = tokbind_demo::start_in_process().await?;
            println!("IdP on {}\nRP  on {}\n", servers.idp_url, servers.rp_url);
            let ok = flow::walk(&servers.endpoints()).await?;
            if serve {
                println!(
                    "\nserving until Ctrl-C; try: tokbind get {}/ --insecure",
                    servers.rp_url
                );
                tokio::signal::ctrl_c().await?;
            }
            Ok(ok)
        }
        Role::Idp {
            listen,
            public_url,
            rp_url,
            signing_keys,
            signing_keys_file,
            dpop_nonce_key,
            instance,
        } => {
            let issuer = match key_config(signing_keys, signing_keys_file)? {
                Some(keys) => TokenIssuer::from_config(public_url.clone(), &keys)?,
                None => TokenIssuer::generate(public_url.clone())?,
            };
            let store = SharedStore::connect(instance.redis.as_deref()).await?;
            let nonces = match dpop_nonce_key {
                Some(key) => idp::nonces_from_config(&key)?,
                None => idp::fresh_nonces(),
            };
            let app = idp::router_with_nonces(issuer, registered_clients(&rp_url), store, nonces);
            serve(listen, &public_url, &instance, app).await?;
            Ok(true)
        }
        Role::Rp {
            listen,
            public_url,
            idp_url,
            insecure,
            cookie_keys,
            cookie_keys_file,
            idp_roots,
            back_channel_keys,
            instance,
        } => {
            let cookie_keys = match key_config(cookie_keys, cookie_keys_file)? {
                Some(keys) => CookieKeys::from_config(&keys)?,
                None => CookieKeys::generate()?,
            };
            let mut back_channel = Client::builder().server_verification(match idp_roots {
                Some(path) => ServerVerification::Roots(std::fs::read(path)?),
                None => verification(insecure),
            });
            if let Some(dir) = back_channel_keys {
                back_channel = back_channel.keys(Arc::new(FileKeyStore::open(dir)?));
            }
            let back_channel = back_channel.build()?;
            let jwks_url = format!("{idp_url}/jwks");
            let jwks = patiently("fetching the IdP's keys", || async {
                let req = http::Request::get(jwks_url.as_str()).body(Full::<Bytes>::default())?;
                let res = back_channel.fetch(req).await?.response;
                Ok(serde_json::from_slice::<serde_json::Value>(res.body())?)
            })
            .await?;
            let app = rp::router(
                rp_config(&public_url, &idp_url),
                &jwks,
                back_channel,
                cookie_keys,
                SharedStore::connect(instance.redis.as_deref()).await?,
            )?;
            serve(listen, &public_url, &instance, app).await?;
            Ok(true)
        }
        Role::Keygen => {
            println!(
                "TOKBIND_SIGNING_KEYS={}",
                TokenIssuer::generate_config_value()?
            );
            println!(
                "TOKBIND_COOKIE_KEYS={}",
                CookieKeys::generate_config_value()?
            );
            println!("TOKBIND_DPOP_NONCE_KEY={}", tokbind_oauth::random_token());
            Ok(true)
        }
        Role::Client {
            rp_url,
            idp_url,
            insecure,
        } => {
            let probe = Client::builder()
                .server_verification(verification(insecure))
                .build()?;
            patiently("waiting for the RP", || async {
                let req = http::Request::get(format!("{rp_url}/")).body(Full::<Bytes>::default())?;
                probe.fetch(req).await?;
                Ok(())
            })
            .await?;
            let endpoints = flow::Endpoints {
                rp: rp_url,
                idp: idp_url,
                verification: verification(insecure),
            };
            flow::walk(&endpoints).await
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Role::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("tokbind-demo: {e}");
            ExitCode::from(1)
        }
    }
}
