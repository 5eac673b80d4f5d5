//! What a thief gets from an intercepted authorization code, a stolen ID token or a forged
//! proof: nothing the RP's API or sign-in accepts. Each attack runs against the demo IdP
//! and RP over TLS on loopback, and is judged by what the RP answers.

use std::sync::Arc;

use bytes::Bytes;
use http::header::LOCATION;
use http::{Request, StatusCode};
use http_body_util::Full;
use openidconnect::reqwest;
use serde_json::Value;
use tokbind_client::{Client, KeyStore, MemoryKeyStore};
use tokbind_demo::{APP_CLIENT_ID, APP_REDIRECT_URI, CLIENT_ID, InProcess};
use tokbind_dpop::{DPOP, DPOP_NONCE, DpopKey};
use tokbind_oauth::pkce;
use tokbind_proto::KeyParameters;

/// A client with no Token Binding (the thief's, or an ordinary OAuth library's).
fn plain(servers: &InProcess) -> reqwest::Client {
    let mut b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    for cert in reqwest::Certificate::from_pem_bundle(&servers.roots).unwrap() {
        b = b.add_root_certificate(cert);
    }
    b.build().unwrap()
}

/// A Token Binding client with keys of its own, following no redirects.
fn token_binding(servers: &InProcess) -> Client {
    Client::builder()
        .server_verification(servers.verification())
        .keys(Arc::new(MemoryKeyStore::default()) as Arc<dyn KeyStore>)
        .max_redirects(0)
        .build()
        .unwrap()
}

fn claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&tokbind_proto::base64url::decode(part.as_bytes()).unwrap()).unwrap()
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn query_param(location: &str, name: &str) -> Option<String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn json_of(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A token request signed by `key`, sent again with the server's nonce when asked
/// (RFC 9449 §8).
async fn dpop_token(
    c: &reqwest::Client,
    idp: &str,
    key: &DpopKey,
    body: &str,
) -> (StatusCode, Value) {
    let endpoint = format!("{idp}/token");
    let mut nonce = None;
    loop {
        let res = c
            .post(&endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header(DPOP, key.proof("POST", &endpoint, None, nonce.as_deref()))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let offered = res
            .headers()
            .get(DPOP_NONCE)
            .map(|v| v.to_str().unwrap().to_string());
        let (status, json) = json_of(res).await;
        if json["error"] == "use_dpop_nonce" && nonce.is_none() {
            nonce = offered;
            continue;
        }
        return (status, json);
    }
}

/// Alice's authorization request for the RP, carrying her referred Token Binding ID (the
/// one she uses with the RP) but no PKCE: the RP's login URL with its challenge stripped.
/// The code it yields.
async fn referred_code_without_pkce(servers: &InProcess) -> String {
    let alice = token_binding(servers);
    let rp_host = url::Url::parse(&servers.rp_url)
        .unwrap()
        .host_str()
        .unwrap()
        .to_string();
    let rp_key = alice
        .key_for_host(&rp_host, KeyParameters::ECDSAP256)
        .unwrap();
    let mut url = url::Url::parse(&format!("{}/authorize", servers.idp_url)).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", &format!("{}/callback", servers.rp_url)),
        ("state", "s"),
        ("nonce", "n"),
    ]);
    let uri: http::Uri = url.as_str().parse().unwrap();
    let mut conn = alice.connect(&uri).await.unwrap();
    let header = conn.header_with_referred(rp_key.as_ref()).unwrap();
    let req = Request::get(uri)
        .header("sec-token-binding", header)
        .body(Full::<Bytes>::default())
        .unwrap();
    let res = conn.send(req).await.unwrap();
    let location = res.headers()[LOCATION].to_str().unwrap();
    query_param(location, "code").unwrap_or_else(|| panic!("a code: {location}"))
}

#[tokio::test]
async fn a_request_with_neither_pkce_nor_a_referred_binding_gets_no_code() {
    // A Token Binding client for itself only (no referred ID) and no PKCE: its code would
    // be bound to nothing, so whoever intercepts it would redeem it (RFC 9700 §2.1.1).
    let servers = tokbind_demo::start_in_process().await.unwrap();
    let mut url = url::Url::parse(&format!("{}/authorize", servers.idp_url)).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", APP_CLIENT_ID),
        ("redirect_uri", APP_REDIRECT_URI),
        ("state", "s"),
        ("scope", "openid profile"),
    ]);
    let req = Request::get(url.as_str())
        .body(Full::<Bytes>::default())
        .unwrap();
    let res = token_binding(&servers).fetch(req).await.unwrap().response;
    let location = res.headers()[LOCATION].to_str().unwrap();
    assert_eq!(query_param(location, "code"), None, "{location}");
    assert_eq!(
        query_param(location, "error").as_deref(),
        Some("invalid_request")
    );
}

#[tokio::test]
async fn a_referred_code_stolen_without_pkce_gives_the_thief_nothing_usable() {
    let servers = tokbind_demo::start_in_process().await.unwrap();
    let redirect_uri = format!("{}/callback", servers.rp_url);
    let redeem = [
        ("grant_type", "authorization_code"),
        ("redirect_uri", redirect_uri.as_str()),
        ("client_id", CLIENT_ID),
    ];

    // With her own DPoP key: refused, the code's binding cannot be swapped for hers.
    let code = referred_code_without_pkce(&servers).await;
    let mallory = plain(&servers);
    let key = DpopKey::generate().unwrap();
    let body = form(&[redeem.as_slice(), &[("code", code.as_str())]].concat());
    let (status, json) = dpop_token(&mallory, &servers.idp_url, &key, &body).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(json.get("access_token").is_none(), "{json}");

    // Without a proof: the tokens are bound to Alice's ID, which Mallory cannot prove.
    let code = referred_code_without_pkce(&servers).await;
    let body = form(&[redeem.as_slice(), &[("code", code.as_str())]].concat());
    let res = mallory
        .post(format!("{}/token", servers.idp_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, tokens) = json_of(res).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access_token = tokens["access_token"].as_str().unwrap();
    assert!(claims(access_token)["cnf"]["tbh"].is_string(), "{tokens}");
    let res = mallory
        .get(format!("{}/api/me", servers.rp_url))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let (status, json) = json_of(res).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{json}");
    assert_ne!(json["user"], "alice");
}

#[tokio::test]
async fn a_referred_tb_code_redeemed_with_a_thiefs_dpop_key_is_refused() {
    // The RP's own login: referred_tb PKCE, whose verifier is Alice's Token Binding ID for
    // the RP — a public key, which Mallory may know.
    let servers = tokbind_demo::start_in_process().await.unwrap();
    let alice = Client::builder()
        .server_verification(servers.verification())
        .keys(Arc::new(MemoryKeyStore::default()) as Arc<dyn KeyStore>)
        .cookie_store(true)
        .max_redirects(1)
        .build()
        .unwrap();
    let req = Request::get(format!("{}/login", servers.rp_url))
        .body(Full::<Bytes>::default())
        .unwrap();
    let fetched = alice.fetch(req).await.unwrap();
    assert!(fetched.hops[1].referred.is_some());
    let location = fetched.response.headers()[LOCATION].to_str().unwrap();
    let code = query_param(location, "code").unwrap();
    let host = url::Url::parse(&servers.rp_url)
        .unwrap()
        .host_str()
        .unwrap()
        .to_string();
    let alice_rp_id = alice
        .key_for_host(&host, KeyParameters::ECDSAP256)
        .unwrap()
        .token_binding_id()
        .clone();

    let key = DpopKey::generate().unwrap();
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &format!("{}/callback", servers.rp_url)),
        ("client_id", CLIENT_ID),
        ("code_verifier", &pkce::referred_tb_verifier(&alice_rp_id)),
    ]);
    let (status, json) = dpop_token(&plain(&servers), &servers.idp_url, &key, &body).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(json.get("access_token").is_none() && json.get("refresh_token").is_none());
}

#[tokio::test]
async fn an_unbound_id_token_signs_no_one_in_at_the_rp() {
    // An ID token from a DPoP exchange carries no Token Binding: anyone who has seen it
    // could present it, so the RP's ID-token sign-in refuses it.
    let servers = tokbind_demo::start_in_process().await.unwrap();
    let c = plain(&servers);
    let verifier = "w".repeat(50);
    let redirect_uri = format!("{}/callback", servers.rp_url);
    let mut url = url::Url::parse(&format!("{}/authorize", servers.idp_url)).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", &redirect_uri),
        ("nonce", "n"),
        ("code_challenge", &pkce::s256_challenge(&verifier)),
        ("code_challenge_method", "S256"),
    ]);
    let res = c.get(url.as_str()).send().await.unwrap();
    let code = query_param(res.headers()[LOCATION].to_str().unwrap(), "code").unwrap();
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &redirect_uri),
        ("client_id", CLIENT_ID),
        ("code_verifier", &verifier),
    ]);
    let (status, tokens) =
        dpop_token(&c, &servers.idp_url, &DpopKey::generate().unwrap(), &body).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id_token = tokens["id_token"].as_str().unwrap();
    let res = plain(&servers)
        .get(format!("{}/login/id_token", servers.rp_url))
        .query(&[("id_token", id_token)])
        .send()
        .await
        .unwrap();
    let (status, json) = json_of(res).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{json}");
    assert!(json.get("user").is_none(), "{json}");
}

#[tokio::test]
async fn a_refresh_token_is_refused_to_another_client() {
    let servers = tokbind_demo::start_in_process().await.unwrap();
    let c = plain(&servers);
    let verifier = "v".repeat(50);
    let mut url = url::Url::parse(&format!("{}/authorize", servers.idp_url)).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", APP_CLIENT_ID),
        ("redirect_uri", APP_REDIRECT_URI),
        ("scope", "openid"),
        ("code_challenge", &pkce::s256_challenge(&verifier)),
        ("code_challenge_method", "S256"),
    ]);
    let res = c.get(url.as_str()).send().await.unwrap();
    let code = query_param(res.headers()[LOCATION].to_str().unwrap(), "code").unwrap();
    let key = DpopKey::generate().unwrap();
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", APP_REDIRECT_URI),
        ("client_id", APP_CLIENT_ID),
        ("code_verifier", &verifier),
    ]);
    let (status, tokens) = dpop_token(&c, &servers.idp_url, &key, &body).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    for (client_id, expected) in [
        (CLIENT_ID, StatusCode::BAD_REQUEST),
        (APP_CLIENT_ID, StatusCode::OK),
    ] {
        let body = form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
        ]);
        let (status, json) = dpop_token(&c, &servers.idp_url, &key, &body).await;
        assert_eq!(status, expected, "{client_id}: {json}");
    }
}

#[tokio::test]
async fn a_proof_naming_a_claim_twice_is_refused() {
    // RFC 7515 §4: `htu` (or `nonce`) given twice means whatever the reader picks; the
    // verifier refuses the proof instead.
    let servers = tokbind_demo::start_in_process().await.unwrap();
    let c = plain(&servers);
    let endpoint = format!("{}/token", servers.idp_url);
    let key = DpopKey::generate().unwrap();
    let probe = c
        .post(&endpoint)
        .header(DPOP, key.proof("POST", &endpoint, None, None))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=none")
        .send()
        .await
        .unwrap();
    let nonce = probe.headers()[DPOP_NONCE].to_str().unwrap().to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let once =
        format!(r#"{{"jti":"a0","htm":"POST","htu":"{endpoint}","iat":{now},"nonce":"{nonce}"}}"#);
    for (claims, accepted) in [
        (once, true),
        (
            format!(
                r#"{{"jti":"a1","htm":"GET","htu":"https://evil.example/token","iat":{now},"nonce":"{nonce}","htm":"POST","htu":"{endpoint}"}}"#
            ),
            false,
        ),
        (
            format!(
                r#"{{"jti":"a2","htm":"POST","htu":"{endpoint}","iat":{now},"nonce":"bogus","nonce":"{nonce}"}}"#
            ),
            false,
        ),
    ] {
        let res = c
            .post(&endpoint)
            .header(DPOP, key.proof_with_claims(&claims))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=none")
            .send()
            .await
            .unwrap();
        let (status, json) = json_of(res).await;
        // A proof that passes reaches the grant type, which no server knows.
        let passed = json["error"] == "unsupported_grant_type";
        assert_eq!(passed, accepted, "{claims}: {status} {json}");
        if !accepted {
            assert_eq!(json["error"], "invalid_dpop_proof", "{claims}");
        }
    }
}
