//! An off-the-shelf OpenID Connect client library — the `openidconnect` crate (with its
//! `oauth2` core and its reqwest client) — signs in against the demo IdP and calls the
//! demo RP, over HTTPS on loopback, with DPoP (RFC 9449).
//!
//! The library does discovery, the authorization URL with S256 PKCE, the code exchange,
//! the ID token check, userinfo and the refresh. It does not do DPoP, so the only code of
//! ours on the client side is [`Glue`], the HTTP client function handed to the library:
//! it signs a proof for each token request (`tokbind_dpop::DpopKey`), turns
//! `Authorization: Bearer` into the `DPoP` scheme with a proof carrying `ath`, and sends a
//! token request again once with the nonce the server asked for (RFC 9449 §8). The
//! browser's part, following the authorization URL, is one GET: the demo IdP
//! authenticates everyone as "alice".
//!
//! The refusals are judged as the application sees them: the library's error, or the RP's
//! status and reason, with the user's identity nowhere in the answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::http::header::{AUTHORIZATION, LOCATION};
use openidconnect::http::{HeaderValue, Method, Request, StatusCode};
use openidconnect::reqwest;
use openidconnect::{
    AccessToken, AsyncHttpClient as _, AuthorizationCode, ClientId, CsrfToken, HttpClientError,
    HttpRequest, HttpResponse, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, TokenResponse, UserInfoError,
};
use serde_json::Value;
use tokbind_demo::{APP_CLIENT_ID, APP_REDIRECT_URI, InProcess};
use tokbind_dpop::{DPOP, DPOP_NONCE, DpopKey};

type GlueError = HttpClientError<reqwest::Error>;
type Sending<'a> = Pin<Box<dyn Future<Output = Result<HttpResponse, GlueError>> + Send + 'a>>;

/// The test's glue: DPoP for the library's requests, with the library's own reqwest client.
struct Glue {
    http: reqwest::Client,
    key: DpopKey,
    token_endpoint: String,
    /// The token endpoint's latest `DPoP-Nonce`.
    nonce: Mutex<Option<String>>,
    /// How many token requests were sent again with a nonce.
    nonce_round_trips: AtomicUsize,
}

impl Glue {
    fn new(servers: &InProcess, key: DpopKey) -> Self {
        Self {
            http: http_client(servers),
            key,
            token_endpoint: format!("{}/token", servers.idp_url),
            nonce: Mutex::new(None),
            nonce_round_trips: AtomicUsize::new(0),
        }
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, GlueError> {
        let (parts, body) = request.into_parts();
        let url = parts.uri.to_string();
        let at_token_endpoint = url == self.token_endpoint;
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        // Discovery and the JWK Set go out as the library made them.
        if !at_token_endpoint && token.is_none() {
            return self.http.call(Request::from_parts(parts, body)).await;
        }
        for attempt in 0..2 {
            let nonce = if at_token_endpoint {
                self.nonce.lock().unwrap().clone()
            } else {
                None
            };
            let proof = self.key.proof(
                parts.method.as_str(),
                &url,
                token.as_deref(),
                nonce.as_deref(),
            );
            let mut request = Request::new(body.clone());
            *request.method_mut() = parts.method.clone();
            *request.uri_mut() = parts.uri.clone();
            *request.headers_mut() = parts.headers.clone();
            let headers = request.headers_mut();
            headers.insert(DPOP, HeaderValue::from_str(&proof).unwrap());
            if let Some(token) = &token {
                headers.insert(
                    AUTHORIZATION,
                    HeaderValue::from_str(&format!("DPoP {token}")).unwrap(),
                );
            }
            let response = self.http.call(request).await?;
            if let Some(n) = response.headers().get(DPOP_NONCE) {
                *self.nonce.lock().unwrap() = n.to_str().ok().map(str::to_owned);
            }
            let wants_nonce = response.status() == StatusCode::BAD_REQUEST
                && serde_json::from_slice::<Value>(response.body())
                    .is_ok_and(|b| b["error"] == "use_dpop_nonce");
            if attempt == 0 && at_token_endpoint && wants_nonce {
                self.nonce_round_trips.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            return Ok(response);
        }
        unreachable!("the second attempt returns")
    }

    /// The HTTP client function the library calls.
    fn client<'a>(&'a self) -> impl Fn(HttpRequest) -> Sending<'a> + 'a {
        move |request| Box::pin(self.send(request))
    }

    /// A GET of the RP's API with `token`, which the glue sends with the DPoP scheme.
    async fn api(&self, url: &str, token: &AccessToken) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(Method::GET)
            .uri(url)
            .header(AUTHORIZATION, format!("Bearer {}", token.secret()))
            .body(Vec::new())
            .unwrap();
        let response = self.send(request).await.unwrap();
        (
            response.status(),
            serde_json::from_slice(response.body()).unwrap_or(Value::Null),
        )
    }
}

/// The library's reqwest client, trusting the demo's certificates and following no
/// redirect (the library's own advice).
fn http_client(servers: &InProcess) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    for cert in reqwest::Certificate::from_pem_bundle(&servers.roots).unwrap() {
        builder = builder.add_root_certificate(cert);
    }
    builder.build().unwrap()
}

async fn body_json(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap_or(Value::Null)
}

fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&tokbind_proto::base64url::decode(part.as_bytes()).unwrap()).unwrap()
}

/// The browser's part: follow the authorization URL to the IdP, which signs alice in at
/// once and redirects to the app; the redirect's query.
async fn authorize(http: &reqwest::Client, url: &url::Url) -> Vec<(String, String)> {
    let response = http.get(url.as_str()).send().await.unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    let location = response.headers()[LOCATION].to_str().unwrap();
    let location = url::Url::parse(location).unwrap();
    assert!(
        location.as_str().starts_with(APP_REDIRECT_URI),
        "{location}"
    );
    location.query_pairs().into_owned().collect()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

type App = openidconnect::core::CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// Discovery, and the library's client for the app.
async fn discover(servers: &InProcess, glue: &Glue) -> (App, CoreProviderMetadata) {
    let issuer = IssuerUrl::new(servers.idp_url.clone()).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &glue.client())
        .await
        .unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata.clone(),
        ClientId::new(APP_CLIENT_ID.into()),
        None,
    )
    .set_redirect_uri(RedirectUrl::new(APP_REDIRECT_URI.into()).unwrap());
    (client, metadata)
}

/// The authorization request the library builds (S256 PKCE, state, nonce, scope), the
/// browser's part, and the code.
async fn sign_in_code(glue: &Glue, client: &App) -> (AuthorizationCode, PkceCodeVerifier, Nonce) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let query = authorize(&glue.http, &url).await;
    assert_eq!(param(&query, "state"), Some(state.secret().as_str()));
    let code = param(&query, "code").expect("a code").to_string();
    (AuthorizationCode::new(code), verifier, nonce)
}

#[tokio::test]
async fn openidconnect_signs_in_with_dpop_and_uses_the_bound_tokens() {
    let servers = tokbind_demo::start_in_process().await.unwrap();
    let glue = Glue::new(&servers, DpopKey::generate().unwrap());
    let (client, metadata) = discover(&servers, &glue).await;
    assert_eq!(metadata.issuer().as_str(), servers.idp_url);

    let (code, verifier, nonce) = sign_in_code(&glue, &client).await;
    let tokens = client
        .exchange_code(code)
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&glue.client())
        .await
        .unwrap();
    assert_eq!(
        glue.nonce_round_trips.load(Ordering::SeqCst),
        1,
        "the first proof had no nonce; the IdP asked for one"
    );
    // RFC 6749 §7.1: the type is case-insensitive (the library lowercases it).
    assert!(tokens.token_type().as_ref().eq_ignore_ascii_case("DPoP"));
    let access_token = tokens.access_token().clone();
    assert_eq!(
        payload(access_token.secret())["cnf"]["jkt"],
        glue.key.jkt().as_str()
    );
    let algs = metadata.id_token_signing_alg_values_supported().clone();
    let id_token_verifier = client.id_token_verifier().set_allowed_algs(algs);
    let claims = tokens
        .id_token()
        .expect("an ID token for scope openid")
        .claims(&id_token_verifier, &nonce)
        .unwrap();
    assert_eq!(claims.subject().as_str(), "alice");

    let userinfo: CoreUserInfoClaims = client
        .user_info(access_token.clone(), Some(claims.subject().clone()))
        .unwrap()
        .request_async(&glue.client())
        .await
        .unwrap();
    assert_eq!(userinfo.subject().as_str(), "alice");

    let api = format!("{}/api/me", servers.rp_url);
    let (status, body) = glue.api(&api, &access_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"], "alice");
    assert_eq!(body["bound_by"], "dpop");

    let refresh_token = tokens.refresh_token().expect("a refresh token").clone();
    let refreshed = client
        .exchange_refresh_token(&refresh_token)
        .unwrap()
        .request_async(&glue.client())
        .await
        .unwrap();
    assert!(refreshed.token_type().as_ref().eq_ignore_ascii_case("DPoP"));
    assert_eq!(
        payload(refreshed.access_token().secret())["cnf"]["jkt"],
        glue.key.jkt().as_str()
    );
    let (status, body) = glue.api(&api, refreshed.access_token()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn what_a_thief_takes_from_the_app_is_refused() {
    let servers = tokbind_demo::start_in_process().await.unwrap();
    let glue = Glue::new(&servers, DpopKey::generate().unwrap());
    let (client, _) = discover(&servers, &glue).await;
    let (code, verifier, _) = sign_in_code(&glue, &client).await;
    let tokens = client
        .exchange_code(code)
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&glue.client())
        .await
        .unwrap();
    let access_token = tokens.access_token().clone();
    let refresh_token = tokens.refresh_token().unwrap().clone();

    // Mallory runs the same library and glue with her own key.
    let mallory = Glue::new(&servers, DpopKey::generate().unwrap());
    let api = format!("{}/api/me", servers.rp_url);
    let (status, body) = mallory.api(&api, &access_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["reason"], "binding_mismatch");
    assert!(!body.to_string().contains("alice"), "{body}");

    let stolen: Result<CoreUserInfoClaims, _> = client
        .user_info(access_token.clone(), None)
        .unwrap()
        .request_async(&mallory.client())
        .await;
    match stolen {
        Err(UserInfoError::Response(status, body, _)) => {
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert!(!String::from_utf8_lossy(&body).contains("alice"));
        }
        other => panic!("userinfo with a stolen token: {other:?}"),
    }

    match client
        .exchange_refresh_token(&refresh_token)
        .unwrap()
        .request_async(&mallory.client())
        .await
    {
        Err(RequestTokenError::ServerResponse(e)) => {
            assert_eq!(e.error().as_ref(), "invalid_grant");
        }
        other => panic!("refresh with a stolen refresh token: {other:?}"),
    }

    // Sent as a bearer token, with no proof at all.
    let response = glue
        .http
        .get(&api)
        .bearer_auth(access_token.secret())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let www = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(www.contains("error=\"invalid_token\""), "{www}");
    assert!(!response.text().await.unwrap().contains("alice"));

    // A proof by the app's key that does not name the token (no ath): it could have been
    // made for any token, so it proves nothing about this one (RFC 9449 §7.1).
    let userinfo = format!("{}/userinfo", servers.idp_url);
    let unrelated = glue.key.proof("GET", &userinfo, None, None);
    let response = glue
        .http
        .get(&userinfo)
        .header(AUTHORIZATION, format!("DPoP {}", access_token.secret()))
        .header(DPOP, unrelated)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let www = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(www.contains("error=\"invalid_dpop_proof\""), "{www}");
    assert_eq!(body_json(response).await["reason"], "dpop_ath_missing");

    // A proof the app used, replayed with its token.
    let proof = glue
        .key
        .proof("GET", &api, Some(access_token.secret()), None);
    let send = || {
        glue.http
            .get(&api)
            .header(AUTHORIZATION, format!("DPoP {}", access_token.secret()))
            .header(DPOP, &proof)
            .send()
    };
    assert_eq!(send().await.unwrap().status(), StatusCode::OK);
    let replayed = send().await.unwrap();
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
    let www = replayed.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(www.contains("error=\"invalid_dpop_proof\""), "{www}");
    let body: Value = body_json(replayed).await;
    assert_eq!(body["reason"], "dpop_replay");
}

#[tokio::test]
async fn the_code_is_bound_by_pkce_and_the_token_request_by_the_servers_nonce() {
    let servers = tokbind_demo::start_in_process().await.unwrap();
    let glue = Glue::new(&servers, DpopKey::generate().unwrap());
    let (client, _) = discover(&servers, &glue).await;

    // Another verifier than the challenge's: invalid_grant, and the code is spent.
    let (code, _, _) = sign_in_code(&glue, &client).await;
    let result = client
        .exchange_code(code)
        .unwrap()
        .set_pkce_verifier(PkceCodeVerifier::new("x".repeat(43)))
        .request_async(&glue.client())
        .await;
    match result {
        Err(RequestTokenError::ServerResponse(e)) => {
            assert_eq!(e.error().as_ref(), "invalid_grant")
        }
        other => panic!("wrong verifier: {other:?}"),
    }

    // A client without Token Binding must use PKCE; `plain` is not taken.
    let (url, _, _) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .url();
    let query = authorize(&glue.http, &url).await;
    assert_eq!(param(&query, "error"), Some("invalid_request"));
    assert_eq!(param(&query, "code"), None);
    let mut plain = url.clone();
    plain
        .query_pairs_mut()
        .append_pair("code_challenge", &"p".repeat(43))
        .append_pair("code_challenge_method", "plain");
    let query = authorize(&glue.http, &plain).await;
    assert_eq!(param(&query, "error"), Some("invalid_request"));

    // A proof without the server's nonce is refused with use_dpop_nonce and a nonce, and
    // the code survives it; a proof for another URL is refused outright.
    let (code, verifier, _) = sign_in_code(&glue, &client).await;
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code.secret())
        .append_pair("redirect_uri", APP_REDIRECT_URI)
        .append_pair("client_id", APP_CLIENT_ID)
        .append_pair("code_verifier", verifier.secret())
        .finish();
    let token_request = |proof: String| {
        glue.http
            .post(&glue.token_endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header(DPOP, proof)
            .body(form.clone())
            .send()
    };
    let res = token_request(glue.key.proof("POST", &glue.token_endpoint, None, None))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let nonce = res.headers()[DPOP_NONCE].to_str().unwrap().to_string();
    let body: Value = body_json(res).await;
    assert_eq!(body["error"], "use_dpop_nonce");
    let elsewhere = format!("{}/userinfo", servers.idp_url);
    let res = token_request(glue.key.proof("POST", &elsewhere, None, Some(&nonce)))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = body_json(res).await;
    assert_eq!(body["error"], "invalid_dpop_proof");
    let res = token_request(
        glue.key
            .proof("POST", &glue.token_endpoint, None, Some(&nonce)),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = body_json(res).await;
    assert_eq!(body["token_type"], "DPoP");
}

#[tokio::test]
async fn a_code_bound_with_dpop_jkt_is_redeemed_only_with_that_key() {
    // RFC 9449 §10: the authorization request names the key; the code goes to the
    // token endpoint with another key's proof.
    let servers = tokbind_demo::start_in_process().await.unwrap();
    let glue = Glue::new(&servers, DpopKey::generate().unwrap());
    let (client, _) = discover(&servers, &glue).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, _) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .add_extra_param("dpop_jkt", DpopKey::generate().unwrap().jkt())
        .url();
    let query = authorize(&glue.http, &url).await;
    let code = AuthorizationCode::new(param(&query, "code").unwrap().to_string());
    match client
        .exchange_code(code)
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&glue.client())
        .await
    {
        Err(RequestTokenError::ServerResponse(e)) => {
            assert_eq!(e.error().as_ref(), "invalid_dpop_proof")
        }
        other => panic!("a code bound to another key: {other:?}"),
    }
}

#[tokio::test]
async fn discovery_names_what_todays_clients_need() {
    let servers = tokbind_demo::start_in_process().await.unwrap();
    let http = http_client(&servers);
    let url = format!("{}/.well-known/openid-configuration", servers.idp_url);
    let meta: Value = body_json(http.get(url).send().await.unwrap()).await;
    let iss = &servers.idp_url;
    assert_eq!(meta["issuer"], iss.as_str());
    assert_eq!(meta["userinfo_endpoint"], format!("{iss}/userinfo"));
    assert_eq!(meta["token_endpoint"], format!("{iss}/token"));
    assert_eq!(
        meta["token_endpoint_auth_methods_supported"],
        serde_json::json!(["none"])
    );
    assert_eq!(
        meta["code_challenge_methods_supported"],
        serde_json::json!(["S256", "TB-S256", "referred_tb"])
    );
    assert_eq!(
        meta["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    let algs = meta["dpop_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.contains(&"ES256".into()), "{algs:?}");
    for member in [
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "scopes_supported",
    ] {
        assert!(meta.get(member).is_some(), "{member}");
    }
}

#[tokio::test]
async fn a_code_verifier_for_a_code_issued_without_a_challenge_is_refused() {
    // RFC 9700 §2.1.1: a request that carries a referred Token Binding ID may skip PKCE
    // (its code is bound to that ID), but a code_verifier sent for such a code means
    // someone downgraded the authorization request.
    use bytes::Bytes;
    use http_body_util::Full;
    let servers = tokbind_demo::start_in_process().await.unwrap();
    let rp = tokbind_client::Client::builder()
        .server_verification(servers.verification())
        .max_redirects(0)
        .build()
        .unwrap();
    let redirect_uri = format!("{}/callback", servers.rp_url);
    let mut url = url::Url::parse(&format!("{}/authorize", servers.idp_url)).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", tokbind_demo::CLIENT_ID),
        ("redirect_uri", &redirect_uri),
        ("state", "s"),
    ]);
    let rp_host = url::Url::parse(&servers.rp_url).unwrap();
    let rp_key = rp
        .key_for_host(
            rp_host.host_str().unwrap(),
            tokbind_proto::KeyParameters::ECDSAP256,
        )
        .unwrap();
    let uri: http::Uri = url.as_str().parse().unwrap();
    let mut conn = rp.connect(&uri).await.unwrap();
    let header = conn.header_with_referred(rp_key.as_ref()).unwrap();
    let request = Request::get(uri)
        .header("sec-token-binding", header)
        .body(Full::<Bytes>::default())
        .unwrap();
    let res = conn.send(request).await.unwrap();
    let location = url::Url::parse(res.headers()[LOCATION].to_str().unwrap()).unwrap();
    let query: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    let code = param(&query, "code").expect("a code: the request carries a referred binding");
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &redirect_uri),
            ("client_id", tokbind_demo::CLIENT_ID),
            ("code_verifier", &"v".repeat(43)),
        ])
        .finish();
    let request = Request::post(format!("{}/token", servers.idp_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(form)))
        .unwrap();
    let res = rp.fetch(request).await.unwrap().response;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(body.get("access_token").is_none());
}
