//! A stolen cookie opens nothing, however the `Cookie` header is spelled: arbitrary headers
//! go through the README's stack (DBSC → bound cookies → `tower-sessions`), and every parser
//! an application uses reads what reached it — a real session lookup, `tower-cookies`,
//! `axum-extra`, `cookie`'s `split_parse_encoded` and `parse`. Whatever the spelling, the
//! thief gets their own session or none, someone proving no key gets an unbound session or
//! none, and the DBSC login cookie retired at registration stays dead
//! (`tokbind_cookie_oracle` has the cast and the invariant; the `cookie_header` fuzz
//! target runs the same check).

mod common;

use std::time::Duration;

use common::dbsc::*;
use common::json_body;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tokbind_testkit::cookie_oracle::{EQUALS, Harness, JUNK, NAMES, SEPARATORS, Secret};

fn pick(list: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> + Clone {
    prop::sample::select(list).prop_map(<[u8]>::to_vec)
}

/// A value: a secret, dressed in junk or not, or bytes.
fn value() -> impl Strategy<Value = Vec<u8>> {
    let secret = prop::sample::select(&Secret::ALL[..]).prop_map(|s| vec![s as u8]);
    prop_oneof![
        4 => secret.clone(),
        2 => (pick(JUNK), secret.clone()).prop_map(|(a, b)| [a, b].concat()),
        2 => (secret.clone(), pick(JUNK)).prop_map(|(a, b)| [a, b].concat()),
        1 => (pick(JUNK), secret, pick(JUNK)).prop_map(|(a, b, c)| [a, b, c].concat()),
        1 => prop::collection::vec(any::<u8>(), 0..4),
    ]
}

/// A piece: mostly `name=value` in some spelling, sometimes junk or bytes.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => (pick(NAMES), pick(EQUALS), value()).prop_map(|(n, e, v)| [n, e, v].concat()),
        1 => pick(JUNK),
        1 => prop::collection::vec(any::<u8>(), 0..6),
    ]
}

/// Up to eight pieces, separated every way, over one or several `Cookie` headers.
fn template() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((piece(), pick(SEPARATORS)), 1..8).prop_map(|pieces| {
        pieces
            .into_iter()
            .flat_map(|(p, s)| [p, s].concat())
            .collect()
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

#[test]
fn no_spelling_gets_a_cookie_past_the_layers() {
    let rt = runtime();
    let harness = rt.block_on(Harness::new());
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(1000);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&template(), |t| {
            rt.block_on(harness.check(&t))
                .map_err(|e| TestCaseError::fail(format!("{e}\n  template {t:?}")))
        })
        .unwrap();
}

/// The spellings found by hand, one class each, so a regression names itself.
#[test]
fn known_spellings_open_nothing() {
    let rt = runtime();
    let harness = rt.block_on(Harness::new());
    let cases: &[(&str, &[u8])] = &[
        ("stripped", b"id=\x02"),
        ("percent-encoded name", b"i%64=\x02"),
        ("all percent-encoded", b"%69%64=\x02"),
        (
            "non-ASCII elsewhere in the header",
            "id=\x02; x=\u{e9}".as_bytes(),
        ),
        ("Latin-1 elsewhere in the header", b"id=\x02; x=\xe9"),
        ("Latin-1 in another header", b"x=\xe9\nid=\x02"),
        ("no-break space before the name", "\u{a0}id=\x02".as_bytes()),
        (
            "ideographic space after the name",
            "id\u{3000}=\x02".as_bytes(),
        ),
        ("tab around =", b"id\t=\t\x02"),
        ("duplicate after the real one", b"id=\x03; id=\x02"),
        ("duplicate before the real one", b"id=\x02; id=\x03"),
        ("quoted", b"id=\"\x01\""),
        ("retired login cookie", b"id=\x04"),
        ("retired, space before =", b"id =\x04"),
        ("retired, spaces around =", b"id = \x04 "),
        ("retired, tab", b"\tid=\x04"),
        ("retired, encoded name", b"i%64=\x04"),
        ("retired behind another copy", b"id=x; id=\x04"),
        ("retired in a second header", b"a=1\nid=\x04"),
        ("retired, stray semicolons", b";;id=\x04;;"),
        ("re-bound without the DBSC cookie", b"id=\x05"),
        ("victim's own bound cookie", b"id=\x01"),
        ("the thief's own cookie (allowed)", b"id=\x03"),
        (
            "alice's DBSC cookies (allowed, within their lifetime)",
            b"id=\x05; __Host-dbsc=\x08",
        ),
        (
            "the thief's own id before alice's DBSC cookies",
            b"id=\x03; id=\x05; __Host-dbsc=\x08",
        ),
        (
            "the thief's own id after alice's DBSC cookies",
            b"__Host-dbsc=\x08; id=\x05; id=\x03",
        ),
        // Found by the fuzzer: forged copies in the unbound form must not use up the
        // DBSC layer's store lookups and take one's own cookie down with them.
        (
            "anon's own cookie behind five forged unbound-looking copies (allowed)",
            b"id=\x06a; id=\x06b; id=\x06c; id=\x06d; id=\x06e; id=\x06",
        ),
        ("anon's unbound cookie (allowed to nobody)", b"id=\x06"),
        // Found by the fuzzer: an unbound cookie on a request that proves a key (alice's,
        // through her short-lived cookie) does not open; the oracle expected it to.
        (
            "anon's unbound cookie beside alice's short-lived cookie",
            b"__Host-dbsc=\t\x08\t; id=\x06",
        ),
    ];
    for (name, template) in cases {
        if let Err(e) = rt.block_on(harness.check(template)) {
            panic!("{name}: {e}");
        }
    }
}

/// A request with these `Cookie` header values (raw bytes; several values = several
/// `Cookie` field lines, as HTTP/2 crumbs or repeated HTTP/1.1 headers).
fn raw_cookies(
    path: &str,
    values: &[Vec<u8>],
) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    let mut req = http::Request::get(path)
        .body(http_body_util::Full::default())
        .unwrap();
    for v in values {
        req.headers_mut().append(
            http::header::COOKIE,
            http::HeaderValue::from_bytes(v).unwrap(),
        );
    }
    req
}

/// Change the unused low bits of the last base64url character of a value's MAC: the same
/// MAC bytes, spelled otherwise (accepted only by a lenient decoder).
fn non_canonical_mac(cookie: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = *cookie.as_bytes().last().unwrap();
    let i = ALPHABET.iter().position(|&c| c == last).unwrap();
    // 43 characters carry 258 bits for 256: the last character's 2 low bits are unused.
    let j = (i & !0b11) | ((i + 1) & 0b11);
    format!("{}{}", &cookie[..cookie.len() - 1], ALPHABET[j] as char)
}

/// The spellings above and more, end to end over real TLS through the README's whole stack
/// (`bound_session_app`), over HTTP/1.1 and HTTP/2 (where hyper hands crumbs and repeated
/// headers over as several values), by a thief with their own Token Binding key and by one
/// with none: the application's session lookup finds nothing.
#[tokio::test]
async fn stolen_cookies_in_every_spelling_open_nothing_over_http1_and_http2() {
    let s = site(Duration::from_secs(600)).await;
    // Victim 1: a Token Binding client; `id` bound to her TLS key.
    let victim = s.server.client(|b| b);
    let res = s.send(&victim, get("/login", &[])).await;
    let vtb = set_cookie(&res, "id").unwrap();
    let v = vtb.trim_start_matches("id=").to_string();
    let (vbare, vmac) = v.rsplit_once('~').unwrap();
    let (vbare, vmac) = (vbare.to_string(), vmac.to_string());
    // Victim 2: a DBSC browser; her login cookie retired at registration.
    let browser = s.plain();
    let (unbound_id, challenge) = login(&s, &browser).await;
    let (alice, _) = register(&s, &browser, &DbscBrowser::new(), &unbound_id, &challenge).await;
    let u = unbound_id.trim_start_matches("id=").to_string();
    let ubare = u.rsplit_once('~').unwrap().0.to_string();

    let b = |s: &str| s.as_bytes().to_vec();
    let attempts: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("bound id as is", vec![b(&vtb)]),
        ("binding stripped", vec![b(&format!("id={vbare}"))]),
        ("name percent-encoded", vec![b(&format!("i%64={v}"))]),
        (
            "name fully encoded, stripped",
            vec![b(&format!("%69%64={vbare}"))],
        ),
        ("upper-case name, stripped", vec![b(&format!("ID={vbare}"))]),
        ("quoted", vec![b(&format!("id=\"{v}\""))]),
        ("quoted, stripped", vec![b(&format!("id=\"{vbare}\""))]),
        (
            "RFC 2965 $Version/$Path",
            vec![b(&format!("$Version=1; id={vbare}; $Path=/"))],
        ),
        ("comma-joined before", vec![b(&format!("x=1,id={vbare}"))]),
        ("comma-joined after", vec![b(&format!("id={vbare},x=1"))]),
        (
            "tilde percent-encoded",
            vec![b(&format!("id={vbare}%7E{vmac}"))],
        ),
        (
            "tilde percent-encoded, tb0",
            vec![b(&format!("id={vbare}%7Etb0.{}", &vmac[4..]))],
        ),
        (
            "relabelled tb0",
            vec![b(&format!("id={vbare}~tb0.{}", &vmac[4..]))],
        ),
        ("MAC padded", vec![b(&format!("{vtb}="))]),
        ("MAC non-canonical", vec![b(&non_canonical_mac(&vtb))]),
        ("MAC with trailing tilde", vec![b(&format!("{vtb}~"))]),
        (
            "no-break space before name",
            vec![b(&format!("\u{a0}id={vbare}"))],
        ),
        (
            "ideographic space around =",
            vec![b(&format!("id\u{3000}=\u{3000}{vbare}"))],
        ),
        ("tab around =", vec![b(&format!("id\t=\t{vbare}"))]),
        (
            "Latin-1 beside it",
            vec![[b(&format!("id={vbare}; x=")), vec![0xe9]].concat()],
        ),
        (
            "Latin-1 in the name",
            vec![[vec![0xe9], b(&format!("id={vbare}"))].concat()],
        ),
        (
            "second Cookie header",
            vec![b("a=1"), b(&format!("id={vbare}"))],
        ),
        (
            "crumbs split mid-pair",
            vec![b("id"), b(&format!("={vbare}"))],
        ),
        (
            "300 KB of junk first",
            vec![b(&format!("{}id={vbare}", "junk=1; ".repeat(300_000 / 8)))],
        ),
        (
            "8000 copies",
            vec![b(&vec![format!("id={vbare}"); 8000].join("; "))],
        ),
        // Alice, the DBSC browser: her login cookie from before registration.
        ("retired login cookie", vec![b(&unbound_id)]),
        ("retired, stripped", vec![b(&format!("id={ubare}"))]),
        (
            "retired, MAC non-canonical",
            vec![b(&non_canonical_mac(&unbound_id))],
        ),
        ("retired, MAC padded", vec![b(&format!("{unbound_id}="))]),
        (
            "retired, behind 5 forged copies",
            vec![b(&format!("{}{unbound_id}", "id=x~tb0.AAAA; ".repeat(5)))],
        ),
        (
            "retired, in a second header",
            vec![b("a=1"), b(&unbound_id)],
        ),
        (
            "re-bound id without the DBSC cookie",
            vec![b(&alice.bound_id)],
        ),
        (
            "re-bound id, DBSC cookie with expiry edited",
            vec![b(&format!(
                "{}; {}",
                alice.bound_id,
                alice.dbsc.replacen(
                    &format!(".{}.", alice.dbsc.split('.').nth(1).unwrap()),
                    ".99999999999.",
                    1
                )
            ))],
        ),
        (
            "re-bound id, DBSC cookie name lower-case",
            vec![b(&format!(
                "{}; {}",
                alice.bound_id,
                alice.dbsc.replacen("__Host-dbsc", "__host-dbsc", 1)
            ))],
        ),
        (
            "re-bound id, DBSC cookie name encoded",
            vec![b(&format!(
                "{}; {}",
                alice.bound_id,
                alice.dbsc.replacen("__Host-dbsc", "__Host%2Ddbsc", 1)
            ))],
        ),
    ];

    for (proto, tls) in [("HTTP/1.1", true), ("HTTP/2", false)] {
        let mk = |offer_tb: bool| {
            s.server.client(|c| {
                let c = c.offer_token_binding(offer_tb);
                if tls { c.http1_only() } else { c }
            })
        };
        for (who, client) in [
            ("thief with own TB key", mk(true)),
            ("thief with no key", mk(false)),
        ] {
            let mut conn = s.server.connect(&client).await;
            assert_eq!(conn.is_http2(), proto == "HTTP/2");
            for (name, values) in &attempts {
                let res = match conn.send(raw_cookies("/session", values)).await {
                    Ok(res) => res,
                    Err(e) => {
                        // Over the server's header limits (HTTP/2: 16 KiB): refused by hyper.
                        eprintln!("{proto}, {who}, {name}: refused by the server: {e}");
                        conn = s.server.connect(&client).await;
                        continue;
                    }
                };
                assert!(
                    !res.status().is_server_error(),
                    "{proto}, {who}, {name}: {}",
                    res.status()
                );
                if res.status() == 200 {
                    assert_eq!(
                        json_body(&res)["user"],
                        serde_json::Value::Null,
                        "{proto}, {who}, {name}: opened the victim's session"
                    );
                }
            }
        }
    }
}
