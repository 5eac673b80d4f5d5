//! Federated sign-in with Token Binding (RFC 8473 §5, OAuth 2.0 Token Binding, OIDC Token
//! Bound Authentication): an IdP and an RP on two loopback addresses (two sites), both over Token Binding
//! TLS, and the bundled client walking through sign-in — then, as a second client with its
//! own key, trying the stolen ID token, session cookie, access token and authorization code.
//!
//! `cargo run --release --example federated_sign_in`            (exits 0 only if every step behaved)
//! `cargo run --release --example federated_sign_in -- --serve` (then keeps both servers up)
//!
//! The IdP and RP live in `crates/tokbind-demo` (`idp.rs`, `rp.rs`), the walkthrough in its
//! `flow.rs`.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let serve = std::env::args().any(|a| a == "--serve");
    let run = async {
        let servers = tokbind_demo::start_in_process().await?;
        println!("IdP on {}\nRP  on {}\n", servers.idp_url, servers.rp_url);
        let ok = tokbind_demo::flow::walk(&servers.endpoints()).await?;
        if serve {
            println!(
                "\nserving until Ctrl-C; try: tokbind get {}/ --insecure",
                servers.rp_url
            );
            tokio::signal::ctrl_c().await?;
        }
        Ok::<bool, tokbind_demo::Error>(ok)
    };
    match run.await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("federated_sign_in: {e}");
            ExitCode::from(1)
        }
    }
}
