//! The walkthrough: Alice signs in through the IdP and uses what she got; Mallory, with her
//! own key, tries everything she stole. Prints a transcript.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Full;
use serde_json::Value;
use tokbind_client::{Client, Fetched, KeyStore, MemoryKeyStore};
use tokbind_proto::{KeyParameters, base64url};
use tokbind_tls::ServerVerification;

use crate::Error;

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

fn json(res: &Response<Bytes>) -> Value {
    serde_json::from_slice(res.body()).unwrap_or(Value::Null)
}

fn status_reason(res: &Response<Bytes>) -> String {
    format!(
        "{} {}",
        res.status().as_u16(),
        json(res)["reason"].as_str().unwrap_or("-")
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

    println!();
    if t.failures == 0 {
        println!("every step behaved as expected");
    } else {
        println!("{} step(s) did not behave as expected", t.failures);
    }
    Ok(t.failures == 0)
}

fn host(url: &str) -> Result<String, Error> {
    let uri: Uri = url.parse()?;
    Ok(uri.host().ok_or("URL without host")?.to_string())
}
