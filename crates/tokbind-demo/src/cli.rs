//! The `tokbind-demo` command line (here so that tests can check `docker-compose.yml`
//! against it).

use std::net::SocketAddr;

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
