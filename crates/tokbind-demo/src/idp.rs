//! The Token Provider: a minimal OpenID Provider / authorization server that binds what it
//! issues to Token Binding IDs.
//!
//! * `/authorize` (code flow): the code remembers the request's verified *referred* Token
//!   Binding ID — only the one from the signed `Sec-Token-Binding` header, never anything
//!   from the URL (RFC 8473 §7.3) — and a `referred_tb` PKCE challenge.
//! * `/token`: `referred_tb` PKCE check (`invalid_grant` on mismatch); the ID token and the
//!   access token carry `cnf.tbh` of that referred ID; the refresh token is bound to the
//!   token request's provided ID (the client's own key for this server).
//! * `/jwks`, `/.well-known/openid-configuration`, `/introspect`.
//!
//! Codes and refresh tokens live in a [`SharedStore`], so that with several instances a
//! code issued by one is redeemed at another.
//!
//! The user is always "alice": authentication itself is not what this demo is about.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokbind_oauth::metadata::Introspection;
use tokbind_oauth::pkce::{self, StoredChallenge};
use tokbind_oauth::{BoundGrant, CnfPolicy, TokenIssuer, TokenVerifier, random_token};
use tokbind_proto::{ProvenKey, ProvenKeys, TokenBindingId};
use tower_tokbind::{ProvidedBinding, TokenBindingLayer, VerifiedTokenBinding};

use crate::store::{SharedStore, StoreError};

/// The subject every sign-in authenticates as.
pub const USER: &str = "alice";
const CODE_LIFETIME: Duration = Duration::from_secs(60);
const TOKEN_LIFETIME: Duration = Duration::from_secs(300);
const REFRESH_LIFETIME: Duration = Duration::from_secs(24 * 3600);

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
}

/// A refresh token's record (under `refresh:<token>`).
#[derive(Serialize, Deserialize)]
struct Refresh {
    grant: BoundGrant,
    client_id: String,
    /// base64url of the TBID new access tokens are bound to.
    access_binding: Option<String>,
}

struct Idp {
    issuer: TokenIssuer,
    clients: Vec<RegisteredClient>,
    store: SharedStore,
}

impl Idp {
    fn client(&self, client_id: &str) -> Option<&RegisteredClient> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }
}

/// The IdP's routes, behind `TokenBindingLayer`, keeping codes and refresh tokens in
/// `store`.
pub fn router(issuer: TokenIssuer, clients: Vec<RegisteredClient>, store: SharedStore) -> Router {
    let state = Arc::new(Idp {
        issuer,
        clients,
        store,
    });
    Router::new()
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/introspect", post(introspect))
        .route("/jwks", get(jwks))
        .route("/.well-known/openid-configuration", get(discovery))
        .with_state(state)
        .layer(TokenBindingLayer::new())
}

#[derive(Deserialize)]
struct AuthorizeParams {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str, description: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description.into()})),
    )
        .into_response()
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
    // The referred ID comes only from the verified header (RFC 8473 §7.3).
    let referred = verified.and_then(|v| v.0.referred.clone());
    let challenge = match (
        p.code_challenge_method.as_deref(),
        p.code_challenge.as_deref(),
    ) {
        (Some(method), Some(challenge)) => {
            match pkce::accept_challenge(method, challenge, referred.as_ref()) {
                Ok(stored) => stored,
                Err(e) => {
                    return Redirect::to(&with_query(
                        &client.redirect_uri,
                        &[
                            ("error", e.oauth_error()),
                            ("error_description", &e.to_string()),
                            ("state", state),
                        ],
                    ))
                    .into_response();
                }
            }
        }
        _ => None,
    };
    let code = random_token();
    let record = Code {
        client_id: client.client_id.clone(),
        nonce: p.nonce,
        referred: tbid_text(referred.as_ref()),
        pkce: challenge,
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
    provided: Option<ProvidedBinding>,
    proven: Option<Extension<ProvenKeys>>,
    Form(p): Form<TokenParams>,
) -> Response {
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
            if let Some(challenge) = &code.pkce {
                let verifier = p.code_verifier.as_deref().unwrap_or_default();
                if let Err(e) = pkce::verify(challenge, verifier, provided.as_ref()) {
                    return oauth_error(StatusCode::BAD_REQUEST, e.oauth_error(), e.to_string());
                }
            }
            let referred = match stored_tbid(code.referred.as_deref()) {
                Ok(r) => r,
                Err(e) => return store_error(e),
            };
            issue(
                &idp,
                client,
                code.nonce.as_deref(),
                referred,
                provided.as_ref(),
            )
            .await
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
            // OAuth TB §2: the refresh request must prove the key the token is bound to.
            if let Err(e) = record.grant.check(
                proven.as_ref().into_iter().flat_map(|p| &p.0),
                CnfPolicy::Required,
            ) {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", e.to_string());
            }
            let Some(client) = idp.client(&record.client_id) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the client is no longer registered",
                );
            };
            match stored_tbid(record.access_binding.as_deref()) {
                Ok(binding) => access_token_only(&idp, client, binding.as_ref()),
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

async fn issue(
    idp: &Idp,
    client: &RegisteredClient,
    nonce: Option<&str>,
    referred: Option<TokenBindingId>,
    provided: Option<&TokenBindingId>,
) -> Response {
    let sign = || -> Result<(Value, Refresh), tokbind_oauth::TokenError> {
        let id_token = idp.issuer.token(
            USER,
            &client.client_id,
            TOKEN_LIFETIME,
            nonce,
            referred.as_ref(),
            Default::default(),
        )?;
        let access_token = idp.issuer.token(
            USER,
            &client.api_audience,
            TOKEN_LIFETIME,
            None,
            referred.as_ref(),
            Default::default(),
        )?;
        let grant = BoundGrant::issue(provided.map(ProvenKey::token_binding).as_ref());
        let body = json!({
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME.as_secs(),
            "id_token": id_token,
            "access_token": access_token,
            "refresh_token": grant.value,
        });
        let record = Refresh {
            grant,
            client_id: client.client_id.clone(),
            access_binding: tbid_text(referred.as_ref()),
        };
        Ok((body, record))
    };
    match sign() {
        Ok((body, record)) => {
            let key = format!("refresh:{}", record.grant.value);
            match idp.store.put(&key, &record, REFRESH_LIFETIME).await {
                Ok(()) => Json(body).into_response(),
                Err(e) => store_error(e),
            }
        }
        Err(e) => oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            e.to_string(),
        ),
    }
}

fn access_token_only(
    idp: &Idp,
    client: &RegisteredClient,
    binding: Option<&TokenBindingId>,
) -> Response {
    match idp.issuer.token(USER, &client.api_audience, TOKEN_LIFETIME, None, binding, Default::default()) {
        Ok(at) => Json(json!({"token_type": "Bearer", "expires_in": TOKEN_LIFETIME.as_secs(), "access_token": at})).into_response(),
        Err(e) => oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e.to_string()),
    }
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
        "token_endpoint": format!("{iss}/token"),
        "introspection_endpoint": format!("{iss}/introspect"),
        "jwks_uri": format!("{iss}/jwks"),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": [pkce::TB_S256, pkce::REFERRED_TB],
        "id_token_token_binding_cnf_values_supported": ["tbh"],
        "as_access_token_token_binding_supported": true,
        "as_refresh_token_token_binding_supported": true,
    }))
}
