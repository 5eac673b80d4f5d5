//! What the application receives for each shape of `Cookie` header: the stated behaviour of
//! `BoundCookieLayer`'s one reading (`tower_tokbind::cookie::jar`). `tests/cookie_header.rs`
//! at the workspace root checks the same against the application parsers themselves.

// Shared with the other crates' tests (tokbind-testkit, which depends on this crate).
#[allow(dead_code)]
#[path = "../../tokbind-testkit/src/counters.rs"]
mod counters;

use std::convert::Infallible;

use counters::Counters;
use http::header::COOKIE;
use http::{HeaderValue, Request, Response};
use tokbind_proto::{Freshness, Mechanism, ProvenKey};
use tower::{ServiceBuilder, ServiceExt as _, service_fn};
use tower_tokbind::add_proven_key;
use tower_tokbind::cookie::{BoundCookieLayer, CookieKeys, DropReason, Unreadable};

/// The `Cookie` header values the application receives for `sent`, on a request proving
/// `key`.
async fn received(layer: &BoundCookieLayer, key: &ProvenKey, sent: &[&[u8]]) -> Vec<Vec<u8>> {
    let svc = ServiceBuilder::new()
        .layer(layer.clone())
        .service(service_fn(|req: Request<()>| async move {
            let seen: Vec<Vec<u8>> = req
                .headers()
                .get_all(COOKIE)
                .iter()
                .map(|v| v.as_bytes().to_vec())
                .collect();
            let mut res = Response::new(());
            res.extensions_mut().insert(seen);
            Ok::<_, Infallible>(res)
        }));
    let mut req = Request::new(());
    add_proven_key(req.extensions_mut(), key.clone());
    for v in sent {
        req.headers_mut()
            .append(COOKIE, HeaderValue::from_bytes(v).unwrap());
    }
    let res = svc.oneshot(req).await.unwrap();
    res.extensions().get::<Vec<Vec<u8>>>().unwrap().clone()
}

#[tokio::test]
async fn each_shape_of_header_has_a_stated_outcome() {
    let keys = CookieKeys::generate().unwrap();
    let key = ProvenKey::new(Mechanism::Dpop, Freshness::ThisRequest, &b"{}"[..], None);
    let bound = keys.bind(Some(&key), "id", "s1");
    let id = format!("id={bound}");
    let b = |s: &str| s.as_bytes().to_vec();
    // (what, sent, received, the one reason counted)
    type Case<'a> = (&'a str, Vec<Vec<u8>>, Vec<&'a [u8]>, Option<DropReason>);
    let cases: Vec<Case> = vec![
        (
            "several headers become one",
            vec![b("a=1"), b(&id)],
            vec![b"a=1; id=s1"],
            None,
        ),
        (
            "every copy of a duplicate is judged on its own",
            vec![b(&format!("id=forged; {id}; {id}"))],
            vec![b"id=s1; id=s1"],
            Some(DropReason::Unbound),
        ),
        (
            "empty pieces and stray semicolons vanish",
            vec![b(&format!(";; {id} ;;; b=2;"))],
            vec![b"id=s1; b=2"],
            None,
        ),
        (
            "without a bound cookie, a readable header passes as it came",
            vec![b(";; a=1 ;;; b=2;")],
            vec![b";; a=1 ;;; b=2;"],
            None,
        ),
        (
            "quotes and inner spaces are kept, as parsers read them",
            vec![b(&format!("b=\"q r\"; {id}"))],
            vec![b"b=\"q r\"; id=s1"],
            None,
        ),
        (
            "a quoted bound cookie is not the bound cookie",
            vec![b(&format!("id=\"{bound}\""))],
            vec![],
            Some(DropReason::Malformed),
        ),
        (
            "tabs and spaces around names and values are trimmed",
            vec![b(&format!("\tid\t=\t{bound}\t; x=1"))],
            vec![b"id=s1; x=1"],
            None,
        ),
        (
            "non-ASCII pairs go in a header of their own",
            vec![b(&format!("{id}; lang=fran\u{e7}ais"))],
            vec![b"id=s1", "lang=fran\u{e7}ais".as_bytes()],
            None,
        ),
        (
            "bytes that are not UTF-8 are removed",
            vec![[id.as_bytes(), b"; x=\xe9"].concat()],
            vec![b"id=s1"],
            Some(DropReason::Unreadable(Unreadable::NotUtf8)),
        ),
        (
            "a percent-encoded name for a bound cookie is removed, even with a good MAC",
            vec![b(&format!("i%64={bound}"))],
            vec![],
            Some(DropReason::Disguised),
        ),
        (
            "an escape that does not decode is removed",
            vec![b(&format!("a=%ff; {id}"))],
            vec![b"id=s1"],
            Some(DropReason::Unreadable(Unreadable::BadEscape)),
        ),
        (
            "a piece without a name is removed",
            vec![b(&format!("junk; =x; {id}"))],
            vec![b"id=s1"],
            Some(DropReason::Unreadable(Unreadable::NotAPair)),
        ),
        (
            "names are case-sensitive, as in every jar: ID is not id",
            vec![b("ID=x")],
            vec![b"ID=x"],
            None,
        ),
    ];
    for (what, sent, expected, dropped) in cases {
        let layer = BoundCookieLayer::new(keys.clone()).only(["id"]);
        let sent: Vec<&[u8]> = sent.iter().map(Vec::as_slice).collect();
        let counters = Counters::install();
        let got = received(&layer, &key, &sent).await;
        let expected: Vec<Vec<u8>> = expected.into_iter().map(<[u8]>::to_vec).collect();
        assert_eq!(got, expected, "{what}");
        for reason in DropReason::ALL {
            let count = counters.get("tokbind_bound_cookies_presented_total", reason.reason());
            assert_eq!(
                count > 0,
                dropped == Some(reason),
                "{what}: {reason:?} {count}"
            );
        }
    }
}

#[test]
#[should_panic(expected = "is not a cookie name")]
fn a_name_that_parsers_read_differently_cannot_be_covered() {
    let _ = BoundCookieLayer::new(CookieKeys::generate().unwrap()).only(["my%20id"]);
}
