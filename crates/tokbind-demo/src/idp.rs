//! The Token Provider: a minimal OpenID Provider / authorization server that binds what it
//! issues to the client's key — a Token Binding ID, or a DPoP key (RFC 9449).
//!
//! * `/authorize` (code flow): the code remembers the request's verified *referred* Token
//!   Binding ID — only the one from the signed `Sec-Token-Binding` header, never anything
//!   from the URL (RFC 8473 §7.3) —, its PKCE challenge (`S256`, `TB-S256` or
//!   `referred_tb`), `scope`, `nonce` and `dpop_jkt` (RFC 9449 §10). A request must use
//!   PKCE (RFC 9700 §2.1.1) unless it carries a referred Token Binding ID, to which its
//!   code is then bound (OAuth TB §5.2).
//! * `/token`: the DPoP proof first (RFC 9449 §5; a server nonce is required, §8), then
//!   the PKCE check (`invalid_grant` on mismatch). With a proof the access token carries
//!   `cnf.jkt` (`token_type: DPoP`) and the refresh token is bound to the same key;
//!   without one the ID token and the access token carry `cnf.tbh` of the referred ID and
//!   the refresh token is bound to the token request's provided ID (the client's own key
//!   for this server). A code bound to a referred ID refuses a DPoP proof: its tokens are
//!   bound to that ID, whoever redeems it. A refresh token that would be bound to no key is not issued (RFC
//!   9700 §4.14.2).
//! * `/userinfo` (OIDC Core §5.3): the access token, checked against the key the request
//!   proved — a DPoP proof with `ath`, or the Token Binding ID.
//! * `/jwks`, `/.well-known/openid-configuration` (OIDC Discovery §3, RFC 8414 §2),
//!   `/introspect`.
//!
//! Codes and refresh tokens live in a [`SharedStore`], so that with several instances a
//! code issued by one is redeemed at another.
//!
//! The user is always "alice": authentication itself is not what this demo is about.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokbind_dpop::{DpopLayer, DpopProof, DpopVerifier, NonceIssuer};
use tokbind_oauth::metadata::Introspection;
use tokbind_oauth::pkce::{self, StoredChallenge};
use tokbind_oauth::{
    BearerClaims, BoundBearerLayer, BoundGrant, CnfPolicy, Confirmation, TokenIssuer,
    TokenVerifier, random_token,
};
use tokbind_proto::{ProvenKey, ProvenKeys, TokenBindingId};
use tower_tokbind::{ProvidedBinding, TokenBindingLayer, VerifiedTokenBinding};

use crate::store::{SharedStore, StoreError};

/// The subject every sign-in authenticates as.
pub const USER: &str = "alice";
const CODE_LIFETIME: Duration = Duration::from_secs(60);
const TOKEN_LIFETIME: Duration = Duration::from_secs(300);
const REFRESH_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How long a DPoP nonce from the token endpoint stays good.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// The scopes this provider knows; others in a request are ignored (RFC 6749 §3.3).
const SCOPES: [&str; 2] = ["openid", "profile"];
/// The scope of a request that names none (RFC 6749 §3.3: a documented default).
const DEFAULT_SCOPE: &str = "openid";

/// A registered client (relying party).
#[derive(Debug, Clone)]
pub struct RegisteredClient {
    /// `client_id`.
    pub client_id: String,
    /// The one allowed `redirect_uri`.
    pub redirect_uri: String,
    /// The audience of the access tokens issued to it (its API).
    pub api_audience: String,
}

/// An authorization code's record (under `code:<code>`, for [`CODE_LIFETIME`]).
#[derive(Serialize, Deserialize)]
struct Code {
    client_id: String,
    nonce: Option<String>,
    /// base64url of the verified referred TBID of the authorization request.
    referred: Option<String>,
    pkce: Option<StoredChallenge>,
    /// The granted scope, space-separated.
    #[serde(default)]
    scope: Option<String>,
    /// RFC 9449 §10: the DPoP key the token request must prove.
    #[serde(default)]
    dpop_jkt: Option<String>,
}

/// A refresh token's record (under `refresh:<token>`).
#[derive(Serialize, Deserialize)]
struct Refresh {
    grant: BoundGrant,
    client_id: String,
    /// base64url of the TBID new access tokens are bound to (DPoP-bound grants bind them
    /// to their own key instead).
    access_binding: Option<String>,
    /// The granted scope.
    #[serde(default)]
    scope: Option<String>,
}

struct Idp {
    issuer: TokenIssuer,
    clients: Vec<RegisteredClient>,
    store: SharedStore,
    /// The token endpoint's proof checks, with server nonces.
    dpop: DpopVerifier,
    /// `{issuer}/token`, the URL proofs must name (`htu`).
    token_endpoint: String,
}

impl Idp {
    fn client(&self, client_id: &str) -> Option<&RegisteredClient> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }
}

/// The IdP's routes, behind `TokenBindingLayer`, keeping codes, refresh tokens and used
/// DPoP proofs in `store`, with a fresh DPoP nonce secret (one instance only).
///
/// # Panics
///
/// If the issuer identifier is not an `https` origin (it is configuration, checked once).
pub fn router(issuer: TokenIssuer, clients: Vec<RegisteredClient>, store: SharedStore) -> Router {
    router_with_nonces(issuer, clients, store, fresh_nonces())
}

/// Nonces under a fresh secret, for one instance.
pub fn fresh_nonces() -> NonceIssuer {
    NonceIssuer::generate(NONCE_LIFETIME).expect("the system RNG works")
}

/// Nonces under the secret `keygen` prints (`TOKBIND_DPOP_NONCE_KEY`: base64url, 32
/// bytes or more), shared by every instance.
pub fn nonces_from_config(value: &str) -> Result<NonceIssuer, crate::Error> {
    let secret = tokbind_proto::base64url::decode(value.trim().as_bytes())
        .map_err(|e| format!("TOKBIND_DPOP_NONCE_KEY: {e}"))?;
    Ok(NonceIssuer::new(&secret, NONCE_LIFETIME)?)
}

/// As [`router`], with the token endpoint's DPoP nonces under `nonces` (the same secret
/// on every instance).
///
/// # Panics
///
/// If the issuer identifier is not an `https` origin (it is configuration, checked once).
pub fn router_with_nonces(
    issuer: TokenIssuer,
    clients: Vec<RegisteredClient>,
    store: SharedStore,
    nonces: NonceIssuer,
) -> Router {
    routes(issuer, clients, store, nonces).layer(TokenBindingLayer::new())
}

/// As [`router_with_nonces`], without the Token Binding layer: for [`crate::serve`], which
/// adds `TokenBindingLayer`, or `ForwardedTokenBindingLayer` behind the proxy.
///
/// # Panics
///
/// If the issuer identifier is not an `https` origin (it is configuration, checked once).
pub fn routes(
    issuer: TokenIssuer,
    clients: Vec<RegisteredClient>,
    store: SharedStore,
    nonces: NonceIssuer,
) -> Router {
    let iss = issuer.issuer().trim_end_matches('/').to_string();
    let audiences: Vec<&str> = clients.iter().map(|c| c.api_audience.as_str()).collect();
    let access_tokens = TokenVerifier::for_audiences(&issuer.jwks(), &iss, &audiences)
        .expect("the issuer's own JWK Set is readable");
    // Resource servers keep their own proof checks and nonces (RFC 9449 §9): userinfo
    // asks for none.
    let userinfo_proofs =
        DpopLayer::new(DpopVerifier::new().replay_cache(store.replay_cache()), &iss)
            .expect("the issuer is an https origin");
    let state = Arc::new(Idp {
        token_endpoint: format!("{iss}/token"),
        issuer,
        clients,
        dpop: DpopVerifier::new()
            .nonces(nonces)
            .replay_cache(store.replay_cache()),
        store,
    });
    let userinfo_route = Router::new()
        .route("/userinfo", get(userinfo).post(userinfo))
        .route_layer(BoundBearerLayer::new(access_tokens).policy(CnfPolicy::Required))
        .route_layer(userinfo_proofs);
    Router::new()
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/introspect", post(introspect))
        .route("/jwks", get(jwks))
        .route("/.well-known/openid-configuration", get(discovery))
        .with_state(state)
        .merge(userinfo_route)
}

#[derive(Deserialize)]
struct AuthorizeParams {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    nonce: Option<String>,
    scope: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    dpop_jkt: Option<String>,
}

/// RFC 6749 §5.1, §5.2: token endpoint answers are JSON and never cached.
fn no_store(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    h.insert(http::header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn oauth_error(status: StatusCode, error: &str, description: impl Into<String>) -> Response {
    no_store(
        (
            status,
            Json(json!({"error": error, "error_description": description.into()})),
        )
            .into_response(),
    )
}

fn store_error(e: StoreError) -> Response {
    tracing::error!("{e}");
    oauth_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "the authorization server cannot reach its store",
    )
}

fn tbid_text(id: Option<&TokenBindingId>) -> Option<String> {
    id.map(TokenBindingId::to_base64url)
}

/// A TBID this server stored itself; unreadable only if the store was tampered with.
fn stored_tbid(text: Option<&str>) -> Result<Option<TokenBindingId>, StoreError> {
    text.map(TokenBindingId::from_base64url)
        .transpose()
        .map_err(StoreError::damaged)
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(base).expect("registered redirect URIs are absolute");
    url.query_pairs_mut().extend_pairs(pairs);
    url.into()
}

async fn authorize(
    State(idp): State<Arc<Idp>>,
    verified: Option<VerifiedTokenBinding>,
    Query(p): Query<AuthorizeParams>,
) -> Response {
    let Some(client) = idp
        .clients
        .iter()
        .find(|c| c.client_id == p.client_id && c.redirect_uri == p.redirect_uri)
    else {
        // Never redirect to an unregistered URI.
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unknown client_id or redirect_uri",
        );
    };
    let state = p.state.as_deref().unwrap_or_default();
    if p.response_type != "code" {
        return Redirect::to(&with_query(
            &client.redirect_uri,
            &[("error", "unsupported_response_type"), ("state", state)],
        ))
        .into_response();
    }
    let refuse = |error: &str, description: &str| {
        Redirect::to(&with_query(
            &client.redirect_uri,
            &[
                ("error", error),
                ("error_description", description),
                ("state", state),
            ],
        ))
        .into_response()
    };
    // The referred ID comes only from the verified header (RFC 8473 §7.3).
    let referred = verified.and_then(|v| v.0.referred.clone());
    let challenge = match (
        p.code_challenge_method.as_deref(),
        p.code_challenge.as_deref(),
    ) {
        (Some(method), Some(challenge)) => {
            match pkce::accept_challenge(method, challenge, referred.as_ref()) {
                Ok(Some(stored)) => Some(stored),
                Ok(None) => {
                    return refuse(
                        "invalid_request",
                        "code_challenge_method must be S256, TB-S256 or referred_tb",
                    );
                }
                Err(e) => return refuse(e.oauth_error(), &e.to_string()),
            }
        }
        // RFC 7636 §4.3: no method means `plain`, which this server does not take.
        (None, Some(_)) | (Some(_), None) => {
            return refuse(
                "invalid_request",
                "code_challenge and code_challenge_method go together",
            );
        }
        // Without PKCE, only a code bound to the request's referred Token Binding ID is safe
        // to hand out: whoever intercepts it gets tokens bound to a key they do not hold
        // (OAuth TB §5.2). Any other code must be protected by PKCE (RFC 9700 §2.1.1).
        (None, None) if referred.is_none() => {
            return refuse(
                "invalid_request",
                "PKCE (code_challenge_method=S256) is required",
            );
        }
        (None, None) => None,
    };
    let requested = p.scope.as_deref().unwrap_or(DEFAULT_SCOPE);
    let granted: Vec<&str> = SCOPES
        .into_iter()
        .filter(|s| requested.split(' ').any(|r| r == *s))
        .collect();
    let code = random_token();
    let record = Code {
        client_id: client.client_id.clone(),
        nonce: p.nonce,
        referred: tbid_text(referred.as_ref()),
        pkce: challenge,
        scope: Some(granted.join(" ")),
        dpop_jkt: p.dpop_jkt,
    };
    if let Err(e) = idp
        .store
        .put(&format!("code:{code}"), &record, CODE_LIFETIME)
        .await
    {
        return store_error(e);
    }
    Redirect::to(&with_query(
        &client.redirect_uri,
        &[("code", &code), ("state", state)],
    ))
    .into_response()
}

#[derive(Deserialize)]
struct TokenParams {
    grant_type: String,
    code: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
}

async fn token(
    State(idp): State<Arc<Idp>>,
    method: Method,
    headers: HeaderMap,
    provided: Option<ProvidedBinding>,
    proven: Option<Extension<ProvenKeys>>,
    form: Result<Form<TokenParams>, FormRejection>,
) -> Response {
    // The proof is checked before anything is consumed, so that a request refused for want
    // of a nonce (RFC 9449 §8) can be sent again with one.
    let mut parts = http::Request::new(()).into_parts().0;
    parts.method = method;
    parts.headers = headers;
    let dpop = match idp
        .dpop
        .check_token_request(&parts, &idp.token_endpoint)
        .await
    {
        Ok(proof) => proof,
        Err(e) => {
            tracing::debug!(reason = e.reason(), error = %e, "DPoP proof refused");
            return e
                .token_endpoint_response(&idp.dpop, SystemTime::now())
                .into_response();
        }
    };
    let Form(p) = match form {
        Ok(form) => form,
        Err(e) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", e.body_text()),
    };
    let provided = provided.map(|p| p.0);
    match p.grant_type.as_str() {
        "authorization_code" => {
            // One use only, on every instance: removed whatever happens next.
            let code = match p.code.as_deref() {
                Some(c) => match idp.store.take::<Code>(&format!("code:{c}")).await {
                    Ok(code) => code,
                    Err(e) => return store_error(e),
                },
                None => None,
            };
            // Expired codes are gone from the store.
            let Some(code) = code else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown or used authorization code",
                );
            };
            let client = idp.client(&code.client_id);
            let Some(client) = client.filter(|c| {
                p.client_id.as_deref() == Some(&c.client_id)
                    && p.redirect_uri.as_deref() == Some(&c.redirect_uri)
            }) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the code was issued to another client",
                );
            };
            match (&code.pkce, p.code_verifier.as_deref()) {
                (Some(challenge), verifier) => {
                    if let Err(e) =
                        pkce::verify(challenge, verifier.unwrap_or_default(), provided.as_ref())
                    {
                        return oauth_error(
                            StatusCode::BAD_REQUEST,
                            e.oauth_error(),
                            e.to_string(),
                        );
                    }
                }
                // RFC 9700 §2.1.1: a verifier for a code issued without a challenge is a
                // PKCE downgrade.
                (None, Some(_)) => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "the code was issued without a code_challenge",
                    );
                }
                (None, None) => {}
            }
            if let Some(jkt) = &code.dpop_jkt
                && let Err(e) = DpopVerifier::check_dpop_jkt(jkt, dpop.as_ref())
            {
                return e
                    .token_endpoint_response(&idp.dpop, SystemTime::now())
                    .into_response();
            }
            let referred = match stored_tbid(code.referred.as_deref()) {
                Ok(r) => r,
                Err(e) => return store_error(e),
            };
            // A code bound to the referred Token Binding ID issues tokens bound to that ID
            // and nothing else (OAuth TB §5.2): a DPoP proof cannot take its place, or
            // whoever intercepted the code would bind its tokens to a key of their own.
            if referred.is_some() && dpop.is_some() {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the code is bound to a Token Binding ID; a DPoP proof cannot stand in for it",
                );
            }
            // The refresh token is bound to the key the token request proved: the DPoP
            // key (RFC 9449 §5), or else the provided Token Binding ID (OAuth TB §2).
            let key = match &dpop {
                Some(proof) => Some(proof.proven_key()),
                None => provided.as_ref().map(ProvenKey::token_binding),
            };
            let grant = Grant {
                client,
                nonce: code.nonce.as_deref(),
                scope: code.scope.as_deref().unwrap_or(DEFAULT_SCOPE),
                referred,
                dpop: dpop.as_ref(),
            };
            issue(&idp, &grant, key.as_ref()).await
        }
        "refresh_token" => {
            let record = match p.refresh_token.as_deref() {
                Some(t) => match idp.store.get::<Refresh>(&format!("refresh:{t}")).await {
                    Ok(record) => record,
                    Err(e) => return store_error(e),
                },
                None => None,
            };
            let Some(record) = record else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown refresh token",
                );
            };
            // OAuth TB §2, RFC 9449 §5: the refresh request must prove the key the token
            // is bound to.
            let dpop_key = dpop.as_ref().map(DpopProof::proven_key);
            let keys = proven
                .as_ref()
                .into_iter()
                .flat_map(|p| &p.0)
                .chain(dpop_key.as_ref());
            if let Err(e) = record.grant.check(keys, CnfPolicy::Required) {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", e.to_string());
            }
            // RFC 6749 §6: a refresh token is used only by the client it was issued to.
            if p.client_id
                .as_ref()
                .is_some_and(|id| *id != record.client_id)
            {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the refresh token was issued to another client",
                );
            }
            let Some(client) = idp.client(&record.client_id) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the client is no longer registered",
                );
            };
            let dpop_bound = record.grant.cnf.as_ref().is_some_and(|c| c.jkt.is_some());
            let grant = Grant {
                client,
                nonce: None,
                scope: record.scope.as_deref().unwrap_or(DEFAULT_SCOPE),
                referred: None,
                // A DPoP-bound grant passed its check only with a proof of its key.
                dpop: dpop.as_ref().filter(|_| dpop_bound),
            };
            match stored_tbid(record.access_binding.as_deref()) {
                Ok(binding) => access_token_only(&idp, &grant, binding.as_ref()),
                Err(e) => store_error(e),
            }
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            p.grant_type,
        ),
    }
}

/// What one token response is issued for.
struct Grant<'a> {
    client: &'a RegisteredClient,
    /// The ID token's nonce.
    nonce: Option<&'a str>,
    /// The granted scope.
    scope: &'a str,
    /// The referred Token Binding ID of the authorization request.
    referred: Option<TokenBindingId>,
    /// The token request's proof: the access token is bound to its key.
    dpop: Option<&'a DpopProof>,
}

impl Grant<'_> {
    /// The access token's binding: the DPoP key (RFC 9449 §6), or else `tbh` of `tbid`.
    fn access_cnf(&self, tbid: Option<&TokenBindingId>) -> Option<Confirmation> {
        match self.dpop {
            Some(proof) => Confirmation::for_key(&proof.proven_key()),
            None => tbid.map(Confirmation::token_binding),
        }
    }

    /// `DPoP` for a DPoP-bound access token (RFC 9449 §5), else `Bearer`.
    fn token_type(&self) -> &'static str {
        if self.dpop.is_some() {
            "DPoP"
        } else {
            "Bearer"
        }
    }

    /// RFC 9068 §2.2 claims: whom the token was issued to, and for what.
    fn access_claims(&self) -> Map<String, Value> {
        let mut extra = Map::new();
        extra.insert("client_id".into(), self.client.client_id.clone().into());
        extra.insert("scope".into(), self.scope.into());
        extra
    }

    fn access_token(
        &self,
        idp: &Idp,
        tbid: Option<&TokenBindingId>,
    ) -> Result<String, tokbind_oauth::TokenError> {
        idp.issuer.token_with_cnf(
            USER,
            &self.client.api_audience,
            TOKEN_LIFETIME,
            None,
            self.access_cnf(tbid),
            self.access_claims(),
        )
    }
}

async fn issue(idp: &Idp, grant: &Grant<'_>, key: Option<&ProvenKey>) -> Response {
    let referred = grant.referred.as_ref();
    let sign = || -> Result<(Value, Option<Refresh>), tokbind_oauth::TokenError> {
        let mut body = json!({
            "token_type": grant.token_type(),
            "expires_in": TOKEN_LIFETIME.as_secs(),
            "access_token": grant.access_token(idp, referred)?,
            "scope": grant.scope,
        });
        if grant.scope.split(' ').any(|s| s == "openid") {
            body["id_token"] = idp
                .issuer
                .token(
                    USER,
                    &grant.client.client_id,
                    TOKEN_LIFETIME,
                    grant.nonce,
                    referred,
                    Default::default(),
                )?
                .into();
        }
        let bound = BoundGrant::issue(key);
        if bound.cnf.is_none() {
            return Ok((body, None));
        }
        body["refresh_token"] = bound.value.clone().into();
        let record = Refresh {
            grant: bound,
            client_id: grant.client.client_id.clone(),
            access_binding: tbid_text(referred),
            scope: Some(grant.scope.to_string()),
        };
        Ok((body, Some(record)))
    };
    match sign() {
        Ok((body, record)) => {
            if let Some(record) = record {
                let key = format!("refresh:{}", record.grant.value);
                if let Err(e) = idp.store.put(&key, &record, REFRESH_LIFETIME).await {
                    return store_error(e);
                }
            }
            no_store(Json(body).into_response())
        }
        Err(e) => oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            e.to_string(),
        ),
    }
}

fn access_token_only(idp: &Idp, grant: &Grant<'_>, binding: Option<&TokenBindingId>) -> Response {
    match grant.access_token(idp, binding) {
        Ok(at) => no_store(
            Json(json!({
                "token_type": grant.token_type(),
                "expires_in": TOKEN_LIFETIME.as_secs(),
                "access_token": at,
                "scope": grant.scope,
            }))
            .into_response(),
        ),
        Err(e) => oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            e.to_string(),
        ),
    }
}

/// OIDC Core §5.3. The layers in front checked the access token and its binding.
async fn userinfo(Extension(BearerClaims(claims)): Extension<BearerClaims>) -> Response {
    let scope = claims
        .extra
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let has = |s: &str| scope.split(' ').any(|g| g == s);
    if !has("openid") {
        // RFC 6750 §3.1, in the scheme the token is presented with (RFC 9449 §7.1).
        let scheme = if claims.cnf.as_ref().is_some_and(|c| c.jkt.is_some()) {
            "DPoP"
        } else {
            "Bearer"
        };
        let mut res = (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "insufficient_scope", "error_description": "the token was not issued for openid"})),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{scheme} error=\"insufficient_scope\", scope=\"openid\""
        )) {
            res.headers_mut().insert(http::header::WWW_AUTHENTICATE, v);
        }
        return res;
    }
    let mut body = json!({"sub": claims.sub});
    if has("profile") {
        body["name"] = "Alice".into();
    }
    Json(body).into_response()
}

#[derive(Deserialize)]
struct IntrospectParams {
    token: String,
}

async fn introspect(
    State(idp): State<Arc<Idp>>,
    Form(p): Form<IntrospectParams>,
) -> Json<Introspection> {
    let jwks = idp.issuer.jwks();
    let active = idp.clients.iter().find_map(|c| {
        TokenVerifier::new(&jwks, idp.issuer.issuer(), &c.api_audience)
            .ok()?
            .decode(&p.token)
            .ok()
    });
    Json(
        active
            .as_ref()
            .map_or_else(Introspection::inactive, Introspection::active),
    )
}

async fn jwks(State(idp): State<Arc<Idp>>) -> Json<Value> {
    Json(idp.issuer.jwks())
}

async fn discovery(State(idp): State<Arc<Idp>>) -> Json<Value> {
    let iss = idp.issuer.issuer();
    Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": idp.token_endpoint,
        "userinfo_endpoint": format!("{iss}/userinfo"),
        "introspection_endpoint": format!("{iss}/introspect"),
        "jwks_uri": format!("{iss}/jwks"),
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        // Public clients, whose codes PKCE protects and whose tokens DPoP or Token
        // Binding binds (RFC 8414 §2).
        "token_endpoint_auth_methods_supported": ["none"],
        "claims_supported": ["sub", "name", "iss", "aud", "exp", "iat", "nonce", "cnf"],
        "code_challenge_methods_supported": [pkce::S256, pkce::TB_S256, pkce::REFERRED_TB],
        "dpop_signing_alg_values_supported": idp.dpop.algorithm_names(),
        "id_token_token_binding_cnf_values_supported": ["tbh"],
        "as_access_token_token_binding_supported": true,
        "as_refresh_token_token_binding_supported": true,
    }))
}
