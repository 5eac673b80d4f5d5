//! Behind a TLS-terminating reverse proxy (draft-ietf-tokbind-ttrp-09).
//!
//! A proxy that terminates TLS is the only party that knows the EKM, so it verifies the
//! Token Binding message and forwards the established IDs in request headers:
//!
//! | header | value |
//! |---|---|
//! | `Sec-Provided-Token-Binding-ID` | base64url of the provided TBID |
//! | `Sec-Referred-Token-Binding-ID` | base64url of the referred TBID, if any |
//! | `Sec-Other-Token-Binding-ID` | `hextype.b64tbid` for each other verified binding, comma-separated |
//! | `Client-Cert` (RFC 9440) | the TLS client certificate's DER as an sf-binary (`:base64:`), when the client presented one |
//!
//! [`ForwardedTokenBindingLayer`] is the backend's side. From a configured trusted hop
//! (by peer address or CIDR) it decodes these headers — strictly — into the same request
//! extensions that [`TokenBindingLayer`](crate::TokenBindingLayer) produces, so handlers,
//! [`BoundCookieLayer`](crate::cookie::BoundCookieLayer) and token checks work unchanged.
//! A forwarded `Client-Cert` becomes a proven key (`Mechanism::MtlsCertificate`), as the
//! handshake's certificate does on a direct connection, so certificate-bound tokens
//! (`cnf.x5t#S256`, RFC 8705) work behind the proxy too; its DER is the key's
//! [`key_id`](tokbind_proto::ProvenKey::key_id).
//! From anyone else it removes them all, and it always removes a `Sec-Token-Binding` header
//! and its pre-RFC name `Token-Binding` (the backend has no EKM to check them against) and
//! the draft-era `Provided-`/`Referred-Token-Binding-ID` and `Sec-Token-Binding-Context`
//! headers.
//!
//! The peer address is the one in the connection's [`ConnectionInfo`] (inserted by
//! `tokbind_tls::serve`, or by [`MockConnectionInfo`](crate::MockConnectionInfo) in tests).
//! A backend that the proxy reaches over plain HTTP is served by `axum::serve` instead: serve
//! it with `into_make_service_with_connect_info::<SocketAddr>()`, and the layer reads axum's
//! `ConnectInfo<SocketAddr>` (the default `axum` feature). Without either, every request is
//! treated as untrusted. The link from the proxy must be protected (a closed network or
//! mTLS, draft §4): anyone who can connect from a trusted address can assert any ID.
//!
//! ```
//! use axum::{Router, routing::get};
//! use tower_tokbind::ProvidedBinding;
//! use tower_tokbind::ttrp::ForwardedTokenBindingLayer;
//!
//! let app: Router = Router::new()
//!     .route("/", get(|ProvidedBinding(id): ProvidedBinding| async move { id.tbh().to_string() }))
//!     .layer(ForwardedTokenBindingLayer::trusting(["10.0.0.5/32"]).expect("valid CIDR"));
//! ```

use std::net::IpAddr;
#[cfg(feature = "axum")]
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

#[cfg(feature = "axum")]
use axum::extract::ConnectInfo;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body_util::{Either, Full};
use ipnet::IpNet;
use tokbind_proto::{
    ConnectionInfo, ProvenKey, TokenBindingId, TokenBindingType, VerifiedBindings,
};
use tower_layer::Layer;
use tower_service::Service;

use crate::extract::TokenBindingState;
use crate::future::ResponseFuture;
use crate::metrics::{FORWARDED, count};
use crate::possession::add_proven_key;
use crate::rejection::{RejectionKind, TokenBindingRejection};
use crate::response::{RejectionResponse, Responder};

/// `Sec-Provided-Token-Binding-ID`.
pub const SEC_PROVIDED_TOKEN_BINDING_ID: HeaderName =
    HeaderName::from_static("sec-provided-token-binding-id");
/// `Sec-Referred-Token-Binding-ID`.
pub const SEC_REFERRED_TOKEN_BINDING_ID: HeaderName =
    HeaderName::from_static("sec-referred-token-binding-id");
/// `Sec-Other-Token-Binding-ID`.
pub const SEC_OTHER_TOKEN_BINDING_ID: HeaderName =
    HeaderName::from_static("sec-other-token-binding-id");

/// `Client-Cert` (RFC 9440 §2.2).
pub const CLIENT_CERT: HeaderName = HeaderName::from_static("client-cert");

/// A forwarded client certificate larger than this is refused (real ones are a few KiB).
const MAX_CLIENT_CERT: usize = 16 * 1024;

/// Every header that carries TLS-derived state (Token Binding, current or historic, and
/// the RFC 9440 client certificate) into a backend. A proxy removes all of them from what
/// clients send; a backend removes all of them from untrusted peers.
pub const FORWARDING_HEADERS: [&str; 11] = [
    "sec-provided-token-binding-id",
    "sec-referred-token-binding-id",
    "sec-other-token-binding-id",
    "sec-token-binding-context",
    "token-binding-context",
    "provided-token-binding-id",
    "referred-token-binding-id",
    "sec-token-binding",
    // The pre-RFC name of `Sec-Token-Binding` (draft-ietf-tokbind-https-02 §2).
    "token-binding",
    "client-cert",
    "client-cert-chain",
];

/// Remove every [`FORWARDING_HEADERS`] entry from `headers`, also when spelled with `_`
/// for `-` ([`remove_every_spelling`]).
pub fn strip_forwarding_headers(headers: &mut HeaderMap) {
    remove_every_spelling(headers, &FORWARDING_HEADERS);
}

/// Remove each of `names` (lowercase, `-` between words) from `headers`, also when spelled
/// with `_` for any `-`: CGI, WSGI and Rack turn both into the same
/// `HTTP_SEC_PROVIDED_TOKEN_BINDING_ID` (RFC 3875 §4.1.18), so a backend of theirs would
/// read a client's `Sec_Provided_…` as the proxy's header.
pub fn remove_every_spelling(headers: &mut HeaderMap, names: &[&str]) {
    for name in names {
        headers.remove(*name);
    }
    let underscored: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            name.contains('_')
                && names.iter().any(|f| {
                    f.len() == name.len()
                        && f.bytes()
                            .zip(name.bytes())
                            .all(|(f, n)| f == n || (f == b'-' && n == b'_'))
                })
        })
        .cloned()
        .collect();
    for name in underscored {
        headers.remove(name);
    }
}

/// Write what a proxy verified into `headers`, as [`decode_forwarded`] and
/// [`decode_client_cert`] read it back: first every [`FORWARDING_HEADERS`] entry is removed
/// (whatever the client sent about Token Binding or its certificate is replaced,
/// draft-ietf-tokbind-ttrp-09 §2.2, RFC 9440 §4), then the provided, referred and other IDs
/// of `verified` and the client certificate (DER), if any, are set.
pub fn encode_forwarded(
    headers: &mut HeaderMap,
    verified: Option<&VerifiedBindings>,
    client_certificate: Option<&[u8]>,
) {
    strip_forwarding_headers(headers);
    if let Some(der) = client_certificate {
        headers.insert(CLIENT_CERT, encode_client_cert(der));
    }
    let Some(v) = verified else {
        return;
    };
    headers.insert(
        SEC_PROVIDED_TOKEN_BINDING_ID,
        header_safe(v.provided.to_base64url()),
    );
    if let Some(r) = &v.referred {
        headers.insert(SEC_REFERRED_TOKEN_BINDING_ID, header_safe(r.to_base64url()));
    }
    if let Some(others) = encode_others(&v.others) {
        headers.insert(SEC_OTHER_TOKEN_BINDING_ID, header_safe(others));
    }
}

/// A value made of base64url, hex digits, `.` and `,`, which every header value may hold.
fn header_safe(value: String) -> HeaderValue {
    HeaderValue::try_from(value).expect("base64url, hex, '.' and ',' are header-safe")
}

/// What a trusted proxy forwarded, decoded.
pub fn decode_forwarded(
    headers: &HeaderMap,
) -> Result<Option<VerifiedBindings>, TokenBindingRejection> {
    let single = |name: &HeaderName| -> Result<Option<TokenBindingId>, TokenBindingRejection> {
        let mut values = headers.get_all(name).iter();
        let (first, second) = (values.next(), values.next());
        if second.is_some() {
            return Err(malformed(format!("{name} appears more than once")));
        }
        first
            .map(|v| {
                let text = v
                    .to_str()
                    .map_err(|_| malformed(format!("{name} is not text")))?;
                TokenBindingId::from_base64url(text).map_err(|e| malformed(format!("{name}: {e}")))
            })
            .transpose()
    };
    let provided = single(&SEC_PROVIDED_TOKEN_BINDING_ID)?;
    let referred = single(&SEC_REFERRED_TOKEN_BINDING_ID)?;
    let mut others = Vec::new();
    for value in headers.get_all(&SEC_OTHER_TOKEN_BINDING_ID) {
        let text = value
            .to_str()
            .map_err(|_| malformed("Sec-Other-Token-Binding-ID is not text".into()))?;
        for item in text.split(',').map(str::trim) {
            others.push(decode_other(item)?);
        }
    }
    match provided {
        Some(provided) => Ok(Some(VerifiedBindings {
            provided,
            referred,
            others,
            unverified: Vec::new(),
        })),
        None if referred.is_none() && others.is_empty() => Ok(None),
        None => Err(malformed(
            "referred or other Token Binding IDs without a provided one".into(),
        )),
    }
}

/// One `EncodedTokenBindingType "." EncodedTokenBindingID`: 1–2 hex digits, any case
/// (`b`, `B` and `0b` are all type 11; draft-ietf-tokbind-ttrp-09 §2.1).
fn decode_other(item: &str) -> Result<(TokenBindingType, TokenBindingId), TokenBindingRejection> {
    let bad = || {
        malformed(format!(
            "Sec-Other-Token-Binding-ID item {item:?} is not hextype.base64url"
        ))
    };
    let (ty, id) = item.split_once('.').ok_or_else(bad)?;
    if ty.is_empty() || ty.len() > 2 || !ty.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let ty = u8::from_str_radix(ty, 16).map_err(|_| bad())?;
    let id = TokenBindingId::from_base64url(id)
        .map_err(|e| malformed(format!("Sec-Other-Token-Binding-ID: {e}")))?;
    Ok((TokenBindingType::from(ty), id))
}

/// The `Sec-Other-Token-Binding-ID` value for `others` (what a proxy sends).
pub fn encode_others(others: &[(TokenBindingType, TokenBindingId)]) -> Option<String> {
    (!others.is_empty()).then(|| {
        others
            .iter()
            .map(|(t, id)| format!("{:x}.{}", u8::from(*t), id.to_base64url()))
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// The `Client-Cert` value for a certificate (what a proxy sends): an RFC 9651 sf-binary,
/// standard base64 between colons.
pub fn encode_client_cert(der: &[u8]) -> HeaderValue {
    let value = format!(
        ":{}:",
        base64::engine::general_purpose::STANDARD.encode(der)
    );
    HeaderValue::try_from(value).expect("base64 is header-safe")
}

/// The certificate a trusted proxy forwarded in `Client-Cert` (RFC 9440), strictly: one
/// field line, an sf-binary of at most 16 KiB holding a DER `SEQUENCE`.
pub fn decode_client_cert(headers: &HeaderMap) -> Result<Option<Arc<[u8]>>, TokenBindingRejection> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    // RFC 9651 §4.2.7: parsers should accept sf-binary without its `=` padding.
    const SF_BINARY: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let mut values = headers.get_all(&CLIENT_CERT).iter();
    let (Some(value), second) = (values.next(), values.next()) else {
        return Ok(None);
    };
    if second.is_some() {
        return Err(malformed("Client-Cert appears more than once".into()));
    }
    let bad = |why: &str| malformed(format!("Client-Cert {why}"));
    let text = value.to_str().map_err(|_| bad("is not text"))?.trim();
    let inner = text
        .strip_prefix(':')
        .and_then(|t| t.strip_suffix(':'))
        .ok_or_else(|| bad("is not an sf-binary (:base64:)"))?;
    if inner.len() > MAX_CLIENT_CERT * 4 / 3 + 4 {
        return Err(bad("is too large"));
    }
    let der = SF_BINARY
        .decode(inner)
        .map_err(|_| bad("is not valid base64"))?;
    if der.first() != Some(&0x30) {
        return Err(bad("is not a DER certificate"));
    }
    Ok(Some(der.into()))
}

fn malformed(detail: String) -> TokenBindingRejection {
    TokenBindingRejection::new(RejectionKind::MalformedForwardedHeader, detail)
}

/// Accepts Token Binding IDs and client certificates forwarded by trusted TLS-terminating
/// proxies; strips them from everyone else. See the [module docs](self).
#[derive(Debug, Clone)]
#[must_use]
pub struct ForwardedTokenBindingLayer {
    trusted: Arc<Vec<IpNet>>,
    responder: Responder,
}

/// A trusted-hop entry is neither an IP address nor a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTrustedHop(pub String);

impl std::error::Error for InvalidTrustedHop {}

impl std::fmt::Display for InvalidTrustedHop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not an IP address or CIDR block: {:?}", self.0)
    }
}

impl ForwardedTokenBindingLayer {
    /// Trust these proxies: IP addresses (`10.0.0.5`) or CIDR blocks (`10.0.0.0/24`).
    pub fn trusting<I, S>(hops: I) -> Result<Self, InvalidTrustedHop>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let trusted = hops
            .into_iter()
            .map(|h| {
                let h = h.as_ref().trim();
                h.parse::<IpNet>()
                    .or_else(|_| h.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| InvalidTrustedHop(h.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            trusted: Arc::new(trusted),
            responder: Responder::default(),
        })
    }

    /// How refused requests are answered (default [`ProblemJson`](crate::ProblemJson)), as
    /// [`TokenBindingLayer::rejection_response`](crate::TokenBindingLayer::rejection_response).
    pub fn rejection_response(mut self, hook: impl RejectionResponse) -> Self {
        self.responder = Responder(Arc::new(hook));
        self
    }

    fn trusts<B>(&self, req: &Request<B>) -> bool {
        // The peer the server accepted: from the connection's facts (`tokbind_tls::serve`,
        // `MockConnectionInfo`), or from axum's `ConnectInfo` for a backend that the proxy
        // reaches over plain HTTP (`axum::serve` with `into_make_service_with_connect_info`).
        let peer = req
            .extensions()
            .get::<Arc<ConnectionInfo>>()
            .and_then(|info| info.peer_addr());
        #[cfg(feature = "axum")]
        let peer = peer.or_else(|| {
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0)
        });
        // An IPv4 peer may show up as an IPv4-mapped IPv6 address on a dual-stack socket.
        let peer = peer.map(|addr| addr.ip().to_canonical());
        peer.is_some_and(|ip| self.trusted.iter().any(|net| net.contains(&ip)))
    }
}

impl<S> Layer<S> for ForwardedTokenBindingLayer {
    type Service = ForwardedTokenBinding<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ForwardedTokenBinding {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`ForwardedTokenBindingLayer`].
#[derive(Debug, Clone)]
pub struct ForwardedTokenBinding<S> {
    inner: S,
    layer: ForwardedTokenBindingLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ForwardedTokenBinding<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<Either<ResBody, Full<Bytes>>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let (forwarded, certificate) = if self.layer.trusts(&req) {
            let headers = req.headers();
            match decode_forwarded(headers).and_then(|f| Ok((f, decode_client_cert(headers)?))) {
                Ok(f) => {
                    count(FORWARDED, "trusted");
                    f
                }
                Err(rejection) => {
                    count(FORWARDED, rejection.reason());
                    tracing::warn!(
                        detail = rejection.detail(),
                        "malformed Token Binding headers from a trusted proxy"
                    );
                    return ResponseFuture::rejected(self.layer.responder.respond(rejection));
                }
            }
        } else {
            if FORWARDING_HEADERS
                .iter()
                .any(|h| req.headers().contains_key(*h))
            {
                count(FORWARDED, "ignored");
                tracing::debug!("forwarding headers from an untrusted peer removed");
            } else {
                count(FORWARDED, "untrusted");
            }
            (None, None)
        };
        strip_forwarding_headers(req.headers_mut());
        if let Some(der) = certificate {
            add_proven_key(req.extensions_mut(), ProvenKey::mtls_certificate(der));
        }
        let state = match forwarded {
            Some(v) => {
                add_proven_key(req.extensions_mut(), ProvenKey::token_binding(&v.provided));
                TokenBindingState::Verified(Arc::new(v))
            }
            None => TokenBindingState::NotNegotiated,
        };
        req.extensions_mut().insert(state);
        ResponseFuture::inner(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    // draft-ietf-tokbind-ttrp-09 §2.4.1–§2.4.3, exact header values.
    const P1: &str = "AgBBQKzyIrmcY_YCtHVoSHBut69vrGfFdy1_YKTZfFJv6BjrZsKD9b9FRzSBxDs1twTqnAS71M1RBumuihhI9xqxXKk";
    const P2: &str = "AgBBQCfsI1D1sTq5mvT_2H_dihNIvuHJCHGjHPJchPavNbGrOo26-2JgT_IsbvZd4daDFbirYBIwJ-TK1rh8FzrC-ps";
    const P3: &str = "AgBBQA35hcCjI5GEHLLAZ0i2l2ZvQe-bSPAP7jovkZJM4wYHgmmXNd1aRpnQmXK9ghUmrdtS6p_e2uSlMXIVKOIwgys";
    const O1: &str = "AgBBQEevBm3SEMqx6pKKyRdLHpGCb3_IldN6GxsW2lm6gBCXrbGMaawenNzMeSgxwRmY7BW3hVuV3nPxGsV9B8N0Zic";
    const O2: &str = "AgBBQIOq3qbrcHLxvWW-E36f06xBOGguibMqkyJxJkbBHXrqOmWFuSOsWwfN02rMsUUSEJP2zSletxuk4exmelFKSaE";

    #[test]
    fn ttrp_09_examples_decode_to_the_vectors_tbids() {
        let v = decode_forwarded(&headers(&[("sec-provided-token-binding-id", P1)]))
            .unwrap()
            .unwrap();
        assert_eq!(v.provided.to_base64url(), P1);
        assert_eq!(
            v.provided.tbh().to_string(),
            "suMuxh_IlrP-Zrj33LuQOQ5rX039cmBe-wt2df3BrUQ"
        );
        assert!(v.referred.is_none());

        let v = decode_forwarded(&headers(&[
            ("sec-provided-token-binding-id", P2),
            ("sec-referred-token-binding-id", P1),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(v.provided.to_base64url(), P2);
        assert_eq!(v.referred.unwrap().to_base64url(), P1);

        let other = format!("4d.{O1},B.{O2}");
        let v = decode_forwarded(&headers(&[
            ("sec-provided-token-binding-id", P3),
            ("sec-other-token-binding-id", &other),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(v.others.len(), 2);
        assert_eq!(
            v.others[0],
            (
                TokenBindingType::new(0x4d),
                TokenBindingId::from_base64url(O1).unwrap()
            )
        );
        assert_eq!(
            v.others[1],
            (
                TokenBindingType::new(11),
                TokenBindingId::from_base64url(O2).unwrap()
            )
        );
        // And a proxy encodes them back (lower-case hex, which any case decodes).
        assert_eq!(encode_others(&v.others).unwrap(), format!("4d.{O1},b.{O2}"));
        assert_eq!(
            decode_other(&format!("0b.{O2}")).unwrap().0,
            TokenBindingType::new(11)
        );
    }

    #[test]
    fn underscore_spellings_of_forwarding_headers_are_stripped_too() {
        let mut h = headers(&[
            ("sec_provided_token_binding_id", P1),
            ("Sec-Referred_Token-Binding-ID", P2),
            ("client_cert", ":AAAA:"),
            ("x_custom_header", "kept"),
            ("sec-provided-token-binding-idx", "kept"),
        ]);
        strip_forwarding_headers(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["sec-provided-token-binding-idx", "x_custom_header"]);
    }

    #[test]
    fn forwarded_headers_are_decoded_strictly() {
        for bad in [
            vec![("sec-provided-token-binding-id", "not base64!")],
            vec![("sec-provided-token-binding-id", &format!("{P1}="))],
            vec![("sec-provided-token-binding-id", &P1[..40])],
            vec![
                ("sec-provided-token-binding-id", P1),
                ("sec-provided-token-binding-id", P2),
            ],
            vec![("sec-provided-token-binding-id", &format!("{P1},{P2}"))],
            vec![("sec-referred-token-binding-id", P1)],
            vec![
                ("sec-provided-token-binding-id", P1),
                ("sec-other-token-binding-id", &format!("4d{O1}")),
            ],
            vec![
                ("sec-provided-token-binding-id", P1),
                ("sec-other-token-binding-id", &format!("123.{O1}")),
            ],
            vec![
                ("sec-provided-token-binding-id", P1),
                ("sec-other-token-binding-id", &format!("zz.{O1}")),
            ],
            vec![
                ("sec-provided-token-binding-id", P1),
                ("sec-other-token-binding-id", "."),
            ],
        ] {
            let h = headers(&bad);
            let err = decode_forwarded(&h).unwrap_err();
            assert_eq!(
                err.kind(),
                RejectionKind::MalformedForwardedHeader,
                "{bad:?}"
            );
        }
        assert_eq!(decode_forwarded(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn encode_forwarded_round_trips_through_decode_and_replaces_what_the_client_sent() {
        let id = |t: &str| TokenBindingId::from_base64url(t).unwrap();
        let cases = [
            None,
            Some(VerifiedBindings {
                provided: id(P1),
                referred: None,
                others: Vec::new(),
                unverified: Vec::new(),
            }),
            Some(VerifiedBindings {
                provided: id(P2),
                referred: Some(id(P1)),
                others: vec![
                    (TokenBindingType::new(0x4d), id(O1)),
                    (TokenBindingType::new(11), id(O2)),
                ],
                unverified: Vec::new(),
            }),
        ];
        let der: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x07];
        for verified in &cases {
            for certificate in [None, Some(der)] {
                // A client's own attempt at every forwarding header, twice over.
                let mut h = headers(&[
                    ("sec-provided-token-binding-id", P3),
                    ("sec-referred-token-binding-id", P3),
                    ("sec-other-token-binding-id", "4d.AAAA"),
                    ("client-cert", ":MAA=:"),
                    ("client-cert", ":MAA=:"),
                    ("sec-token-binding", "AIkA"),
                ]);
                encode_forwarded(&mut h, verified.as_ref(), certificate);
                assert_eq!(decode_forwarded(&h).unwrap(), *verified);
                assert_eq!(decode_client_cert(&h).unwrap().as_deref(), certificate);
                assert!(!h.contains_key("sec-token-binding"));
            }
        }
    }

    #[test]
    fn client_certificates_round_trip_and_decode_strictly() {
        let der = [0x30, 0x82, 0x01, 0x0a, 0xff, 0x00];
        let value = encode_client_cert(&der);
        assert_eq!(value, ":MIIBCv8A:");
        let h = |v: &str| headers(&[("client-cert", v)]);
        let decoded = decode_client_cert(&h(value.to_str().unwrap())).unwrap();
        assert_eq!(decoded.as_deref(), Some(&der[..]));
        // Without its `=` padding, as RFC 9651 lets a sender write an sf-binary.
        assert_eq!(
            decode_client_cert(&h(":MIIBCg:")).unwrap().as_deref(),
            Some(&[0x30, 0x82, 0x01, 0x0a][..])
        );
        assert_eq!(decode_client_cert(&HeaderMap::new()).unwrap(), None);
        let huge = format!(":{}:", "MIIB".repeat(6000));
        for bad in [
            vec![("client-cert", "MIIBCv8A")],
            vec![("client-cert", ":MIIBCv8A")],
            vec![("client-cert", ":MIIB_v8A:")],
            vec![("client-cert", "::")],
            vec![("client-cert", ":AAAA:")],
            vec![("client-cert", huge.as_str())],
            vec![("client-cert", ":MIIBCv8A:"), ("client-cert", ":MIIBCv8A:")],
        ] {
            let err = decode_client_cert(&headers(&bad)).unwrap_err();
            assert_eq!(
                err.kind(),
                RejectionKind::MalformedForwardedHeader,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn trusted_hops_parse() {
        assert!(ForwardedTokenBindingLayer::trusting(["10.0.0.0/8", "::1", "127.0.0.1"]).is_ok());
        assert_eq!(
            ForwardedTokenBindingLayer::trusting(["proxy.local"]).unwrap_err(),
            InvalidTrustedHop("proxy.local".into())
        );
    }
}
