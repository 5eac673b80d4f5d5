//! State shared by instances, against a real Redis: the shared store (single use across
//! instances, expiry, sessions that never overwrite each other, the DBSC store interface)
//! and the DPoP replay cache (a proof used at one instance is refused at another).

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokbind_dbsc::DbscStore;
use tokbind_demo::store::SharedStore;
use tokbind_dpop::{DpopError, DpopKey, DpopVerifier, RedisReplayCache, RequestFacts};
use tower_sessions::SessionStore as _;
use tower_sessions::session::{Id, Record};

#[tokio::test]
async fn redis_backs_every_operation() {
    let dir = tempfile::tempdir().unwrap();
    let (_redis, url) = common::redis_in(dir.path(), Stdio::null());
    // Two instances, two connections.
    let (one, two) = (
        SharedStore::redis(&url).await.unwrap(),
        SharedStore::redis(&url).await.unwrap(),
    );

    one.put("code:c1", &"alice", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        two.get::<String>("code:c1").await.unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(
        two.take::<String>("code:c1").await.unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(
        one.take::<String>("code:c1").await.unwrap(),
        None,
        "a code is redeemed once, anywhere"
    );

    one.put("pending:p", &"n", Duration::from_millis(50))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(
        two.get::<String>("pending:p").await.unwrap(),
        None,
        "expired"
    );

    // Sessions: a second create with the same id draws a new one instead of overwriting.
    let expiry = tower_sessions::cookie::time::OffsetDateTime::now_utc()
        + tower_sessions::cookie::time::Duration::minutes(5);
    let id = Id::default();
    let mut first = Record {
        id,
        data: Default::default(),
        expiry_date: expiry,
    };
    first.data.insert("user".into(), "alice".into());
    one.create(&mut first).await.unwrap();
    let mut second = Record {
        id,
        data: Default::default(),
        expiry_date: expiry,
    };
    two.create(&mut second).await.unwrap();
    assert_ne!(second.id, id);
    assert_eq!(two.load(&id).await.unwrap().unwrap().data["user"], "alice");
    one.delete(&id).await.unwrap();
    assert!(two.load(&id).await.unwrap().is_none());

    // DBSC's interface over the same store.
    DbscStore::put(
        &one,
        "dbsc:registration:c",
        b"{}".to_vec(),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(
        DbscStore::get(&two, "dbsc:registration:c")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"{}"[..])
    );
    assert!(
        DbscStore::take(&two, "dbsc:registration:c")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        DbscStore::take(&one, "dbsc:registration:c")
            .await
            .unwrap()
            .is_none(),
        "single use"
    );
    DbscStore::put(
        &one,
        "dbsc:session:S1",
        b"x".to_vec(),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    DbscStore::remove(&two, "dbsc:session:S1").await.unwrap();
    assert!(
        DbscStore::get(&one, "dbsc:session:S1")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_dpop_proof_used_at_one_instance_is_refused_at_another() {
    let dir = tempfile::tempdir().unwrap();
    let (_redis, url) = common::redis_in(dir.path(), Stdio::null());
    let one =
        DpopVerifier::new().replay_cache(Arc::new(RedisReplayCache::connect(&url).await.unwrap()));
    let two =
        DpopVerifier::new().replay_cache(Arc::new(RedisReplayCache::connect(&url).await.unwrap()));
    let key = DpopKey::generate().unwrap();
    let facts = RequestFacts {
        method: "GET",
        htu: "https://api.example/me",
        access_token: None,
    };
    let proof = key.proof("GET", "https://api.example/me", None, None);
    let now = SystemTime::now();
    one.verify(&proof, &facts, now).await.unwrap();
    assert_eq!(
        two.verify(&proof, &facts, now).await.unwrap_err(),
        DpopError::Replay
    );
    assert_eq!(
        one.verify(&proof, &facts, now).await.unwrap_err(),
        DpopError::Replay
    );
    // A fresh proof by the same key is fine.
    let fresh = key.proof("GET", "https://api.example/me", None, None);
    two.verify(&fresh, &facts, now).await.unwrap();
}
