//! `tokbind`: inspect and check Token Binding messages from the command line.
//!
//! ```text
//! tokbind decode <HEADER_VALUE>
//! tokbind verify --ekm <HEX|BASE64URL> --negotiated <KEY_PARAMETERS> <HEADER_VALUE>
//! tokbind serve [--listen ADDR] [--public-origin URL] [--cert PEM --key PEM] [--key-parameters LIST] [--tls13-token-binding] [LIMITS]
//! tokbind get <URL> [--key-parameters LIST] [--insecure | --cacert PEM] [--key-store SPEC] [--dpop] [--connect-timeout D] [--response-timeout D] [--max-response-bytes N]
//! tokbind keys list|reset --key-store file:DIR|pkcs11:MODULE[:SLOT] [--scope DOMAIN]
//! tokbind proxy --upstream http://HOST:PORT [--listen ADDR] [--cert PEM --key PEM] [--key-parameters LIST] [LIMITS]
//!               [--upstream-connect-timeout D] [--upstream-timeout D] [--upstream-max-idle N] [--upstream-idle-timeout D]
//!
//! LIMITS: [--handshake-timeout D] [--header-read-timeout D] [--idle-timeout D] [--max-connections N]
//!         [--max-header-bytes N] [--http2-max-header-list-size N] [--http2-max-concurrent-streams N]
//!         [--http2-keep-alive-interval D|off] [--http2-keep-alive-timeout D]
//! ```
//!
//! Exit status: 0 success, 1 the input is malformed or would be rejected by a server (or,
//! for `serve`/`get`, a network or TLS failure), 2 usage error. Results go to stdout;
//! reasons go to stderr as one line. `RUST_LOG` controls diagnostics on stderr.

// The doc comments here are clap help text (`[:SLOT]` means optional), not rustdoc links.
#![allow(rustdoc::broken_intra_doc_links)]

mod get;
mod input;
mod json;
mod keys;
mod limit_args;
mod proxy;
mod serve;
mod shutdown;
mod tls_args;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokbind_proto::{Ekm, KeyParameters, TokenBindingMessage};

#[derive(Debug, Parser)]
#[command(
    name = "tokbind",
    version,
    about = "Token Binding (RFC 8471/8472/8473) tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode a Sec-Token-Binding header value and print its bindings as JSON.
    ///
    /// The signatures are not checked (that needs the connection's EKM: see `verify`).
    Decode {
        /// The header value (unpadded base64url); `-` reads it from stdin. A leading
        /// `Sec-Token-Binding:` is ignored, so a whole header line can be pasted.
        header_value: String,
    },
    /// Check a header value as a server would (RFC 8471 §4.2, RFC 8473 §2) and print the
    /// verified Token Binding IDs as JSON.
    Verify {
        /// The connection's exported keying material: 32 bytes as 64 hex digits or 43
        /// characters of unpadded base64url.
        #[arg(long, value_parser = input::parse_ekm)]
        ekm: Ekm,
        /// The key parameters the TLS handshake negotiated.
        #[arg(long, value_parser = input::parse_key_parameters)]
        negotiated: KeyParameters,
        /// The header value; `-` reads it from stdin.
        header_value: String,
    },
    /// Run a demo HTTPS server that negotiates Token Binding and answers `GET /` with
    /// what the connection negotiated and the verified Token Binding IDs (JSON).
    ///
    /// The first line on stdout is `listening on https://ADDR:PORT`.
    Serve(serve::ServeArgs),
    /// Fetch a URL with the Token Binding client and print the response body.
    Get(get::GetArgs),
    /// Terminate Token Binding TLS in front of an HTTP backend and forward the verified
    /// Token Binding IDs to it (draft-ietf-tokbind-ttrp-09).
    ///
    /// The first line on stdout is `listening on https://ADDR:PORT`.
    Proxy(proxy::ProxyArgs),
    /// List or reset the client's Token Binding keys.
    Keys(keys::KeysArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli.command) {
        Ok(json) => {
            if !json.is_empty() {
                println!("{json}");
            }
            ExitCode::SUCCESS
        }
        Err(Failure::Usage(msg)) => {
            eprintln!("tokbind: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Rejected(msg)) => {
            eprintln!("tokbind: {msg}");
            ExitCode::from(1)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Rejected(format!("cannot start the runtime: {e}")))
}

enum Failure {
    /// Exit 2: the command line itself is wrong.
    Usage(String),
    /// Exit 1: the input is malformed, or a server would reject it.
    Rejected(String),
}

fn run(command: Command) -> Result<String, Failure> {
    match command {
        Command::Serve(args) => runtime()?
            .block_on(serve::run(args))
            .map(|()| String::new()),
        Command::Get(args) => runtime()?.block_on(get::run(args)).map(|()| String::new()),
        Command::Keys(args) => keys::run(args),
        Command::Proxy(args) => runtime()?
            .block_on(proxy::run(args))
            .map(|()| String::new()),
        Command::Decode { header_value } => {
            let value = input::header_value(&header_value).map_err(Failure::Usage)?;
            let bytes = tokbind_proto::base64url::decode(value.as_bytes())
                .map_err(|e| Failure::Rejected(format!("malformed: {e}")))?;
            let message = TokenBindingMessage::decode(&bytes)
                .map_err(|e| Failure::Rejected(format!("malformed: {e}")))?;
            Ok(json::decoded(&message))
        }
        Command::Verify {
            ekm,
            negotiated,
            header_value,
        } => {
            let value = input::header_value(&header_value).map_err(Failure::Usage)?;
            let verified = tokbind_proto::verify_header(value.as_bytes(), &ekm, negotiated)
                .map_err(|e| Failure::Rejected(format!("rejected ({}): {e}", e.reason())))?;
            Ok(json::verified(&verified))
        }
    }
}
