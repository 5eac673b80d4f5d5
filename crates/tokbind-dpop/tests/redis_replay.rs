//! The Redis replay cache: a proof used at one instance is refused at another. Needs
//! `redis-server` (Debian package; `.ci/run` installs it). The root package's tests turn
//! the `redis` feature on, so `cargo test --workspace` runs these.
#![cfg(feature = "redis")]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokbind_dpop::{DpopError, DpopKey, DpopVerifier, RedisReplayCache, RequestFacts};

struct Redis {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis() -> (Redis, String) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("redis.sock");
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--save",
            "",
            "--appendonly",
            "no",
            "--unixsocket",
        ])
        .arg(&socket)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server: install it with `apt-get install redis-server` (.ci/run does)");
    let started = Instant::now();
    while !socket.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("redis+unix://{}", socket.display());
    (Redis { child, _dir: dir }, url)
}

#[tokio::test]
async fn a_proof_used_at_one_instance_is_refused_at_another() {
    let (_redis, url) = redis();
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

#[tokio::test]
async fn an_unreachable_store_fails_closed() {
    let (redis, url) = redis();
    let verifier =
        DpopVerifier::new().replay_cache(Arc::new(RedisReplayCache::connect(&url).await.unwrap()));
    drop(redis);
    let key = DpopKey::generate().unwrap();
    let facts = RequestFacts {
        method: "GET",
        htu: "https://api.example/me",
        access_token: None,
    };
    let proof = key.proof("GET", "https://api.example/me", None, None);
    let err = verifier
        .verify(&proof, &facts, SystemTime::now())
        .await
        .unwrap_err();
    assert!(matches!(err, DpopError::ReplayCache(_)), "{err:?}");
    assert_eq!(
        err.resource_response(&verifier, SystemTime::now()).status(),
        503
    );
}
