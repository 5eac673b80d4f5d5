//! Device Bound Session Credentials in a real browser: Debian's Chromium, headless, driven
//! over the DevTools protocol against the project's own server on loopback (the same
//! layer stack as `device_bound_sessions.rs`).
//!
//! Asserted both from the server (which requests arrived, in which order, with which
//! cookies) and from Chromium (`Network.deviceBoundSessionEventOccurred`):
//! registration; a forced refresh (a 307 that expires the bound cookie) after which the
//! deferred request goes out with the new cookie; termination at logout; that the
//! cookies copied into a fresh profile (which has no key) lose the session; and that when
//! the refresh endpoint fails, the request goes on without the bound cookie and with
//! `Secure-Session-Skipped`, which the handler sees.
//!
//! Needs `chromium` (Debian package; `scripts/test` installs it). The flags are a working
//! recipe: software keys (no TPM here), `DeviceBoundSessions` on, and the server's
//! self-signed certificate pinned by its SPKI hash (plain HTTP and
//! `--ignore-certificate-errors` do not work for DBSC).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::IntoResponse as _;
use base64::Engine as _;
use common::*;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Chromium refreshes proactively when the bound cookie expires within 120 s.
const COOKIE_LIFETIME: Duration = Duration::from_secs(600);
const STEP: Duration = Duration::from_secs(30);

fn chromium() -> PathBuf {
    ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect(
            "chromium not found: install it with `apt-get install chromium` (scripts/test does)",
        )
}

/// base64(SHA-256(SubjectPublicKeyInfo)) of the server's certificate.
fn spki_pin(cert_pem: &[u8]) -> String {
    let cert = openssl::x509::X509::from_pem(cert_pem).unwrap();
    let spki = cert.public_key().unwrap().public_key_to_der().unwrap();
    let hash = openssl::sha::sha256(&spki);
    base64::engine::general_purpose::STANDARD.encode(hash)
}

/// One headless Chromium with its own fresh profile, killed when dropped.
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    cdp: Cdp,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    async fn launch(pin: &str) -> Browser {
        // The profile in `data`, Chromium's own messages in `stderr.log` (shown if it
        // fails to start).
        let profile = tempfile::tempdir().unwrap();
        let data = profile.path().join("data");
        let log = profile.path().join("stderr.log");
        let child = Command::new(chromium())
            .args([
                "--headless=new",
                "--no-sandbox",
                // Containers often give /dev/shm only 64 MiB.
                "--disable-dev-shm-usage",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "--enable-features=DeviceBoundSessions:RequireOriginTrialTokens/false/RefreshQuota/false,EnableBoundSessionCredentialsSoftwareKeysForManualTesting",
            ])
            .arg(format!("--ignore-certificate-errors-spki-list={pin}"))
            .arg(format!("--user-data-dir={}", data.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let endpoint = devtools_endpoint(&data, &log).await;
        let cdp = Cdp::connect(&endpoint).await;
        let mut browser = Browser {
            child,
            _profile: profile,
            cdp,
        };
        let target = browser
            .cdp
            .call(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = browser
            .cdp
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        let session = attached["sessionId"].as_str().unwrap().to_string();
        browser.cdp.page = Some(session);
        for (method, params) in [
            ("Network.enable", json!({})),
            ("Network.enableDeviceBoundSessions", json!({"enable": true})),
            ("Page.enable", json!({})),
        ] {
            browser.cdp.page_call(method, params).await;
        }
        browser
    }

    /// Navigate and wait for the page to load; returns its text.
    async fn visit(&mut self, url: &str) -> String {
        self.cdp.drop_events("Page.loadEventFired");
        self.cdp
            .page_call("Page.navigate", json!({"url": url}))
            .await;
        self.cdp
            .event(|e| e["method"] == "Page.loadEventFired", "page load")
            .await;
        let text = self
            .cdp
            .page_call(
                "Runtime.evaluate",
                json!({"expression": "document.body ? document.body.innerText : ''", "returnByValue": true}),
            )
            .await;
        text["result"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The next DBSC event matching `pred`.
    async fn dbsc_event(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.cdp
            .event(
                |e| e["method"] == "Network.deviceBoundSessionEventOccurred" && pred(&e["params"]),
                what,
            )
            .await["params"]
            .clone()
    }
}

async fn devtools_endpoint(profile: &Path, log: &Path) -> String {
    let file = profile.join("DevToolsActivePort");
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                return format!("ws://127.0.0.1:{port}{path}");
            }
        }
        assert!(
            started.elapsed() < STEP,
            "Chromium did not start its DevTools endpoint; it said:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A minimal DevTools protocol client: commands (flattened sessions) and buffered events.
struct Cdp {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    events: Vec<Value>,
    page: Option<String>,
}

impl Cdp {
    async fn connect(endpoint: &str) -> Cdp {
        let (ws, _) = tokio_tungstenite::connect_async(endpoint).await.unwrap();
        Cdp {
            ws,
            next_id: 0,
            events: Vec::new(),
            page: None,
        }
    }

    async fn read(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(STEP, self.ws.next())
                .await
                .expect("Chromium went quiet")
                .expect("the DevTools connection closed")
                .unwrap();
            if let Message::Text(text) = msg {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = s.into();
        }
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .await
            .unwrap();
        loop {
            let v = self.read().await;
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
            if v.get("method").is_some() {
                self.events.push(v);
            }
        }
    }

    async fn page_call(&mut self, method: &str, params: Value) -> Value {
        let page = self.page.clone();
        self.call(page.as_deref(), method, params).await
    }

    fn drop_events(&mut self, method: &str) {
        self.events.retain(|e| e["method"] != method);
    }

    /// The first buffered or arriving event matching `pred` (consumed).
    async fn event(&mut self, pred: impl Fn(&Value) -> bool, what: &str) -> Value {
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(i) = self.events.iter().position(&pred) {
                return self.events.remove(i);
            }
            assert!(
                Instant::now() < deadline,
                "no {what} event; saw: {:#}",
                Value::from(self.events.clone())
            );
            let v = self.read().await;
            if v.get("method").is_some() {
                self.events.push(v);
            }
        }
    }
}

/// What the server saw: `METHOD path status` plus which cookies came (names only).
type Seen = Arc<Mutex<Vec<String>>>;

async fn record(seen: Seen, req: Request, next: Next) -> axum::response::Response {
    // Over HTTP/2 the URI is absolute: keep path and query.
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let line = format!("{} {target}", req.method());
    let cookies: Vec<String> = req
        .headers()
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('=').map(|(n, _)| n.to_string()))
        .collect();
    let proof = req.headers().contains_key("secure-session-response");
    let skipped = req
        .headers()
        .get("secure-session-skipped")
        .and_then(|v| v.to_str().ok())
        .map(|v| format!(" skipped=[{v}]"))
        .unwrap_or_default();
    let res = next.run(req).await;
    seen.lock().unwrap().push(format!(
        "{line} -> {} cookies=[{}]{}{skipped}",
        res.status().as_u16(),
        cookies.join(","),
        if proof { " +proof" } else { "" }
    ));
    res
}

/// While `fail` is set, the refresh endpoint answers 500 (an outage of the endpoint).
async fn refresh_outage(
    fail: Arc<AtomicBool>,
    req: Request,
    next: Next,
) -> axum::response::Response {
    if fail.load(Ordering::SeqCst) && req.uri().path() == "/dbsc/refresh" {
        return http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    next.run(req).await
}

fn position(seen: &Seen, from: usize, prefix: &str) -> Option<usize> {
    let seen = seen.lock().unwrap();
    seen.iter()
        .skip(from)
        .position(|l| l.starts_with(prefix))
        .map(|i| i + from)
}

fn line(seen: &Seen, i: usize) -> String {
    seen.lock().unwrap()[i].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_registers_refreshes_and_terminates_and_a_copied_profile_loses_the_session() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let origin = format!("https://localhost:{}", addr.port());
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let outage = Arc::new(AtomicBool::new(false));
    let fail = Arc::clone(&outage);
    let app = bound_session_app(&origin, COOKIE_LIFETIME)
        .layer(tokbind::tower::TokenBindingLayer::new())
        .layer(axum::middleware::from_fn(move |req, next| {
            refresh_outage(Arc::clone(&fail), req, next)
        }))
        .layer(axum::middleware::from_fn(move |req, next| {
            record(Arc::clone(&log), req, next)
        }));
    let server = start_app_on(listener, |b| b, app);
    let pin = spki_pin(&server.cert.cert_pem);
    let url = |path: &str| format!("{origin}{path}");

    let mut alice = Browser::launch(&pin).await;
    println!("1. sign in: the login response asks Chromium to register");
    let page = alice.visit(&url("/login")).await;
    assert!(page.contains("welcome, alice"), "{page}");
    let created = alice
        .dbsc_event("session creation", |p| {
            p.get("creationEventDetails").is_some()
        })
        .await;
    assert_eq!(
        created["creationEventDetails"]["fetchResult"], "Success",
        "{created:#}"
    );
    let registered = position(&seen, 0, "POST /dbsc/register").expect("no registration POST");
    assert!(
        line(&seen, registered).contains("-> 200"),
        "{}",
        line(&seen, registered)
    );
    assert!(
        line(&seen, registered).ends_with("+proof"),
        "{}",
        line(&seen, registered)
    );

    let page = alice.visit(&url("/me")).await;
    assert_eq!(page, "alice");
    let me = position(&seen, registered, "GET /me").unwrap();
    assert!(
        line(&seen, me).contains("dbsc"),
        "the bound cookie goes with in-scope requests: {}",
        line(&seen, me)
    );

    // The copy carries the short-lived cookie too, so it works until the server next asks
    // for a proof (DBSC proves the key at refresh, not per request): which is what step 3
    // makes it do.
    println!("2. a copy of the cookies in a fresh profile, without the key");
    let cookies = alice
        .cdp
        .page_call("Network.getAllCookies", json!({}))
        .await["cookies"]
        .clone();
    let names: Vec<&str> = cookies
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(
        names.contains(&"id") && names.contains(&"__Host-dbsc"),
        "{names:?}"
    );
    let mut mallory = Browser::launch(&pin).await;
    mallory
        .cdp
        .page_call("Network.setCookies", json!({"cookies": cookies}))
        .await;

    println!("3. a forced refresh: 307 that expires the bound cookie");
    let before = seen.lock().unwrap().len();
    let page = alice.visit(&url("/step-up")).await;
    assert_eq!(
        page, "alice",
        "the deferred request went out with the new cookie"
    );
    let refreshed = alice
        .dbsc_event("refresh", |p| p.get("refreshEventDetails").is_some())
        .await;
    assert_eq!(
        refreshed["refreshEventDetails"]["refreshResult"], "Refreshed",
        "{refreshed:#}"
    );
    let step_up = position(&seen, before, "GET /step-up").unwrap();
    let refresh = position(&seen, step_up, "POST /dbsc/refresh").expect("no refresh POST");
    let resumed = position(&seen, refresh, "GET /me?stepped-up").expect("the deferred request");
    assert!(line(&seen, step_up).contains("-> 307"));
    assert!(
        line(&seen, refresh).contains("-> 200") && line(&seen, refresh).ends_with("+proof"),
        "{}",
        line(&seen, refresh)
    );
    assert!(
        line(&seen, resumed).contains("-> 200") && line(&seen, resumed).contains("dbsc"),
        "{}",
        line(&seen, resumed)
    );

    // The copy, asked for a fresh proof, has no key to give one: the session is gone.
    let before = seen.lock().unwrap().len();
    let page = mallory.visit(&url("/step-up")).await;
    assert_eq!(page, "no session", "the copied profile kept the session");
    assert!(
        position(&seen, before, "POST /dbsc/refresh").is_none(),
        "the copy cannot refresh"
    );
    let resumed = position(&seen, before, "GET /me?stepped-up").unwrap();
    assert!(
        line(&seen, resumed).contains("-> 401"),
        "{}",
        line(&seen, resumed)
    );

    println!("4. logout ends the DBSC session");
    assert_eq!(alice.visit(&url("/logout")).await, "bye");
    let page = alice.visit(&url("/me")).await;
    assert_eq!(page, "no session");
    let ended = alice
        .dbsc_event("termination", |p| {
            p.get("terminationEventDetails").is_some()
        })
        .await;
    println!("  {}", ended["terminationEventDetails"]);

    // Another user, whose refresh endpoint is down when she needs a fresh proof.
    println!("5. the refresh endpoint fails: the request goes on, saying why");
    let mut carol = Browser::launch(&pin).await;
    assert!(carol.visit(&url("/login")).await.contains("welcome, alice"));
    carol
        .dbsc_event("session creation", |p| {
            p.get("creationEventDetails").is_some()
        })
        .await;
    outage.store(true, Ordering::SeqCst);
    let before = seen.lock().unwrap().len();
    let page = carol.visit(&url("/step-up")).await;
    outage.store(false, Ordering::SeqCst);
    let failed = carol
        .dbsc_event("refresh", |p| p.get("refreshEventDetails").is_some())
        .await;
    println!("  {}", failed["refreshEventDetails"]);
    assert_eq!(
        (
            &failed["refreshEventDetails"]["refreshResult"],
            &failed["refreshEventDetails"]["fetchResult"]
        ),
        (&json!("ServerError"), &json!("TransientHttpError")),
        "{failed:#}"
    );
    let refresh = position(&seen, before, "POST /dbsc/refresh").expect("no refresh POST");
    assert!(
        line(&seen, refresh).contains("-> 500"),
        "{}",
        line(&seen, refresh)
    );
    let resumed = position(&seen, refresh, "GET /me?stepped-up").expect("the deferred request");
    let resumed = line(&seen, resumed);
    assert!(
        resumed.contains("-> 401")
            && !resumed.contains("dbsc")
            && resumed.contains("skipped=[server_error;session_identifier="),
        "{resumed}"
    );
    // The handler read it through `RefreshSkipped`.
    assert!(
        page.starts_with("no session; refresh skipped: ") && page.ends_with(" (server_error)"),
        "{page}"
    );

    println!("server saw:");
    for l in seen.lock().unwrap().iter() {
        println!("  {l}");
    }
}
