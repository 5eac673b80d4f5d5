//! The walkthrough: Alice signs in through the IdP and uses what she got; Mallory, with her
//! own key, tries everything she stole. Twice: in a browser with Token Binding, and in a
//! native app with DPoP (RFC 9449). Prints a transcript.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Full;
use serde_json::Value;
use tokbind_client::{Client, Fetched, KeyStore, MemoryKeyStore};
use tokbind_dpop::DpopKey;
use tokbind_oauth::{pkce, random_token};
use tokbind_proto::{KeyParameters, base64url};
use tokbind_tls::ServerVerification;

use crate::{APP_CLIENT_ID, APP_REDIRECT_URI, Error};

/// Where the two parties are and how to trust them.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The RP's base URL.
    pub rp: String,
    /// The IdP's base URL.
    pub idp: String,
    /// How the browser checks both servers.
    pub verification: ServerVerification,
}

struct Transcript {
    failures: usize,
}

impl Transcript {
    fn check(&mut self, what: &str, ok: bool, detail: impl std::fmt::Display) {
        println!("  [{}] {what}: {detail}", if ok { " ok " } else { "FAIL" });
        self.failures += usize::from(!ok);
    }
}

fn get(url: &str, header: Option<(&str, &str)>) -> Result<Request<Full<Bytes>>, Error> {
    let mut b = Request::get(url);
    if let Some((k, v)) = header {
        b = b.header(k, v);
    }
    Ok(b.body(Full::default())?)
}

/// A request with `headers`, and with `form` as its urlencoded body if given (then POST).
fn request(
    url: &str,
    headers: &[(&str, &str)],
    form: Option<&[(&str, &str)]>,
) -> Result<Request<Full<Bytes>>, Error> {
    let mut b = Request::builder()
        .method(if form.is_some() { "POST" } else { "GET" })
        .uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let body = match form {
        Some(pairs) => {
            b = b.header("content-type", "application/x-www-form-urlencoded");
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
        }
        None => String::new(),
    };
    Ok(b.body(Full::new(Bytes::from(body)))?)
}

fn json(res: &Response<Bytes>) -> Value {
    serde_json::from_slice(res.body()).unwrap_or(Value::Null)
}

fn status_reason(res: &Response<Bytes>) -> String {
    let body = json(res);
    format!(
        "{} {}",
        res.status().as_u16(),
        body["reason"]
            .as_str()
            .or(body["error"].as_str())
            .unwrap_or("-")
    )
}

/// The claims of a JWT, unverified (for display only).
fn payload(jwt: &str) -> Value {
    jwt.split('.')
        .nth(1)
        .and_then(|p| base64url::decode(p.as_bytes()).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

fn short(s: &str) -> String {
    s.chars().take(12).collect::<String>() + "…"
}

fn print_hops(fetched: &Fetched) {
    for hop in &fetched.hops {
        let path = hop.uri.path_and_query().map_or("/", |p| p.as_str());
        let path: String = path.chars().take(60).collect();
        println!(
            "    {} {}{}  ->  {}{}",
            hop.uri.authority().map_or("", |a| a.as_str()),
            path,
            if path.len() >= 60 { "…" } else { "" },
            hop.status.as_u16(),
            if hop.include_referred {
                "  [Include-Referred-Token-Binding-ID: true]"
            } else {
                ""
            },
        );
        println!(
            "        provided tbh {}{}",
            hop.provided.map_or("-".into(), |t| short(&t.to_string())),
            hop.referred.map_or(String::new(), |t| format!(
                "   referred tbh {}",
                short(&t.to_string())
            )),
        );
    }
}

/// Run the whole story; `Ok(true)` when every step behaved as expected.
pub async fn walk(e: &Endpoints) -> Result<bool, Error> {
    let mut t = Transcript { failures: 0 };
    let alice_keys: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::default());
    let browser = |keys: &Arc<dyn KeyStore>, max_redirects: usize| {
        Client::builder()
            .server_verification(e.verification.clone())
            .keys(Arc::clone(keys))
            .cookie_store(true)
            .max_redirects(max_redirects)
            .build()
    };
    let alice = browser(&alice_keys, 10)?;

    println!("1. Alice signs in at the RP (OIDC code flow, referred_tb PKCE)");
    let fetched = alice.fetch(get(&format!("{}/login", e.rp), None)?).await?;
    print_hops(&fetched);
    let alice_rp = alice
        .key_for_host(&host(&e.rp)?, KeyParameters::ECDSAP256)?
        .token_binding_id()
        .tbh();
    let hops = &fetched.hops;
    t.check(
        "the RP's redirect asked for a referred binding",
        hops.first().is_some_and(|h| h.include_referred),
        "Include-Referred-Token-Binding-ID: true",
    );
    let at_idp = hops.get(1);
    t.check(
        "the IdP got Alice's RP key as the referred binding",
        at_idp.is_some_and(|h| {
            h.referred == Some(alice_rp) && h.provided.is_some() && h.provided != Some(alice_rp)
        }),
        format!("referred tbh {}", short(&alice_rp.to_string())),
    );
    t.check(
        "only for that hop",
        hops.iter().skip(2).all(|h| h.referred.is_none()),
        "no referred binding afterwards",
    );
    let page = json(&fetched.response);
    t.check(
        "signed in",
        fetched.response.status() == 200 && page["user"] == "alice",
        status_reason(&fetched.response),
    );
    let id_token = page["id_token"].as_str().unwrap_or_default().to_string();
    let access_token = page["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let cnf = payload(&id_token)["cnf"]["tbh"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    t.check(
        "ID token bound to Alice's RP key",
        cnf == alice_rp.to_string(),
        format!("cnf.tbh {}", short(&cnf)),
    );
    let at_cnf = payload(&access_token)["cnf"]["tbh"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    t.check(
        "access token bound to Alice's RP key",
        at_cnf == alice_rp.to_string(),
        format!("cnf.tbh {}", short(&at_cnf)),
    );
    let protected: Uri = format!("{}/protected", e.rp).parse()?;
    let cookie = alice
        .cookies_for(&protected)
        .map(|c| c.to_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    t.check(
        "session cookie bound to Alice's RP key",
        cookie.contains("~tb1."),
        short(&cookie).to_string(),
    );

    println!("\n2. Alice uses what she got, on new connections");
    let res = alice
        .fetch(get(&format!("{}/protected", e.rp), None)?)
        .await?
        .response;
    t.check("session cookie", res.status() == 200, status_reason(&res));
    let bearer = format!("Bearer {access_token}");
    let res = alice
        .fetch(get(
            &format!("{}/api/me", e.rp),
            Some(("authorization", &bearer)),
        )?)
        .await?
        .response;
    t.check(
        "access token at the RP's API",
        res.status() == 200 && json(&res)["bound"] == true,
        status_reason(&res),
    );
    let res = alice
        .fetch(get(
            &format!("{}/login/id_token?id_token={id_token}", e.rp),
            None,
        )?)
        .await?
        .response;
    t.check(
        "ID token presented directly",
        res.status() == 200,
        status_reason(&res),
    );

    println!("\n3. Mallory, with her own key, uses what she stole");
    let mallory = browser(
        &(Arc::new(MemoryKeyStore::default()) as Arc<dyn KeyStore>),
        10,
    )?;
    let res = mallory
        .fetch(get(
            &format!("{}/protected", e.rp),
            Some(("cookie", &cookie)),
        )?)
        .await?
        .response;
    t.check(
        "stolen session cookie",
        res.status() == 401,
        status_reason(&res),
    );
    let res = mallory
        .fetch(get(
            &format!("{}/login/id_token?id_token={id_token}", e.rp),
            None,
        )?)
        .await?
        .response;
    t.check(
        "stolen ID token",
        res.status() == 401 && json(&res)["reason"] == "binding_mismatch",
        status_reason(&res),
    );
    let res = mallory
        .fetch(get(
            &format!("{}/api/me", e.rp),
            Some(("authorization", &bearer)),
        )?)
        .await?
        .response;
    t.check(
        "stolen access token",
        res.status() == 401 && json(&res)["reason"] == "binding_mismatch",
        status_reason(&res),
    );

    // Alice starts another sign-in; Mallory intercepts the redirect back to the RP (the
    // authorization code and state) and delivers it herself.
    let alice_stops_at_idp = browser(&alice_keys, 1)?;
    let halfway = alice_stops_at_idp
        .fetch(get(&format!("{}/login", e.rp), None)?)
        .await?
        .response;
    let callback = halfway
        .headers()
        .get(http::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let res = mallory.fetch(get(&callback, None)?).await?.response;
    t.check(
        "intercepted authorization code",
        res.status() == 401 && json(&res)["reason"] == "invalid_grant",
        status_reason(&res),
    );

    walk_dpop(e, &mut t).await?;

    println!();
    if t.failures == 0 {
        println!("every step behaved as expected");
    } else {
        println!("{} step(s) did not behave as expected", t.failures);
    }
    Ok(t.failures == 0)
}

/// The native app: a public client with no Token Binding of its own to rely on. It signs
/// in with the authorization code flow and S256 PKCE, and binds its tokens to a DPoP key;
/// then Mallory, with her own DPoP key, tries what she stole.
async fn walk_dpop(e: &Endpoints, t: &mut Transcript) -> Result<(), Error> {
    println!("\n4. Alice signs in with a native app (S256 PKCE, DPoP-bound tokens)");
    let app = Client::builder()
        .server_verification(e.verification.clone())
        .max_redirects(0)
        .build()?;
    let key = DpopKey::generate()?;
    let (verifier, state, nonce) = (random_token(), random_token(), random_token());
    let mut authorize = url::Url::parse(&format!("{}/authorize", e.idp))?;
    authorize.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", APP_CLIENT_ID),
        ("redirect_uri", APP_REDIRECT_URI),
        ("scope", "openid profile"),
        ("state", &state),
        ("nonce", &nonce),
        ("code_challenge", &pkce::s256_challenge(&verifier)),
        ("code_challenge_method", pkce::S256),
    ]);
    let res = app.fetch(get(authorize.as_str(), None)?).await?.response;
    let location = res
        .headers()
        .get(http::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| url::Url::parse(l).ok());
    let param = |name: &str| {
        location.as_ref().and_then(|l| {
            l.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        })
    };
    let code = param("code").unwrap_or_default();
    t.check(
        "authorization code, redirected to the app with its state",
        res.status().is_redirection() && !code.is_empty() && param("state") == Some(state),
        res.status().as_u16(),
    );

    let token_url = format!("{}/token", e.idp);
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", APP_REDIRECT_URI),
        ("client_id", APP_CLIENT_ID),
        ("code_verifier", verifier.as_str()),
    ];
    let token_request = |pairs: &[(&str, &str)], nonce: Option<&str>| {
        let proof = key.proof("POST", &token_url, None, nonce);
        request(&token_url, &[("dpop", &proof)], Some(pairs))
    };
    let res = app.fetch(token_request(&exchange, None)?).await?.response;
    let server_nonce = res
        .headers()
        .get(tokbind_dpop::DPOP_NONCE)
        .and_then(|n| n.to_str().ok())
        .unwrap_or_default()
        .to_string();
    t.check(
        "token request without a nonce: the IdP hands one out",
        res.status() == 400 && json(&res)["error"] == "use_dpop_nonce" && !server_nonce.is_empty(),
        status_reason(&res),
    );
    let res = app
        .fetch(token_request(&exchange, Some(&server_nonce))?)
        .await?
        .response;
    let tokens = json(&res);
    let access_token = tokens["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let refresh_token = tokens["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let jkt = payload(&access_token)["cnf"]["jkt"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    t.check(
        "with the nonce: DPoP-bound access token",
        res.status() == 200 && tokens["token_type"] == "DPoP" && jkt == key.jkt(),
        format!(
            "token_type {}, cnf.jkt {}",
            tokens["token_type"],
            short(&jkt)
        ),
    );
    t.check(
        "ID token for the app, with the app's nonce",
        payload(tokens["id_token"].as_str().unwrap_or_default())["nonce"] == nonce.as_str(),
        "nonce matches",
    );

    let dpop_scheme = format!("DPoP {access_token}");
    // A request presenting the token with a fresh proof by `k` for `url` (with `ath`);
    // the proof is returned too, to be replayed.
    let call = |k: &DpopKey, url: &str| -> Result<(String, Request<Full<Bytes>>), Error> {
        let proof = k.proof("GET", url, Some(&access_token), None);
        let req = request(
            url,
            &[("authorization", &dpop_scheme), ("dpop", &proof)],
            None,
        )?;
        Ok((proof, req))
    };
    let userinfo = format!("{}/userinfo", e.idp);
    let res = app.fetch(call(&key, &userinfo)?.1).await?.response;
    t.check(
        "userinfo with the token and a proof (ath)",
        res.status() == 200 && json(&res)["sub"] == "alice",
        status_reason(&res),
    );
    let api = format!("{}/api/me", e.rp);
    let (used_proof, req) = call(&key, &api)?;
    let res = app.fetch(req).await?.response;
    t.check(
        "the RP's API with the token and a proof",
        res.status() == 200 && json(&res)["bound_by"] == "dpop",
        status_reason(&res),
    );
    // RFC 9449 §7.2: even with a good proof, the token is not a bearer token.
    let proof = key.proof("GET", &api, Some(&access_token), None);
    let bearer = format!("Bearer {access_token}");
    let res = app
        .fetch(request(
            &api,
            &[("authorization", &bearer), ("dpop", &proof)],
            None,
        )?)
        .await?
        .response;
    t.check(
        "the same token sent with the Bearer scheme",
        res.status() == 401 && json(&res)["reason"] == "dpop_token_as_bearer",
        status_reason(&res),
    );
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
    ];
    let res = app
        .fetch(token_request(&refresh, Some(&server_nonce))?)
        .await?
        .response;
    let refreshed = json(&res);
    t.check(
        "refresh, proving the same key",
        res.status() == 200
            && refreshed["token_type"] == "DPoP"
            && payload(refreshed["access_token"].as_str().unwrap_or_default())["cnf"]["jkt"]
                == key.jkt().as_str(),
        status_reason(&res),
    );

    println!("\n5. Mallory, with her own DPoP key, uses what she stole from the app");
    let mallory = Client::builder()
        .server_verification(e.verification.clone())
        .build()?;
    let mallory_key = DpopKey::generate()?;
    let res = mallory.fetch(call(&mallory_key, &api)?.1).await?.response;
    t.check(
        "stolen access token, with her own key's proof",
        res.status() == 401 && json(&res)["reason"] == "binding_mismatch",
        status_reason(&res),
    );
    let bearer = format!("Bearer {access_token}");
    let res = mallory
        .fetch(request(&api, &[("authorization", &bearer)], None)?)
        .await?
        .response;
    t.check(
        "stolen access token, sent as a bearer token",
        res.status() == 401 && json(&res)["reason"] == "binding_mismatch",
        status_reason(&res),
    );
    let res = mallory
        .fetch(request(
            &api,
            &[("authorization", &dpop_scheme), ("dpop", &used_proof)],
            None,
        )?)
        .await?
        .response;
    t.check(
        "stolen access token with the app's proof, replayed",
        res.status() == 401 && json(&res)["reason"] == "dpop_replay",
        status_reason(&res),
    );
    let proof = mallory_key.proof("POST", &token_url, None, Some(&server_nonce));
    let res = mallory
        .fetch(request(&token_url, &[("dpop", &proof)], Some(&refresh))?)
        .await?
        .response;
    t.check(
        "stolen refresh token, with her own key's proof",
        res.status() == 400 && json(&res)["error"] == "invalid_grant",
        status_reason(&res),
    );
    Ok(())
}

fn host(url: &str) -> Result<String, Error> {
    let uri: Uri = url.parse()?;
    Ok(uri.host().ok_or("URL without host")?.to_string())
}
