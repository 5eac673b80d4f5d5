//! A Token Binding HTTPS client.
//!
//! It negotiates Token Binding on every TLS connection (RFC 8472), uses one private key
//! per site (eTLD+1) and key parameters from its [`KeyStore`], and sends `Sec-Token-Binding` — one provided
//! binding signed over the connection's EKM — on every request (RFC 8473 §2). The message
//! is signed once per connection and reused for each request on it, as browsers did.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = tokbind_client::Client::builder().build()?;
//! let response = client.get("https://server.example/".parse()?).await?;
//! println!("{}", String::from_utf8_lossy(response.body()));
//! # Ok(()) }
//! ```
//!
//! Keys come from a [`KeyStore`] — in memory by default ("private mode", RFC 8473 §8.2), in
//! files, or inside a PKCS#11 token — one per registrable domain (eTLD+1) of the server,
//! see [`keys`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod fetch;
pub mod keys;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokbind_proto::header::SEC_TOKEN_BINDING;
use tokbind_proto::{ConnectionInfo, KeyParameters, MessageBuilder, SignError};
use tokbind_tls::{ConnectorBuilder, ServerVerification, TokenBindingConnector};
use tokio::net::TcpStream;

pub use fetch::{Fetched, Hop};
pub use keys::{FileKeyStore, KeyStore, MemoryKeyStore, Pkcs11KeyStore, StoreKey, key_scope};

/// Something went wrong below HTTP: the URL, the connection, TLS, or signing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Only absolute `https://` URLs with a host can be fetched.
    #[error("not an https URL with a host: {0}")]
    Url(Uri),
    /// The TCP connection failed.
    #[error("connect: {0}")]
    Connect(#[from] std::io::Error),
    /// No connection within the connect timeout ([`ClientBuilder::connect_timeout`]): the
    /// TCP connect and the TLS handshake together took longer.
    #[error("no connection within {after:?} (TCP connect and TLS handshake)")]
    ConnectTimeout {
        /// The timeout that passed.
        after: Duration,
    },
    /// The TLS handshake failed.
    #[error(transparent)]
    Tls(#[from] tokbind_tls::HandshakeError),
    /// The TLS client could not be configured.
    #[error(transparent)]
    Config(#[from] tokbind_tls::ConfigError),
    /// The key store failed.
    #[error(transparent)]
    Keys(#[from] keys::KeyStoreError),
    /// A key could not be made, or a message could not be signed.
    #[error("Token Binding: {0}")]
    Sign(#[from] SignError),
    /// The HTTP exchange failed.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// The connection did not negotiate Token Binding, so it cannot carry a binding.
    #[error("Token Binding was not negotiated on this connection")]
    NotNegotiated,
    /// A redirect named a URL that is not `https` (a downgrade to `http`, or another
    /// scheme); [`Client::fetch`] does not follow it.
    #[error("refused to follow a redirect to {0}: only https URLs are fetched")]
    InsecureRedirect(Uri),
    /// The response, head and body, did not arrive within the response timeout
    /// ([`ClientBuilder::response_timeout`]): a server that stalls or drips.
    #[error("no complete response within {after:?}")]
    ResponseTimeout {
        /// The timeout that passed.
        after: Duration,
    },
    /// The response body is larger than [`ClientBuilder::max_response_bytes`].
    #[error("the response body is larger than {limit} bytes")]
    ResponseTooLarge {
        /// The limit.
        limit: usize,
    },
}

/// A Token Binding HTTPS client. Cheap to clone; clones share keys.
#[derive(Clone, Debug)]
pub struct Client {
    connector: TokenBindingConnector,
    keys: Arc<dyn KeyStore>,
    cookies: Option<fetch::Jar>,
    max_redirects: usize,
    legacy_include_referer: bool,
    connect_timeout: Duration,
    exchange: Exchange,
}

/// What one request may cost the client after it is sent: the time until the whole
/// response has arrived, and the size of its body.
#[derive(Debug, Clone, Copy)]
struct Exchange {
    response_timeout: Duration,
    max_response_bytes: usize,
}

/// Configures a [`Client`].
#[must_use]
pub struct ClientBuilder {
    tls: ConnectorBuilder,
    keys: Option<Arc<dyn KeyStore>>,
    cookies: bool,
    max_redirects: usize,
    legacy_include_referer: bool,
    connect_timeout: Duration,
    exchange: Exchange,
}

/// The default of [`ClientBuilder::connect_timeout`]: 10 s, the server side's default TLS
/// handshake timeout too. Long enough for a slow link (TCP retries its SYN after 1 s and
/// 3 s) and a busy server; short enough that an address that drops packets, or a peer
/// that accepts and never answers the handshake, does not hold the caller indefinitely.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The default of [`ClientBuilder::response_timeout`]: 60 s from sending a request to
/// having its whole response, as nginx's `proxy_read_timeout` and `send_timeout` allow a
/// peer. The client reads every response whole, so a server that stalls or drips its
/// answer would otherwise hold the caller for as long as it likes.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// The default of [`ClientBuilder::max_response_bytes`]: 16 MiB. The client buffers each
/// response body whole; a server must not make it allocate without bound.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 << 20;

impl Client {
    /// Start configuring a client. Defaults: offer all three key parameters (ecdsap256
    /// first), verify the server against the system roots, fresh in-memory keys, a
    /// [`DEFAULT_CONNECT_TIMEOUT`] of 10 s, a [`DEFAULT_RESPONSE_TIMEOUT`] of 60 s and
    /// responses of at most [`DEFAULT_MAX_RESPONSE_BYTES`] (16 MiB).
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            tls: TokenBindingConnector::builder(),
            keys: None,
            cookies: false,
            max_redirects: 10,
            legacy_include_referer: false,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            exchange: Exchange {
                response_timeout: DEFAULT_RESPONSE_TIMEOUT,
                max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            },
        }
    }

    /// The client's key store.
    pub fn keys(&self) -> &Arc<dyn KeyStore> {
        &self.keys
    }

    /// The key this client uses for servers on `host` (its eTLD+1 scope) with
    /// `key_parameters`, created on first use.
    pub fn key_for_host(
        &self,
        host: &str,
        key_parameters: KeyParameters,
    ) -> Result<StoreKey, ClientError> {
        Ok(self.keys.key_for(&key_scope(host), key_parameters)?)
    }

    /// Open a connection to `uri`'s origin: name resolution, TCP connect and TLS handshake
    /// within the connect timeout, or [`ClientError::ConnectTimeout`].
    pub async fn connect(&self, uri: &Uri) -> Result<Connection, ClientError> {
        let target = Target::of(uri)?;
        // One deadline for both steps: what the caller waits for is a connection.
        let handshake = async {
            let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
            let _ = tcp.set_nodelay(true);
            Ok::<_, ClientError>(self.connector.connect(&target.host, tcp).await?)
        };
        let (tls, info) = tokio::time::timeout(self.connect_timeout, handshake)
            .await
            .map_err(|_| ClientError::ConnectTimeout {
                after: self.connect_timeout,
            })??;
        let h2 = tls.ssl().selected_alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(tls);
        let sender = if h2 {
            let (sender, conn) = http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "HTTP/2 connection ended");
                }
            });
            Sender::Http2(sender)
        } else {
            let (sender, conn) = http1::handshake(io).await?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "HTTP/1.1 connection ended");
                }
            });
            Sender::Http1(sender)
        };
        let key = match info.negotiated() {
            Some(n) => Some(self.key_for_host(&target.host, n.key_parameters)?),
            None => None,
        };
        let header = match (&key, info.ekm()) {
            (Some(key), Some(ekm)) => {
                let value = MessageBuilder::new(ekm)
                    .provided(key.as_ref())?
                    .to_header_value()?;
                Some(HeaderValue::try_from(value).expect("base64url is a valid header value"))
            }
            _ => None,
        };
        Ok(Connection {
            sender,
            info,
            target,
            key,
            header,
            exchange: self.exchange,
        })
    }

    /// `GET uri` on a new connection.
    pub async fn get(&self, uri: Uri) -> Result<Response<Bytes>, ClientError> {
        let mut conn = self.connect(&uri).await?;
        let req = Request::get(uri)
            .body(Full::default())
            .expect("valid request");
        conn.send(req).await
    }
}

impl ClientBuilder {
    /// Configure the TLS side (key parameters, versions, server verification, …).
    pub fn tls(mut self, f: impl FnOnce(ConnectorBuilder) -> ConnectorBuilder) -> Self {
        self.tls = f(self.tls);
        self
    }

    /// Offer these key parameters, most preferred first.
    pub fn key_parameters(mut self, kps: &[KeyParameters]) -> Result<Self, ClientError> {
        self.tls = self.tls.key_parameters(kps)?;
        Ok(self)
    }

    /// How to check server certificates.
    pub fn server_verification(mut self, v: ServerVerification) -> Self {
        self.tls = self.tls.server_verification(v);
        self
    }

    /// Use (and share) this key store (default: a fresh [`MemoryKeyStore`]).
    pub fn keys(mut self, keys: Arc<dyn KeyStore>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Keep cookies between requests of [`Client::fetch`] (default off).
    pub fn cookie_store(mut self, enable: bool) -> Self {
        self.cookies = enable;
        self
    }

    /// Follow at most this many redirects in [`Client::fetch`] (default 10).
    pub fn max_redirects(mut self, max: usize) -> Self {
        self.max_redirects = max;
        self
    }

    /// Also honour the draft header name `Include-Referer-Token-Binding-ID` (default off).
    pub fn accept_legacy_include_referer(mut self, accept: bool) -> Self {
        self.legacy_include_referer = accept;
        self
    }

    /// How long a request may wait, once sent, for its whole response — head and body
    /// (default [`DEFAULT_RESPONSE_TIMEOUT`], 60 s). Past it: [`ClientError::ResponseTimeout`].
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.exchange.response_timeout = timeout;
        self
    }

    /// The largest response body read (default [`DEFAULT_MAX_RESPONSE_BYTES`], 16 MiB).
    /// Larger: [`ClientError::ResponseTooLarge`].
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.exchange.max_response_bytes = limit;
        self
    }

    /// How long [`Client::connect`] (and so each new origin of [`Client::fetch`]) may take
    /// to resolve the name, connect over TCP and finish the TLS handshake, together
    /// (default [`DEFAULT_CONNECT_TIMEOUT`], 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Build the client.
    pub fn build(self) -> Result<Client, ClientError> {
        Ok(Client {
            connector: self.tls.build()?,
            keys: self
                .keys
                .unwrap_or_else(|| Arc::new(MemoryKeyStore::default())),
            cookies: self.cookies.then(fetch::Jar::default),
            max_redirects: self.max_redirects,
            legacy_include_referer: self.legacy_include_referer,
            connect_timeout: self.connect_timeout,
            exchange: self.exchange,
        })
    }
}

#[derive(Debug, Clone)]
struct Target {
    host: String,
    port: u16,
    origin: String,
    authority: String,
}

impl Target {
    fn of(uri: &Uri) -> Result<Self, ClientError> {
        let bad = || ClientError::Url(uri.clone());
        if uri.scheme_str() != Some("https") {
            return Err(bad());
        }
        let authority = uri.authority().ok_or_else(bad)?;
        // `[::1]` for IPv6, as URLs and Host headers write it.
        let bracketed = authority.host();
        let host = bracketed.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad());
        }
        let port = authority.port_u16().unwrap_or(443);
        // Host and port as sent in `Host`: never the user information of the URL.
        let host_port = authority.as_str().rsplit('@').next().unwrap_or(bracketed);
        Ok(Self {
            host: host.to_string(),
            port,
            // The origin (RFC 6454 §4) with the default port spelled out, so that
            // `https://a` and `https://A:443` are one origin, `https://a:8443` another.
            origin: format!("https://{}:{port}", bracketed.to_ascii_lowercase()),
            authority: host_port.to_string(),
        })
    }
}

enum Sender {
    Http1(http1::SendRequest<Full<Bytes>>),
    Http2(http2::SendRequest<Full<Bytes>>),
}

/// One TLS connection to an origin, with its Token Binding state.
pub struct Connection {
    sender: Sender,
    info: ConnectionInfo,
    target: Target,
    key: Option<StoreKey>,
    header: Option<HeaderValue>,
    exchange: Exchange,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("origin", &self.target.origin)
            .field("info", &self.info)
            .field("http2", &self.is_http2())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// What the handshake established (TLS version, Token Binding, EKM).
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// Whether the connection speaks HTTP/2.
    pub fn is_http2(&self) -> bool {
        matches!(self.sender, Sender::Http2(_))
    }

    /// The key used for this origin's provided binding, if Token Binding was negotiated.
    pub fn provided_key(&self) -> Option<&StoreKey> {
        self.key.as_ref()
    }

    /// The `Sec-Token-Binding` value this connection sends, if Token Binding was negotiated.
    pub fn token_binding_header(&self) -> Option<&HeaderValue> {
        self.header.as_ref()
    }

    /// Send `req`, adding this connection's `Sec-Token-Binding` unless the request already
    /// has one, and read the whole response.
    pub async fn send(
        &mut self,
        mut req: Request<Full<Bytes>>,
    ) -> Result<Response<Bytes>, ClientError> {
        if let Some(value) = &self.header
            && !req.headers().contains_key(SEC_TOKEN_BINDING)
        {
            req.headers_mut().insert(SEC_TOKEN_BINDING, value.clone());
        }
        self.send_as_is(req).await
    }

    /// Send `req` exactly as given (no Token Binding header is added) and read the whole
    /// response. For tests of what servers do with odd requests.
    pub async fn send_as_is(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> Result<Response<Bytes>, ClientError> {
        let Exchange {
            response_timeout,
            max_response_bytes,
        } = self.exchange;
        tokio::time::timeout(response_timeout, self.exchange(req, max_response_bytes))
            .await
            .map_err(|_| ClientError::ResponseTimeout {
                after: response_timeout,
            })?
    }

    async fn exchange(
        &mut self,
        mut req: Request<Full<Bytes>>,
        max_response_bytes: usize,
    ) -> Result<Response<Bytes>, ClientError> {
        let response = match &mut self.sender {
            Sender::Http1(s) => {
                // HTTP/1.1 wants an origin-form target and a Host header.
                let path = req
                    .uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_string();
                *req.uri_mut() = path.parse().expect("a path is a valid URI");
                if !req.headers().contains_key(HOST) {
                    let host = HeaderValue::from_str(&self.target.authority)
                        .expect("authority is a valid header");
                    req.headers_mut().insert(HOST, host);
                }
                s.ready().await?;
                s.send_request(req).await?
            }
            Sender::Http2(s) => {
                if req.uri().authority().is_none() {
                    let path = req
                        .uri()
                        .path_and_query()
                        .map_or("/", |p| p.as_str())
                        .to_string();
                    *req.uri_mut() = format!("https://{}{}", self.target.authority, path)
                        .parse()
                        .expect("valid absolute URI");
                }
                s.ready().await?;
                s.send_request(req).await?
            }
        };
        let (parts, body) = response.into_parts();
        let body = match Limited::new(body, max_response_bytes).collect().await {
            Ok(body) => body.to_bytes(),
            Err(e) => {
                return Err(match e.downcast::<hyper::Error>() {
                    Ok(e) => ClientError::Http(*e),
                    Err(_) => ClientError::ResponseTooLarge {
                        limit: max_response_bytes,
                    },
                });
            }
        };
        Ok(Response::from_parts(parts, body))
    }
}
