//! Scale-out, for real: two RP and two IdP instances (separate processes, each
//! terminating TLS itself), a layer-4 load balancer (HAProxy in TCP mode) in front of
//! each pair, and Redis holding sessions, pending sign-ins, codes and refresh tokens.
//!
//! ```text
//!                      ┌── rp-1 ──┐                       ┌── idp-1 ──┐
//! client ── HAProxy ───┤ 127.0.1.1├── back channel ── HAProxy ─┤ 127.0.2.1 ├── Redis
//!          127.0.0.3   └── rp-2 ──┘                  127.0.0.2 └── idp-2 ──┘
//!                        127.0.1.2                               127.0.2.2
//! ```
//!
//! Every listener has its own address. The ports are picked before the processes start (the
//! balancer's configuration names them), and a port picked and given back can be picked
//! again: two instances on one address were once handed the same port. Nor does any process
//! listen on 127.0.0.1, where outgoing loopback connections take their source ports
//! (`ip route get 127.0.0.2` says `src 127.0.0.1`).
//!
//! Every new connection goes to the next instance. The test shows (from the instances'
//! `tokbind-instance` header and from HAProxy's own log) that consecutive connections
//! alternate, and that
//! * the bound session cookie, access token and ID token are accepted on every instance,
//!   and the refresh token (bound to the RP's shared back-channel key) on every IdP;
//! * a stolen cookie or token, presented with another key, is refused on every instance;
//! * a native app's DPoP sign-in works across instances: the nonce one IdP instance hands
//!   out is taken by the other, and a proof used at one RP instance is refused at the
//!   other (the replay cache is in Redis too);
//! * killing one RP and one IdP instance loses no session;
//! * keys given in a file (the second instance of each) and in a variable (the first) are
//!   the same keys.
//!
//! Needs `redis-server` and `haproxy` (Debian packages; `scripts/test` installs them). Run
//! alone with `cargo test -p tokbind-demo --test scale_out -- --nocapture`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::Value;
use tokbind_client::{Client, KeyStore, MemoryKeyStore};
use tokbind_demo::store::SharedStore;
use tokbind_dpop::DPOP;
use tokbind_tls::{SelfSigned, ServerVerification};

use common::{Killed, demo, free_port, keygen, program, redis_in};

/// The whole test, start to teardown, must finish within this.
const DEADLINE: Duration = Duration::from_secs(120);
/// How often HAProxy checks that an instance is up.
const CHECK_INTERVAL_MS: u64 = 200;

/// Wait until something accepts connections on `addr`.
fn wait_for_port(addr: &str, what: &str, started: Instant) {
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            started.elapsed() < DEADLINE,
            "{what} never listened on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Instance {
    name: &'static str,
    process: Killed,
}

/// Everything the test started, stopped when dropped.
struct Deployment {
    dir: tempfile::TempDir,
    _redis: Killed,
    _haproxy: Killed,
    haproxy_log: PathBuf,
    instances: Vec<Instance>,
    redis_url: String,
    rp_url: String,
    idp_url: String,
    roots: Vec<u8>,
}

impl Deployment {
    fn start() -> Self {
        let started = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        let log_file = |name: &str| std::fs::File::create(path(name)).unwrap();

        let (redis, redis_url) = redis_in(dir.path(), log_file("redis.log").into());

        // One certificate per service, shared by its instances (as a real deployment
        // would share its certificate); the client trusts both.
        let rp_cert = SelfSigned::generate(&["127.0.0.3"]).unwrap();
        let idp_cert = SelfSigned::generate(&["127.0.0.2"]).unwrap();
        for (name, pem) in [
            ("rp.crt", &rp_cert.cert_pem),
            ("rp.key", &rp_cert.key_pem),
            ("idp.crt", &idp_cert.cert_pem),
            ("idp.key", &idp_cert.key_pem),
        ] {
            std::fs::write(path(name), pem).unwrap();
        }

        // Two sites (127.0.0.3 and 127.0.0.2), so the client keeps a key for each.
        let (rp_lb, idp_lb) = (free_port("127.0.0.3"), free_port("127.0.0.2"));
        let rp_url = format!("https://127.0.0.3:{rp_lb}");
        let idp_url = format!("https://127.0.0.2:{idp_lb}");
        let rp_addrs = ["127.0.1.1", "127.0.1.2"].map(|ip| format!("{ip}:{}", free_port(ip)));
        let idp_addrs = ["127.0.2.1", "127.0.2.2"].map(|ip| format!("{ip}:{}", free_port(ip)));

        let config = format!(
            "global
    log stdout format raw local0
    maxconn 256
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch 1
frontend rp
    bind 127.0.0.3:{rp_lb}
    default_backend rp
backend rp
    balance roundrobin
    default-server check inter {CHECK_INTERVAL_MS}ms fall 1 rise 1
    server rp-1 {}
    server rp-2 {}
frontend idp
    bind 127.0.0.2:{idp_lb}
    default_backend idp
backend idp
    balance roundrobin
    default-server check inter {CHECK_INTERVAL_MS}ms fall 1 rise 1
    server idp-1 {}
    server idp-2 {}
",
            rp_addrs[0], rp_addrs[1], idp_addrs[0], idp_addrs[1]
        );
        std::fs::write(path("haproxy.cfg"), config).unwrap();
        let haproxy_log = path("haproxy.log");
        let haproxy = Killed(
            Command::new(program("haproxy", "haproxy"))
                .arg("-db")
                .arg("-f")
                .arg(path("haproxy.cfg"))
                .stdout(log_file("haproxy.log"))
                .stderr(log_file("haproxy.err"))
                .spawn()
                .unwrap(),
        );

        // The first instance of each service takes its keys from a variable, the second
        // from a file (a mounted secret): the tokens and cookies that work on both show the
        // two routes give the same keys.
        let (signing_keys, cookie_keys, nonce_key) = keygen();
        std::fs::write(path("signing-keys"), format!("{signing_keys}\n")).unwrap();
        std::fs::write(path("cookie-keys"), format!("{cookie_keys}\n")).unwrap();
        let spawn = |name: &'static str, mut command: Command| {
            command
                .env("TOKBIND_INSTANCE", name)
                .env("TOKBIND_REDIS_URL", &redis_url)
                .stdout(log_file(&format!("{name}.log")))
                .stderr(log_file(&format!("{name}.err")));
            Instance {
                name,
                process: Killed(command.spawn().unwrap()),
            }
        };
        let mut instances = Vec::new();
        for (name, listen) in ["idp-1", "idp-2"].into_iter().zip(&idp_addrs) {
            let mut c = demo(&[
                "idp",
                "--listen",
                listen,
                "--public-url",
                &idp_url,
                "--rp-url",
                &rp_url,
            ]);
            if name == "idp-1" {
                c.env("TOKBIND_SIGNING_KEYS", &signing_keys);
            } else {
                c.env("TOKBIND_SIGNING_KEYS_FILE", path("signing-keys"));
            }
            c.env("TOKBIND_TLS_CERT", path("idp.crt"))
                .env("TOKBIND_TLS_KEY", path("idp.key"))
                .env("TOKBIND_DPOP_NONCE_KEY", &nonce_key);
            instances.push(spawn(name, c));
        }
        for (name, listen) in ["rp-1", "rp-2"].into_iter().zip(&rp_addrs) {
            let mut c = demo(&[
                "rp",
                "--listen",
                listen,
                "--public-url",
                &rp_url,
                "--idp-url",
                &idp_url,
            ]);
            if name == "rp-1" {
                c.env("TOKBIND_COOKIE_KEYS", &cookie_keys);
            } else {
                c.env("TOKBIND_COOKIE_KEYS_FILE", path("cookie-keys"));
            }
            c.arg("--idp-roots")
                .arg(path("idp.crt"))
                .env("TOKBIND_BACK_CHANNEL_KEYS", path("rp-back-channel-keys"))
                .env("TOKBIND_TLS_CERT", path("rp.crt"))
                .env("TOKBIND_TLS_KEY", path("rp.key"));
            instances.push(spawn(name, c));
        }

        let deployment = Self {
            dir,
            _redis: redis,
            _haproxy: haproxy,
            haproxy_log,
            instances,
            redis_url,
            rp_url,
            idp_url,
            roots: [rp_cert.cert_pem, idp_cert.cert_pem].concat(),
        };
        // The RPs listen once they have the IdPs' keys (fetched through the balancer).
        for addr in idp_addrs.iter().chain(&rp_addrs) {
            wait_for_port(addr, "an instance", started);
        }
        // HAProxy is listening (it logs this probe as `rp → <NOSRV>` if no instance is up
        // yet), then its checks have seen every instance.
        wait_for_port(&format!("127.0.0.3:{rp_lb}"), "HAProxy", started);
        deployment.wait_until_haproxy_sees(&["rp-1", "rp-2", "idp-1", "idp-2"], "UP");
        deployment
    }

    /// Wait until HAProxy's checks last found every one of `servers` in `state` (`UP` or
    /// `DOWN`), as its log says. A server it never logged is up: that is how HAProxy
    /// starts them.
    fn wait_until_haproxy_sees(&self, servers: &[&str], state: &str) {
        let waiting = Instant::now();
        loop {
            let log = std::fs::read_to_string(&self.haproxy_log).unwrap_or_default();
            let last_state = |server: &str| {
                // `Server rp/rp-1 is DOWN, reason: …`
                log.lines()
                    .filter_map(|line| line.strip_prefix("Server ")?.split_once(" is "))
                    .filter(|(name, _)| name.split_once('/').is_some_and(|(_, n)| n == server))
                    .filter_map(|(_, rest)| rest.split([',', ' ']).next())
                    .next_back()
                    .unwrap_or("UP")
                    .to_string()
            };
            let pending: Vec<&&str> = servers.iter().filter(|s| last_state(s) != state).collect();
            if pending.is_empty() {
                return;
            }
            assert!(
                waiting.elapsed() < Duration::from_secs(10),
                "HAProxy never saw {pending:?} {state}"
            );
            std::thread::sleep(Duration::from_millis(CHECK_INTERVAL_MS / 4));
        }
    }

    fn kill(&mut self, name: &str) {
        let instance = self.instances.iter_mut().find(|i| i.name == name).unwrap();
        instance.process.0.kill().unwrap();
        instance.process.0.wait().unwrap();
        println!("  killed {name}");
        // HAProxy notices at its next check (until then it redispatches failed connects).
        self.wait_until_haproxy_sees(&[name], "DOWN");
    }

    /// `(frontend, server)` of every connection HAProxy logged, in log order.
    fn balanced_connections(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(&self.haproxy_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                // tcplog: `client [date] frontend backend/server Tw/Tc/Tt bytes ...`
                let mut fields = line.split_whitespace().skip(2);
                let frontend = fields.next()?;
                let (_, server) = fields.next()?.split_once('/')?;
                Some((frontend.to_string(), server.to_string()))
            })
            .collect()
    }

    /// What every process printed, for a failing test's report.
    fn logs(&self) -> String {
        let mut out = String::new();
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log" || x == "err"))
            .collect();
        names.sort();
        for p in names {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            if !text.trim().is_empty() {
                out += &format!("--- {}\n{text}\n", file_name(&p));
            }
        }
        out
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn get(url: &str, headers: &[(header::HeaderName, &str)]) -> Request<Full<Bytes>> {
    let mut b = Request::get(url);
    for (k, v) in headers {
        b = b.header(k, *v);
    }
    b.body(Full::default()).unwrap()
}

fn instance_of(res: &Response<Bytes>) -> String {
    res.headers()
        .get("tokbind-instance")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_string()
}

fn json(res: &Response<Bytes>) -> Value {
    serde_json::from_slice(res.body()).unwrap_or(Value::Null)
}

/// `times` requests, each on a new connection (so each goes through the balancer anew):
/// every status must be `expected`; returns which instance answered each.
async fn on_every_instance(
    what: &str,
    client: &Client,
    request: impl Fn() -> Request<Full<Bytes>>,
    expected: StatusCode,
    times: usize,
) -> Vec<String> {
    let mut answered = Vec::new();
    for _ in 0..times {
        let res = client.fetch(request()).await.unwrap().response;
        let instance = instance_of(&res);
        assert_eq!(
            res.status(),
            expected,
            "{what} on {instance}: {}",
            String::from_utf8_lossy(res.body())
        );
        answered.push(instance);
    }
    println!("  {what}: {} on {}", expected.as_u16(), answered.join(", "));
    answered
}

fn assert_alternates(answered: &[String], instances: [&str; 2]) {
    let seen: BTreeSet<&str> = answered.iter().map(String::as_str).collect();
    assert_eq!(seen, BTreeSet::from(instances), "{answered:?}");
    assert!(
        answered.windows(2).all(|w| w[0] != w[1]),
        "consecutive connections did not alternate: {answered:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_of_each_behind_a_tcp_balancer_share_everything() {
    let mut d = Deployment::start();
    let finished = tokio::time::timeout(DEADLINE, scenario(&mut d)).await;
    let connections = d.balanced_connections();
    println!("\nHAProxy's log, one line per connection (frontend → server):");
    for (frontend, server) in &connections {
        println!("  {frontend:>3} → {server}");
    }
    assert!(
        finished.is_ok(),
        "the scenario took longer than {DEADLINE:?}"
    );
    // The balancer's own record: both instances of each service served connections.
    for server in ["rp-1", "rp-2", "idp-1", "idp-2"] {
        assert!(
            connections.iter().any(|(_, s)| s == server),
            "HAProxy never sent a connection to {server}: {connections:?}"
        );
    }
}

/// The story. A failed assertion prints every process's log (see `Drop`).
async fn scenario(d: &mut Deployment) {
    let rp = d.rp_url.clone();
    let verification = ServerVerification::Roots(d.roots.clone());
    let browser = |keys: Arc<dyn KeyStore>| {
        Client::builder()
            .server_verification(verification.clone())
            .keys(keys)
            .cookie_store(true)
            .max_redirects(10)
            .build()
            .unwrap()
    };
    let alice = browser(Arc::new(MemoryKeyStore::default()));
    let mallory = browser(Arc::new(MemoryKeyStore::default()));
    let url = |path: &str| format!("{rp}{path}");

    println!("1. Alice signs in (the code is issued by one IdP instance, redeemed at the next)");
    let signed_in = alice.fetch(get(&url("/login"), &[])).await.unwrap();
    let page = json(&signed_in.response);
    assert_eq!(
        signed_in.response.status(),
        StatusCode::OK,
        "sign-in: {page}"
    );
    assert_eq!(page["user"], "alice");
    let access_token = page["access_token"].as_str().unwrap().to_string();
    let id_token = page["id_token"].as_str().unwrap().to_string();
    let cookie = alice
        .cookies_for(&rp.parse().unwrap())
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    println!("  signed in on {}", instance_of(&signed_in.response));

    // The state really is in Redis, not in an instance.
    let store = SharedStore::redis(&d.redis_url).await.unwrap();
    let session_id = cookie
        .split("rp_session=")
        .nth(1)
        .and_then(|v| v.split(['~', ';']).next())
        .unwrap();
    assert!(
        store
            .get::<Value>(&format!("session:{session_id}"))
            .await
            .unwrap()
            .is_some(),
        "the session is not in Redis"
    );

    println!("2. Alice's bound credentials work on every instance");
    let answered = on_every_instance(
        "session cookie",
        &alice,
        || get(&url("/protected"), &[]),
        StatusCode::OK,
        4,
    )
    .await;
    assert_alternates(&answered, ["rp-1", "rp-2"]);
    let bearer = format!("Bearer {access_token}");
    let answered = on_every_instance(
        "access token",
        &alice,
        || get(&url("/api/me"), &[(header::AUTHORIZATION, &bearer)]),
        StatusCode::OK,
        4,
    )
    .await;
    assert_alternates(&answered, ["rp-1", "rp-2"]);
    let id_token_url = url(&format!("/login/id_token?id_token={id_token}"));
    let answered = on_every_instance(
        "ID token",
        &alice,
        || get(&id_token_url, &[]),
        StatusCode::OK,
        2,
    )
    .await;
    assert_alternates(&answered, ["rp-1", "rp-2"]);
    // Each refresh is a new back-channel connection to the IdP balancer.
    let before = d.balanced_connections().len();
    let answered = on_every_instance(
        "refresh token (RP → IdP)",
        &alice,
        || get(&url("/refresh"), &[]),
        StatusCode::OK,
        4,
    )
    .await;
    assert_alternates(&answered, ["rp-1", "rp-2"]);
    // HAProxy logs a connection when it closes, which may be a moment after the response.
    let waiting = Instant::now();
    let idps = loop {
        let idps: BTreeSet<String> = d.balanced_connections()[before..]
            .iter()
            .filter(|(frontend, _)| frontend == "idp")
            .map(|(_, server)| server.clone())
            .collect();
        if idps.len() == 2 || waiting.elapsed() > Duration::from_secs(5) {
            break idps;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        idps,
        BTreeSet::from(["idp-1".to_string(), "idp-2".to_string()]),
        "refreshes did not reach both IdP instances"
    );

    println!("3. Mallory, with her own key, replays what she stole: refused everywhere");
    let answered = on_every_instance(
        "stolen session cookie",
        &mallory,
        || get(&url("/protected"), &[(header::COOKIE, &cookie)]),
        StatusCode::UNAUTHORIZED,
        4,
    )
    .await;
    assert_alternates(&answered, ["rp-1", "rp-2"]);
    let answered = on_every_instance(
        "stolen access token",
        &mallory,
        || get(&url("/api/me"), &[(header::AUTHORIZATION, &bearer)]),
        StatusCode::UNAUTHORIZED,
        4,
    )
    .await;
    assert_alternates(&answered, ["rp-1", "rp-2"]);
    let answered = on_every_instance(
        "stolen ID token",
        &mallory,
        || get(&id_token_url, &[]),
        StatusCode::UNAUTHORIZED,
        2,
    )
    .await;
    assert_alternates(&answered, ["rp-1", "rp-2"]);

    println!("3b. A native app signs in with DPoP: nonces and used proofs are shared too");
    dpop_across_instances(d, &verification).await;

    println!("4. rp-1 and idp-1 die; Alice's session lives on");
    d.kill("rp-1");
    d.kill("idp-1");
    let answered = on_every_instance(
        "session cookie",
        &alice,
        || get(&url("/protected"), &[]),
        StatusCode::OK,
        3,
    )
    .await;
    assert!(answered.iter().all(|i| i == "rp-2"), "{answered:?}");
    on_every_instance(
        "refresh token",
        &alice,
        || get(&url("/refresh"), &[]),
        StatusCode::OK,
        2,
    )
    .await;
    on_every_instance(
        "stolen session cookie",
        &mallory,
        || get(&url("/protected"), &[(header::COOKIE, &cookie)]),
        StatusCode::UNAUTHORIZED,
        2,
    )
    .await;
}

/// The app's sign-in (S256 PKCE, DPoP) through both balancers, one request per
/// connection: the token request that meets the nonce lands on the other IdP instance
/// than the one that handed it out, and a proof replayed lands on the other RP instance
/// than the one that took it.
async fn dpop_across_instances(d: &Deployment, verification: &ServerVerification) {
    use tokbind_demo::{APP_CLIENT_ID, APP_REDIRECT_URI};
    use tokbind_dpop::{DPOP_NONCE, DpopKey};
    use tokbind_oauth::{pkce, random_token};

    let app = Client::builder()
        .server_verification(verification.clone())
        .max_redirects(0)
        .build()
        .unwrap();
    let key = DpopKey::generate().unwrap();
    let verifier = random_token();
    let mut authorize = url::Url::parse(&format!("{}/authorize", d.idp_url)).unwrap();
    authorize.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", APP_CLIENT_ID),
        ("redirect_uri", APP_REDIRECT_URI),
        ("state", "s"),
        ("code_challenge", &pkce::s256_challenge(&verifier)),
        ("code_challenge_method", pkce::S256),
    ]);
    let res = app
        .fetch(get(authorize.as_str(), &[]))
        .await
        .unwrap()
        .response;
    let location = url::Url::parse(res.headers()[header::LOCATION].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();

    let token_url = format!("{}/token", d.idp_url);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", APP_REDIRECT_URI),
            ("client_id", APP_CLIENT_ID),
            ("code_verifier", &verifier),
        ])
        .finish();
    let token_request = |nonce: Option<&str>| {
        Request::post(&token_url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("dpop", key.proof("POST", &token_url, None, nonce))
            .body(Full::new(Bytes::from(body.clone())))
            .unwrap()
    };
    let asked = app.fetch(token_request(None)).await.unwrap().response;
    assert_eq!(asked.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(&asked)["error"], "use_dpop_nonce");
    let nonce = asked.headers()[DPOP_NONCE].to_str().unwrap().to_string();
    let issued = app
        .fetch(token_request(Some(&nonce)))
        .await
        .unwrap()
        .response;
    assert_eq!(
        issued.status(),
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(issued.body())
    );
    let (asked_by, taken_by) = (instance_of(&asked), instance_of(&issued));
    println!("  nonce handed out by {asked_by}, taken by {taken_by}");
    assert_alternates(&[asked_by, taken_by], ["idp-1", "idp-2"]);
    let access_token = json(&issued)["access_token"].as_str().unwrap().to_string();

    let api = format!("{}/api/me", d.rp_url);
    let scheme = format!("DPoP {access_token}");
    let proof = key.proof("GET", &api, Some(&access_token), None);
    let call = || get(&api, &[(header::AUTHORIZATION, &scheme), (DPOP, &proof)]);
    let first = app.fetch(call()).await.unwrap().response;
    assert_eq!(first.status(), StatusCode::OK);
    let replayed = app.fetch(call()).await.unwrap().response;
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(&replayed)["reason"], "dpop_replay");
    let (used_at, replayed_at) = (instance_of(&first), instance_of(&replayed));
    println!("  proof used at {used_at}, replayed at {replayed_at}: refused");
    assert_alternates(&[used_at, replayed_at], ["rp-1", "rp-2"]);
}
