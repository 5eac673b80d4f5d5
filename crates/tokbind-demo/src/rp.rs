//! The Token Consumer: a relying party whose session cookie, ID token and access token are
//! all bound to the browser's Token Binding key for this site.
//!
//! * `/login` redirects to the IdP with `Include-Referred-Token-Binding-ID: true` and a
//!   `referred_tb` PKCE challenge, so the IdP learns (from the signed header) the key the
//!   browser uses here.
//! * `/callback` exchanges the code over the RP's own Token Binding back channel, proving
//!   `referred_tb` with the browser's provided ID on *this* request, checks the ID token's
//!   `cnf.tbh` against that same ID (OIDC TBA §3), and starts a session whose
//!   cookie is bound to it.
//! * `/protected` needs the session; `/api/me` needs an access token bound to the
//!   caller's key: its Token Binding ID (`Bearer`), or a DPoP key proven by a proof with
//!   `ath` (`DPoP` scheme; such a token sent as `Bearer` is refused, RFC 9449 §7.2); `/login/id_token` accepts an ID token presented directly (as a
//!   `form_post` response would be) — bound, so only its rightful holder can use it.
//! * `/refresh` uses the session's refresh token over the back channel. The refresh token
//!   is bound to the RP's own key for the IdP, so every RP instance must hold that key
//!   (`--back-channel-keys`, a key store they share).
//!
//! Sessions and pending sign-ins live in a [`SharedStore`], so that any instance can
//! serve any request.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use bytes::Bytes;
use http_body_util::Full;
use serde::Deserialize;
use serde_json::{Value, json};
use tokbind_client::Client;
use tokbind_dpop::{DpopLayer, DpopVerifier};
use tokbind_oauth::pkce;
use tokbind_oauth::{BearerClaims, BoundBearerLayer, CnfPolicy, TokenVerifier, random_token};
use tokbind_proto::ProvenKeys;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Session, SessionManagerLayer};
use tower_tokbind::cookie::{BoundCookieLayer, CookieKeys};
use tower_tokbind::include_referred::IncludeReferredLayer;
use tower_tokbind::{ProvidedBinding, TokenBindingLayer};

use crate::store::SharedStore;

/// The RP's session cookie name.
pub const SESSION_COOKIE: &str = "rp_session";
/// How long a sign-in may take between `/login` and `/callback`.
const PENDING_LIFETIME: Duration = Duration::from_secs(600);

/// Where the RP lives and whom it trusts.
#[derive(Debug, Clone)]
pub struct RpConfig {
    /// The RP's public base URL, e.g. `https://127.0.0.1:8444`.
    pub public_url: String,
    /// The IdP's base URL (its issuer identifier).
    pub idp_url: String,
    /// This RP's `client_id` at the IdP.
    pub client_id: String,
    /// The audience of access tokens for this RP's API.
    pub api_audience: String,
}

impl RpConfig {
    /// The registered redirect URI.
    pub fn redirect_uri(&self) -> String {
        format!("{}/callback", self.public_url)
    }
}

struct Rp {
    config: RpConfig,
    id_tokens: TokenVerifier,
    back_channel: Client,
    store: SharedStore,
}

/// The RP's routes: `idp_jwks` are the IdP's signing keys, `back_channel` the Token
/// Binding client the RP uses to call the IdP, `cookie_keys` the MAC keys for the session
/// cookie, and `store` where sessions and pending sign-ins live.
pub fn router(
    config: RpConfig,
    idp_jwks: &Value,
    back_channel: Client,
    cookie_keys: CookieKeys,
    store: SharedStore,
) -> Result<Router, Box<dyn std::error::Error + Send + Sync>> {
    Ok(routes(config, idp_jwks, back_channel, cookie_keys, store)?.layer(TokenBindingLayer::new()))
}

/// As [`router`], without the Token Binding layer: for [`crate::serve`], which adds
/// `TokenBindingLayer`, or `ForwardedTokenBindingLayer` behind the proxy.
pub fn routes(
    config: RpConfig,
    idp_jwks: &Value,
    back_channel: Client,
    cookie_keys: CookieKeys,
    store: SharedStore,
) -> Result<Router, Box<dyn std::error::Error + Send + Sync>> {
    let id_tokens = TokenVerifier::new(idp_jwks, &config.idp_url, &config.client_id)?;
    let api_tokens = TokenVerifier::new(idp_jwks, &config.idp_url, &config.api_audience)?;
    let idp_origin = config.idp_url.clone();
    // Used proofs are remembered where sessions are, so every instance refuses a replay.
    let proofs = DpopLayer::new(
        DpopVerifier::new().replay_cache(store.replay_cache()),
        &config.public_url,
    )?;
    let state = Arc::new(Rp {
        config,
        id_tokens,
        back_channel,
        store: store.clone(),
    });
    let api = Router::new()
        .route("/api/me", get(api_me))
        .route_layer(BoundBearerLayer::new(api_tokens).policy(CnfPolicy::Required))
        .route_layer(proofs);
    let sessions = SessionManagerLayer::new(store)
        .with_name(SESSION_COOKIE)
        .with_secure(true)
        .with_same_site(SameSite::Lax);
    Ok(Router::new()
        .route(
            "/",
            get(|| async { "relying party: GET /login to sign in\n" }),
        )
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/protected", get(protected))
        .route("/login/id_token", get(id_token_login))
        .route("/refresh", get(refresh))
        .with_state(state)
        .merge(api)
        .layer(sessions)
        .layer(BoundCookieLayer::new(cookie_keys).only([SESSION_COOKIE]))
        .layer(IncludeReferredLayer::for_redirects_to([idp_origin])?))
}

fn problem(status: StatusCode, reason: &str, detail: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"reason": reason, "detail": detail.into()})),
    )
        .into_response()
}

async fn login(State(rp): State<Arc<Rp>>) -> Response {
    let (state, nonce) = (random_token(), random_token());
    let key = format!("pending:{state}");
    if let Err(e) = rp.store.put(&key, &nonce, PENDING_LIFETIME).await {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "store", e.to_string());
    }
    let mut url =
        url::Url::parse(&format!("{}/authorize", rp.config.idp_url)).expect("valid IdP URL");
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", rp.config.client_id.as_str()),
        ("redirect_uri", rp.config.redirect_uri().as_str()),
        ("state", state.as_str()),
        ("nonce", nonce.as_str()),
        ("code_challenge_method", pkce::REFERRED_TB),
        ("code_challenge", pkce::REFERRED_TB),
    ]);
    Redirect::to(url.as_str()).into_response()
}

#[derive(Deserialize)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn callback(
    State(rp): State<Arc<Rp>>,
    session: Session,
    provided: Option<ProvidedBinding>,
    Query(p): Query<CallbackParams>,
) -> Response {
    let nonce = match p.state.as_deref() {
        Some(s) => match rp.store.take::<String>(&format!("pending:{s}")).await {
            Ok(nonce) => nonce,
            Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, "store", e.to_string()),
        },
        None => None,
    };
    let (Some(nonce), Some(code)) = (nonce, p.code) else {
        return problem(
            StatusCode::BAD_REQUEST,
            p.error.as_deref().unwrap_or("invalid_state"),
            "unknown or used sign-in attempt",
        );
    };
    let Some(ProvidedBinding(browser)) = provided else {
        return problem(
            StatusCode::FORBIDDEN,
            "token_binding_missing",
            "sign-in requires Token Binding",
        );
    };
    // Back channel: the code exchange proves referred_tb with the browser's ID on *this* request.
    let form: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", &code)
        .append_pair("redirect_uri", &rp.config.redirect_uri())
        .append_pair("client_id", &rp.config.client_id)
        .append_pair("code_verifier", &pkce::referred_tb_verifier(&browser))
        .finish();
    let tokens = match token_request(&rp, form).await {
        Ok(tokens) => tokens,
        Err(response) => return response,
    };
    let id_token = tokens["id_token"].as_str().unwrap_or_default();
    let claims =
        match rp
            .id_tokens
            .verify_id_token(id_token, &nonce, Some(&browser), CnfPolicy::Required)
        {
            Ok(c) => c,
            Err(e) => return problem(StatusCode::UNAUTHORIZED, e.reason(), e.to_string()),
        };
    let stored = async {
        session.cycle_id().await?;
        session.insert("user", &claims.sub).await?;
        session.insert("id_token", id_token).await?;
        session
            .insert(
                "access_token",
                tokens["access_token"].as_str().unwrap_or_default(),
            )
            .await?;
        session
            .insert(
                "refresh_token",
                tokens["refresh_token"].as_str().unwrap_or_default(),
            )
            .await
    };
    if let Err(e) = stored.await {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, "session", e.to_string());
    }
    Redirect::to("/protected").into_response()
}

/// A request to the IdP's token endpoint over the RP's Token Binding back channel.
async fn token_request(rp: &Rp, form: String) -> Result<Value, Response> {
    let request = http::Request::post(format!("{}/token", rp.config.idp_url))
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(Full::new(Bytes::from(form)))
        .expect("valid request");
    match rp.back_channel.fetch(request).await {
        Ok(f) if f.response.status().is_success() => {
            Ok(serde_json::from_slice(f.response.body()).unwrap_or_default())
        }
        Ok(f) => {
            let body: Value = serde_json::from_slice(f.response.body()).unwrap_or_default();
            let error = body["error"].as_str().unwrap_or("token_error").to_string();
            Err(problem(
                StatusCode::UNAUTHORIZED,
                &error,
                body["error_description"].as_str().unwrap_or_default(),
            ))
        }
        Err(e) => Err(problem(
            StatusCode::BAD_GATEWAY,
            "idp_unreachable",
            e.to_string(),
        )),
    }
}

/// A new access token for the session, from its refresh token (bound to the RP's key).
async fn refresh(State(rp): State<Arc<Rp>>, session: Session) -> Response {
    let Ok(Some(refresh_token)) = session.get::<String>("refresh_token").await else {
        return problem(StatusCode::UNAUTHORIZED, "no_session", "sign in at /login");
    };
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("refresh_token", &refresh_token)
        .finish();
    let tokens = match token_request(&rp, form).await {
        Ok(tokens) => tokens,
        Err(response) => return response,
    };
    let access_token = tokens["access_token"].as_str().unwrap_or_default();
    if let Err(e) = session.insert("access_token", access_token).await {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "session", e.to_string());
    }
    Json(json!({"access_token": access_token})).into_response()
}

/// The signed-in page. It shows the session's tokens so the demo can play the thief.
async fn protected(session: Session) -> Response {
    match session.get::<String>("user").await {
        Ok(Some(user)) => Json(json!({
            "user": user,
            "id_token": session.get::<String>("id_token").await.ok().flatten(),
            "access_token": session.get::<String>("access_token").await.ok().flatten(),
        }))
        .into_response(),
        _ => problem(StatusCode::UNAUTHORIZED, "no_session", "sign in at /login"),
    }
}

#[derive(Deserialize)]
struct IdTokenParams {
    id_token: String,
}

async fn id_token_login(
    State(rp): State<Arc<Rp>>,
    proven: Option<Extension<ProvenKeys>>,
    Query(p): Query<IdTokenParams>,
) -> Response {
    // Signing in with an ID token alone is safe only for a bound one, presented by its
    // holder (its `cnf`, OIDC TBA §2): an unbound ID token is anyone's who has seen it.
    match rp.id_tokens.verify(
        &p.id_token,
        proven.as_ref().into_iter().flat_map(|e| &e.0),
        CnfPolicy::Enforced,
    ) {
        Ok(claims) => Json(json!({"user": claims.sub})).into_response(),
        Err(e) => problem(StatusCode::UNAUTHORIZED, e.reason(), e.to_string()),
    }
}

async fn api_me(Extension(BearerClaims(claims)): Extension<BearerClaims>) -> Json<Value> {
    let cnf = claims.cnf.as_ref();
    let bound_by = match cnf {
        Some(c) if c.jkt.is_some() => "dpop",
        Some(c) if c.tbh.is_some() => "token_binding",
        Some(c) if c.is_bound() => "other",
        _ => "none",
    };
    Json(json!({
        "user": claims.sub,
        "bound": cnf.is_some_and(|c| c.is_bound()),
        "bound_by": bound_by,
    }))
}
