//! `tokbind-load`: the two processes of `scripts/load`.
//!
//! ```text
//! tokbind-load server --mode layer|plain [--tls13-token-binding] [--stages]
//!                     # prints "listening on https://ADDR"
//! tokbind-load client --url URL --mode keepalive|connections [--token-binding] [--attack-mix]
//!                     [--client-signs] [--tls tls12|tls13] [--http2] [--resume]
//!                     [--concurrency N] [--seconds S]   # prints one JSON line
//! tokbind-load slow --url URL [--sockets N] [--interval-ms MS] [--seconds S]
//!                     # prints "holding N" once all are open, then one JSON line
//! tokbind-load stages --url URL   # prints the server's CPU time by stage so far (JSON)
//! ```
//!
//! Off-the-shelf load tools (wrk, oha, h2load) cannot negotiate the `token_binding` TLS
//! extension, so they cannot send verifiable Token Binding traffic: the load comes from
//! this client, in its own process, using the real Token Binding client.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::Full;
use tokbind_client::{Client, Connection};
use tokbind_proto::{Ekm, KeyParameters, MessageBuilder, SigningKey, TokenBindingType, base64url};
use tokbind_tls::{SelfSigned, ServerVerification, TokenBindingAcceptor};
use tower_tokbind::TokenBindingLayer;

mod stages;

#[derive(Parser)]
enum Cli {
    /// The target: `GET /` answers "ok", with or without `TokenBindingLayer`.
    Server {
        #[arg(long, value_enum)]
        mode: ServerMode,
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Negotiate Token Binding on TLS 1.3 too (draft-ietf-tokbind-tls13).
        #[arg(long)]
        tls13_token_binding: bool,
        /// Count the CPU time of each handshake and request, and answer the sums at `GET
        /// /stages` (`stages.rs`). Off by default: reading a thread's CPU clock is a
        /// system call, a few per request, which the goals' own figures must not carry.
        #[arg(long = "stages")]
        count_stages: bool,
    },
    /// The load.
    Client {
        #[arg(long)]
        url: http::Uri,
        #[arg(long, value_enum)]
        mode: ClientMode,
        /// Negotiate Token Binding (TLS 1.2) and send Sec-Token-Binding.
        #[arg(long)]
        token_binding: bool,
        /// Half the requests carry a forged, replayed or malformed header.
        #[arg(long)]
        attack_mix: bool,
        /// Without Token Binding, still make the Token Binding message a client would
        /// (one P-256 signature per connection) and send nothing of it: the control arm
        /// that shows whether the client's own extra work shows up in the server's CPU.
        #[arg(long)]
        client_signs: bool,
        /// The TLS version of every connection.
        #[arg(long, value_enum, default_value = "tls12")]
        tls: TlsVersion,
        /// Offer `h2` in ALPN (default: HTTP/1.1 only).
        #[arg(long)]
        http2: bool,
        /// Resume the TLS session of an earlier connection (a resumed handshake: no key
        /// exchange, a new EKM).
        #[arg(long)]
        resume: bool,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Slow clients: hold `sockets` TLS connections open, each sending its request head
    /// one byte every `interval-ms`, and open a new one whenever the server closes one.
    Slow {
        #[arg(long)]
        url: http::Uri,
        #[arg(long, default_value_t = 200)]
        sockets: usize,
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// The server's CPU time by stage so far: handshakes and requests, their counts and
    /// summed thread CPU time (ns).
    Stages {
        #[arg(long)]
        url: http::Uri,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ServerMode {
    /// Behind `TokenBindingLayer`.
    Layer,
    /// The same app and listener without the layer.
    Plain,
}

#[derive(Clone, Copy, ValueEnum)]
enum TlsVersion {
    Tls12,
    Tls13,
}

/// How the client's connections are made, and what it does on each.
#[derive(Clone, Copy)]
struct Connections {
    token_binding: bool,
    client_signs: bool,
    tls: TlsVersion,
    http2: bool,
    resume: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ClientMode {
    /// HTTP/1.1 keep-alive: one connection per worker, requests back to back.
    Keepalive,
    /// A new TLS 1.2 connection per request.
    Connections,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match Cli::parse() {
        Cli::Server {
            mode,
            listen,
            tls13_token_binding,
            count_stages,
        } => {
            let cert = SelfSigned::generate(&["127.0.0.1", "localhost"])?;
            let acceptor = TokenBindingAcceptor::builder(&cert.cert_pem, &cert.key_pem)?
                .tls13_token_binding(tls13_token_binding)
                .build()?;
            let listener = tokio::net::TcpListener::bind(listen).await?;
            let app = Router::new().route("/", get(|| async { "ok" }));
            let app = if count_stages {
                app.route(stages::PATH, get(|| async { stages::report() }))
            } else {
                app
            };
            let app = match mode {
                ServerMode::Layer => app.layer(TokenBindingLayer::new()),
                ServerMode::Plain => app,
            };
            println!("listening on https://{}", listener.local_addr()?);
            if count_stages {
                let (acceptor, app) = (stages::TimedAcceptor(acceptor), stages::TimedService(app));
                tokbind_tls::serve(listener, acceptor, app).await?;
            } else {
                tokbind_tls::serve(listener, acceptor, app).await?;
            }
        }
        Cli::Client {
            url,
            mode,
            token_binding,
            attack_mix,
            client_signs,
            tls,
            http2,
            resume,
            concurrency,
            seconds,
        } => {
            let report = load(
                url,
                mode,
                attack_mix,
                Connections {
                    token_binding,
                    client_signs,
                    tls,
                    http2,
                    resume,
                },
                concurrency,
                Duration::from_secs(seconds),
            )
            .await?;
            println!("{report}");
        }
        Cli::Slow {
            url,
            sockets,
            interval_ms,
            seconds,
        } => {
            let report = slow(
                url,
                sockets,
                Duration::from_millis(interval_ms),
                Duration::from_secs(seconds),
            )
            .await?;
            println!("{report}");
        }
        Cli::Stages { url } => {
            let client = Client::builder()
                .server_verification(ServerVerification::InsecureAcceptAnything)
                .tls(|b| b.offer_token_binding(false))
                .build()?;
            let res = client
                .connect(&url)
                .await?
                .send(
                    http::Request::get(stages::PATH)
                        .body(Full::<Bytes>::default())
                        .expect("request"),
                )
                .await?;
            println!("{}", String::from_utf8_lossy(res.body()));
        }
    }
    Ok(())
}

/// The slow-client arm: see `Cli::Slow`.
async fn slow(
    url: http::Uri,
    sockets: usize,
    interval: Duration,
    duration: Duration,
) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let authority = url.authority().ok_or("the URL has no host")?.clone();
    let connector = tokbind_tls::TokenBindingConnector::builder()
        .server_verification(ServerVerification::InsecureAcceptAnything)
        .offer_token_binding(false)
        .http1_only()
        .build()?;
    let connect = move || {
        let (connector, authority) = (connector.clone(), authority.clone());
        async move {
            let tcp = tokio::net::TcpStream::connect(authority.as_str()).await?;
            let (tls, _) = connector.connect(authority.host(), tcp).await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(tls)
        }
    };
    let opened = Arc::new(AtomicU64::new(0));
    let closed_by_server = Arc::new(AtomicU64::new(0));
    let mut first = Vec::new();
    for _ in 0..sockets {
        first.push(connect().await?);
        opened.fetch_add(1, Ordering::Relaxed);
    }
    println!("holding {sockets}");
    let stop = Instant::now() + duration;
    let mut tasks = Vec::new();
    for tls in first {
        let (connect, opened, closed) = (connect.clone(), opened.clone(), closed_by_server.clone());
        tasks.push(tokio::spawn(async move {
            let mut tls = Some(tls);
            let head = b"GET / HTTP/1.1\r\nHost: slow\r\nX-Slow: ";
            let mut sent = 0usize;
            let mut buf = [0u8; 512];
            while Instant::now() < stop {
                let Some(conn) = tls.as_mut() else {
                    match connect().await {
                        Ok(c) => {
                            tls = Some(c);
                            sent = 0;
                            opened.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => tokio::time::sleep(interval).await,
                    }
                    continue;
                };
                // The head never ends: after its first line, `a`s forever.
                let byte = head.get(sent).copied().unwrap_or(b'a');
                let alive = conn.write_all(&[byte]).await.is_ok()
                    && match tokio::time::timeout(interval, conn.read(&mut buf)).await {
                        Err(_) => true,
                        Ok(Ok(n)) => n > 0,
                        Ok(Err(_)) => false,
                    };
                sent += 1;
                if !alive {
                    closed.fetch_add(1, Ordering::Relaxed);
                    tls = None;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    Ok(serde_json::json!({
        "sockets": sockets,
        "opened": opened.load(Ordering::Relaxed),
        "closed_by_server": closed_by_server.load(Ordering::Relaxed),
    }))
}

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    refused: AtomicU64,
    server_errors: AtomicU64,
    transport_errors: AtomicU64,
    bad_accepted: AtomicU64,
    bad_sent: AtomicU64,
    /// Connections opened, and of those, the ones that negotiated Token Binding and the
    /// ones that resumed a TLS session (so an arm can show it measured what it says).
    connections: AtomicU64,
    negotiated: AtomicU64,
    resumed: AtomicU64,
}

async fn load(
    url: http::Uri,
    mode: ClientMode,
    attack_mix: bool,
    connections: Connections,
    concurrency: usize,
    duration: Duration,
) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
    let client = Client::builder()
        .server_verification(ServerVerification::InsecureAcceptAnything)
        .tls(move |b| {
            let b = match connections.tls {
                TlsVersion::Tls12 => b.tls12_only(),
                TlsVersion::Tls13 => b.tls13_only(),
            };
            let b = if connections.http2 { b } else { b.http1_only() };
            let b = b.resume_sessions(connections.resume);
            if connections.token_binding {
                b
            } else {
                b.offer_token_binding(false)
            }
        })
        .build()?;
    // A header from a connection of its own, for replays.
    let stolen = {
        let conn = client.connect(&url).await?;
        conn.token_binding_header()
            .map(|h| h.to_str().unwrap_or_default().to_string())
    };
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let (client, url, counters, stop, stolen) = (
            client.clone(),
            url.clone(),
            counters.clone(),
            stop.clone(),
            stolen.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut conn: Option<Connection> = None;
            let mut i = worker as u64;
            let control_key = connections
                .client_signs
                .then(|| SigningKey::generate(KeyParameters::ECDSAP256).expect("key"));
            while !stop.load(Ordering::Relaxed) {
                if conn.is_none() || matches!(mode, ClientMode::Connections) {
                    match client.connect(&url).await {
                        Ok(c) => {
                            counters.connections.fetch_add(1, Ordering::Relaxed);
                            if c.info().negotiated().is_some() {
                                counters.negotiated.fetch_add(1, Ordering::Relaxed);
                            }
                            if c.info().session_reused() {
                                counters.resumed.fetch_add(1, Ordering::Relaxed);
                            }
                            conn = Some(c);
                        }
                        Err(_) => {
                            counters.transport_errors.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                }
                let c = conn.as_mut().expect("connected");
                if let Some(key) = &control_key {
                    let ekm = Ekm::new([0x5a; 32]);
                    let header = MessageBuilder::new(&ekm)
                        .provided(key)
                        .and_then(|m| m.to_header_value());
                    std::hint::black_box(header.ok());
                }
                i += 1;
                let attack = attack_mix && i.is_multiple_of(2);
                let result = if attack {
                    counters.bad_sent.fetch_add(1, Ordering::Relaxed);
                    let header = bad_header(c, i, stolen.as_deref());
                    c.send_as_is(
                        http::Request::get("/")
                            .header("sec-token-binding", header)
                            .body(Full::<Bytes>::default())
                            .expect("request"),
                    )
                    .await
                } else {
                    c.send(
                        http::Request::get("/")
                            .body(Full::<Bytes>::default())
                            .expect("request"),
                    )
                    .await
                };
                match result {
                    Ok(res) if res.status().is_success() => {
                        counters.ok.fetch_add(1, Ordering::Relaxed);
                        if attack {
                            counters.bad_accepted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(res) if res.status().is_server_error() => {
                        counters.server_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {
                        counters.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        counters.transport_errors.fetch_add(1, Ordering::Relaxed);
                        conn = None;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let total = get(&counters.ok) + get(&counters.refused) + get(&counters.server_errors);
    let mut out = BTreeMap::new();
    out.insert("requests", serde_json::json!(total));
    out.insert(
        "requests_per_second",
        serde_json::json!(total as f64 / elapsed),
    );
    out.insert("ok", serde_json::json!(get(&counters.ok)));
    out.insert("connections", serde_json::json!(get(&counters.connections)));
    out.insert("negotiated", serde_json::json!(get(&counters.negotiated)));
    out.insert("resumed", serde_json::json!(get(&counters.resumed)));
    out.insert("refused_4xx", serde_json::json!(get(&counters.refused)));
    out.insert(
        "server_errors_5xx",
        serde_json::json!(get(&counters.server_errors)),
    );
    out.insert(
        "transport_errors",
        serde_json::json!(get(&counters.transport_errors)),
    );
    out.insert("bad_sent", serde_json::json!(get(&counters.bad_sent)));
    out.insert(
        "bad_accepted",
        serde_json::json!(get(&counters.bad_accepted)),
    );
    Ok(serde_json::to_value(out)?)
}

/// A forged, replayed or malformed header for this connection, in turn.
fn bad_header(conn: &Connection, i: u64, stolen: Option<&str>) -> String {
    let good = conn
        .token_binding_header()
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_string();
    match (i / 2) % 3 {
        0 => {
            // Forged: the client's ID, signed by another key over this connection's EKM.
            let ekm = conn
                .info()
                .ekm()
                .cloned()
                .unwrap_or_else(|| Ekm::new([0; 32]));
            let mut bytes = base64url::decode(good.as_bytes()).unwrap_or_default();
            let attacker = SigningKey::generate(KeyParameters::ECDSAP256).expect("key");
            let sig = tokbind_proto::TokenBindingSigner::sign(
                &attacker,
                &ekm.signed_input(TokenBindingType::PROVIDED, KeyParameters::ECDSAP256),
            )
            .expect("sign");
            if bytes.len() >= 137 {
                bytes[73..137].copy_from_slice(&sig);
                base64url::encode(&bytes)
            } else {
                MessageBuilder::new(&ekm)
                    .provided(&attacker)
                    .and_then(|m| m.to_header_value())
                    .unwrap_or_default()
            }
        }
        1 => stolen.unwrap_or("AIkA").to_string(),
        _ => format!("{}=", &good[..good.len().saturating_sub(4)]),
    }
}
