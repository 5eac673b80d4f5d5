//! The `tokbind-demo` command line (here so that tests can check `docker-compose.yml`
//! against it).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// What to run.
#[derive(Debug, Parser)]
#[command(
    name = "tokbind-demo",
    about = "Federated sign-in with Token Binding: IdP, RP and a client"
)]
pub enum Role {
    /// Start the IdP and the RP in this process and run the walkthrough against them.
    All {
        /// Keep both servers running afterwards (for `tokbind get`).
        #[arg(long)]
        serve: bool,
    },
    /// Run the IdP.
    Idp {
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
        /// The IdP's URL as clients see it (its issuer identifier).
        #[arg(long)]
        public_url: String,
        /// The RP's URL (its redirect URI is `<rp-url>/callback`).
        #[arg(long)]
        rp_url: String,
        /// Token-signing keys (see `keygen`), the current one first; the same on every
        /// IdP instance. A fresh key when absent.
        #[arg(long, env = "TOKBIND_SIGNING_KEYS", hide_env_values = true)]
        signing_keys: Option<String>,
        /// As --signing-keys, read from a file (a mounted secret).
        #[arg(
            long,
            env = "TOKBIND_SIGNING_KEYS_FILE",
            conflicts_with = "signing_keys"
        )]
        signing_keys_file: Option<PathBuf>,
        /// The secret of the token endpoint's DPoP nonces (see `keygen`); the same on
        /// every IdP instance, so that a nonce one hands out is taken by another. A fresh
        /// secret when absent.
        #[arg(long, env = "TOKBIND_DPOP_NONCE_KEY", hide_env_values = true)]
        dpop_nonce_key: Option<String>,
        #[command(flatten)]
        instance: InstanceArgs,
    },
    /// Run the RP.
    Rp {
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
        /// The RP's URL as clients see it.
        #[arg(long)]
        public_url: String,
        /// The IdP's URL (its issuer identifier).
        #[arg(long)]
        idp_url: String,
        /// Do not check the IdP's certificate on the back channel.
        #[arg(long)]
        insecure: bool,
        /// Cookie MAC keys (see `keygen`), the current one first; the same on every RP
        /// instance. A fresh key when absent.
        #[arg(long, env = "TOKBIND_COOKIE_KEYS", hide_env_values = true)]
        cookie_keys: Option<String>,
        /// As --cookie-keys, read from a file (a mounted secret).
        #[arg(long, env = "TOKBIND_COOKIE_KEYS_FILE", conflicts_with = "cookie_keys")]
        cookie_keys_file: Option<PathBuf>,
        /// The IdP's certificate (PEM) for the back channel, instead of the system's roots.
        #[arg(long, conflicts_with = "insecure")]
        idp_roots: Option<PathBuf>,
        /// A key-store directory for the back channel's Token Binding keys, shared by every
        /// RP instance (refresh tokens are bound to those keys). In memory when absent.
        #[arg(long, env = "TOKBIND_BACK_CHANNEL_KEYS")]
        back_channel_keys: Option<PathBuf>,
        #[command(flatten)]
        instance: InstanceArgs,
    },
    /// Print fresh key material for several instances to share, as environment variables.
    Keygen,
    /// Run the walkthrough against running servers.
    Client {
        /// The RP's URL.
        #[arg(long)]
        rp_url: String,
        /// The IdP's URL.
        #[arg(long)]
        idp_url: String,
        /// Do not check the servers' certificates.
        #[arg(long)]
        insecure: bool,
    },
}

/// What one server instance of several shares with the others, and how it names itself.
#[derive(Debug, Clone, clap::Args)]
pub struct InstanceArgs {
    /// Keep state (sessions, pending sign-ins, codes, refresh tokens) in Redis at this URL
    /// (`redis://host:6379` or `redis+unix:///path`), shared by every instance. In memory
    /// when absent: right for one instance only.
    #[arg(long, env = "TOKBIND_REDIS_URL")]
    pub redis: Option<String>,
    /// Name this instance in a `tokbind-instance` response header, to see which instance
    /// behind a load balancer answered.
    #[arg(long, env = "TOKBIND_INSTANCE")]
    pub instance: Option<String>,
    /// The TLS certificate chain (PEM) every instance serves. A fresh self-signed
    /// certificate when absent.
    #[arg(long, env = "TOKBIND_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "TOKBIND_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}
