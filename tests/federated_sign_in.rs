//! Federation end to end over real TLS: the full walkthrough, the RFC 8473 §7.3 MITM case,
//! refresh-token binding, and clients without Token Binding — with the IdP and the RP each
//! on its Token Binding listener, and each behind the proxy.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::Deployment;
use http::Request;
use http_body_util::Full;
use serde_json::Value;
use tokbind::client::{Client, KeyStore, MemoryKeyStore};
use tokbind_demo::idp::{self, RegisteredClient};
use tokbind_demo::store::SharedStore;
use tokbind_oauth::TokenIssuer;
use tokbind_tls::{SelfSigned, ServerVerification};

both_deployments!(
    the_whole_walkthrough_behaves,
    a_referred_id_from_anywhere_but_the_clients_own_header_is_not_accepted,
    refresh_tokens_are_bound_to_the_token_request_key,
    a_browser_without_token_binding_cannot_sign_in_to_this_rp,
);

/// The demo's deployment for the suite's (federation needs Token Binding: not over rustls).
fn demo(d: Deployment) -> tokbind_demo::Deployment {
    match d {
        Deployment::Direct => tokbind_demo::Deployment::Direct,
        Deployment::BehindProxy => tokbind_demo::Deployment::BehindProxy,
        Deployment::Rustls => panic!("the federated sign-in needs Token Binding"),
    }
}

fn get(url: &str) -> Request<Full<Bytes>> {
    Request::get(url).body(Full::default()).unwrap()
}

fn form(url: &str, pairs: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    Request::post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn json(res: &http::Response<Bytes>) -> Value {
    serde_json::from_slice(res.body()).unwrap_or(Value::Null)
}

async fn the_whole_walkthrough_behaves(d: Deployment) {
    let servers = tokbind_demo::start_in_process_as(demo(d)).await.unwrap();
    assert!(
        tokbind_demo::flow::walk(&servers.endpoints())
            .await
            .unwrap()
    );
}

async fn a_referred_id_from_anywhere_but_the_clients_own_header_is_not_accepted(d: Deployment) {
    // RFC 8473 §7.3: Mallory starts a sign-in at the RP and sends Alice straight to the
    // IdP's authorization URL (or adds a TBID of her choosing to it). Alice's request to
    // the IdP carries no referred binding, so the IdP issues no referred_tb code.
    let servers = tokbind_demo::start_in_process_as(demo(d)).await.unwrap();
    let mallory = Client::builder()
        .server_verification(servers.verification())
        .max_redirects(0)
        .build()
        .unwrap();
    let redirect = mallory
        .fetch(get(&format!("{}/login", servers.rp_url)))
        .await
        .unwrap()
        .response;
    let authorize = redirect.headers()["location"].to_str().unwrap().to_string();
    let mallory_rp_key = mallory
        .keys()
        .key_for(&servers.rp_url, tokbind::proto::KeyParameters::ECDSAP256)
        .unwrap();
    let lure = format!(
        "{authorize}&referred_tbid={}",
        tokbind::proto::TokenBindingSigner::token_binding_id(mallory_rp_key.as_ref())
    );

    let alice = Client::builder()
        .server_verification(servers.verification())
        .cookie_store(true)
        .build()
        .unwrap();
    let fetched = alice.fetch(get(&lure)).await.unwrap();
    assert_eq!(
        fetched.hops[0].referred, None,
        "Alice sent no referred binding"
    );
    let callback = &fetched.hops[1].uri.to_string();
    assert!(callback.contains("error=invalid_request"), "{callback}");
    assert!(
        !callback.contains("code="),
        "no code was issued: {callback}"
    );
    assert_eq!(fetched.response.status(), 400);
}

async fn refresh_tokens_are_bound_to_the_token_request_key(d: Deployment) {
    // An IdP on its own; this test plays the RP's back channel.
    let cert = SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let idp_url = format!("https://{}", listener.local_addr().unwrap());
    let redirect_uri = "https://rp.example/callback";
    let client = RegisteredClient {
        client_id: "rp".into(),
        redirect_uri: redirect_uri.into(),
        api_audience: "rp-api".into(),
    };
    let app = idp::routes(
        TokenIssuer::generate(idp_url.clone()).unwrap(),
        vec![client],
        SharedStore::memory(),
        idp::fresh_nonces(),
    );
    tokbind_demo::serve(demo(d), listener, &cert, app)
        .await
        .unwrap();
    let roots = ServerVerification::Roots(cert.cert_pem.clone());
    let new_client = || {
        Client::builder()
            .server_verification(roots.clone())
            .keys(Arc::new(MemoryKeyStore::default()) as Arc<dyn KeyStore>)
            .max_redirects(0)
            .build()
            .unwrap()
    };

    let rp = new_client();
    // No referred binding here, so the code needs PKCE (RFC 9700 §2.1.1).
    let verifier = "v".repeat(43);
    let challenge = tokbind_oauth::pkce::s256_challenge(&verifier);
    let authorize = format!(
        "{idp_url}/authorize?response_type=code&client_id=rp&redirect_uri={redirect_uri}&state=s&nonce=n&code_challenge={challenge}&code_challenge_method=S256"
    );
    let res = rp.fetch(get(&authorize)).await.unwrap().response;
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    let tokens = json(
        &rp.fetch(form(
            &format!("{idp_url}/token"),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", "rp"),
                ("redirect_uri", redirect_uri),
                ("code_verifier", &verifier),
            ],
        ))
        .await
        .unwrap()
        .response,
    );
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    // Without a referred binding the ID token is unbound — never an error (RFC 8473 §5.4).
    let id_claims = tokens["id_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_string();
    let id_claims: Value =
        serde_json::from_slice(&tokbind::proto::base64url::decode(id_claims.as_bytes()).unwrap())
            .unwrap();
    assert!(id_claims.get("cnf").is_none(), "{id_claims}");

    let refresh_req = || {
        form(
            &format!("{idp_url}/token"),
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
    };
    let ok = rp.fetch(refresh_req()).await.unwrap().response;
    assert_eq!(ok.status(), 200, "{:?}", ok.body());
    assert!(json(&ok)["access_token"].is_string());

    let thief = new_client();
    let stolen = thief.fetch(refresh_req()).await.unwrap().response;
    assert_eq!(stolen.status(), 400);
    assert_eq!(json(&stolen)["error"], "invalid_grant");

    // And the code was single-use.
    let again = json(
        &rp.fetch(form(
            &format!("{idp_url}/token"),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", "rp"),
                ("redirect_uri", redirect_uri),
                ("code_verifier", &verifier),
            ],
        ))
        .await
        .unwrap()
        .response,
    );
    assert_eq!(again["error"], "invalid_grant");

    // Introspection (RFC 7662 with cnf): the access token is active; garbage is not.
    let at = tokens["access_token"].as_str().unwrap();
    let active = json(
        &rp.fetch(form(&format!("{idp_url}/introspect"), &[("token", at)]))
            .await
            .unwrap()
            .response,
    );
    assert_eq!(active["active"], true);
    assert_eq!(active["sub"], "alice");
    assert!(
        active.get("cnf").is_none(),
        "unbound: the authorization request had no referred binding"
    );
    let inactive = json(
        &rp.fetch(form(
            &format!("{idp_url}/introspect"),
            &[("token", "garbage")],
        ))
        .await
        .unwrap()
        .response,
    );
    assert_eq!(inactive, serde_json::json!({"active": false}));

    // Discovery advertises the Token Binding members.
    let meta = json(
        &rp.fetch(get(&format!("{idp_url}/.well-known/openid-configuration")))
            .await
            .unwrap()
            .response,
    );
    assert_eq!(
        meta["id_token_token_binding_cnf_values_supported"],
        serde_json::json!(["tbh"])
    );
    assert_eq!(
        meta["code_challenge_methods_supported"],
        serde_json::json!(["S256", "TB-S256", "referred_tb"])
    );
}

async fn a_browser_without_token_binding_cannot_sign_in_to_this_rp(d: Deployment) {
    // The RP requires Token Binding for sign-in (its policy is `required`); the IdP still
    // answers, with a code that cannot satisfy referred_tb.
    let servers = tokbind_demo::start_in_process_as(demo(d)).await.unwrap();
    let plain = Client::builder()
        .server_verification(servers.verification())
        .cookie_store(true)
        .tls(|b| b.offer_token_binding(false))
        .build()
        .unwrap();
    let fetched = plain
        .fetch(get(&format!("{}/login", servers.rp_url)))
        .await
        .unwrap();
    assert!(
        !fetched.response.status().is_success(),
        "{:?}",
        fetched.response
    );
    assert_eq!(fetched.hops[1].referred, None);
    let callback = fetched.hops[2].uri.to_string();
    assert!(
        callback.contains("error=invalid_request"),
        "referred_tb without a referred binding: {callback}"
    );
}
