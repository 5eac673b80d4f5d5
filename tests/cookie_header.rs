//! A stolen cookie opens nothing, however the `Cookie` header is spelled: arbitrary headers
//! go through the README's stack (DBSC → bound cookies → `tower-sessions`), and every parser
//! an application uses reads what reached it — a real session lookup, `tower-cookies`,
//! `axum-extra`, `cookie`'s `split_parse_encoded` and `parse`. Whatever the spelling, the
//! thief gets their own session or none, someone proving no key gets an unbound session or
//! none, and the DBSC login cookie retired at registration stays dead
//! (`tokbind_cookie_oracle` has the cast and the invariant; the `cookie_header` fuzz
//! target runs the same check).

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
        // Found by the fuzzer: forged copies in the unbound form must not use up the
        // DBSC layer's store lookups and take one's own cookie down with them.
        (
            "anon's own cookie behind five forged unbound-looking copies (allowed)",
            b"id=\x06a; id=\x06b; id=\x06c; id=\x06d; id=\x06e; id=\x06",
        ),
        ("anon's unbound cookie (allowed to nobody)", b"id=\x06"),
    ];
    for (name, template) in cases {
        if let Err(e) = rt.block_on(harness.check(template)) {
            panic!("{name}: {e}");
        }
    }
}
