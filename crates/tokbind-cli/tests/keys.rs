//! Client key stores through the CLI: `tokbind get --key-store …` against `tokbind serve`,
//! and `tokbind keys list|reset`.
//!
//! The PKCS#11 tests use SoftHSM2 (Debian package `softhsm2`, which `scripts/test` installs).
//! They fail — never skip — when it is missing. Each test initialises its own token in a
//! temporary directory and points the child processes at it with `SOFTHSM2_CONF`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{get_with_env, json, serve, tokbind_env};

const SOFTHSM_MODULES: [&str; 3] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tokbind-keys-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh SoftHSM token: (its directory, the `--key-store` value, the environment).
fn softhsm_token() -> (TempDir, String, Vec<(&'static str, String)>) {
    let module = SOFTHSM_MODULES.iter().find(|m| Path::new(m).exists()).unwrap_or_else(|| {
        panic!("SoftHSM2 is not installed (apt-get install softhsm2, or run scripts/test): none of {SOFTHSM_MODULES:?}")
    });
    let dir = TempDir::new("softhsm");
    std::fs::create_dir_all(dir.0.join("tokens")).unwrap();
    let conf = dir.0.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            dir.0.join("tokens").display()
        ),
    )
    .unwrap();
    let status = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            "tokbind-test",
            "--pin",
            "1234",
            "--so-pin",
            "5678",
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("softhsm2-util runs");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let env = vec![
        ("SOFTHSM2_CONF", conf.display().to_string()),
        ("TOKBIND_PKCS11_PIN", "1234".to_string()),
    ];
    (dir, format!("pkcs11:{module}"), env)
}

fn envs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn tbh_via(url: &str, key_store: &str, env: &[(&str, &str)]) -> String {
    let out = get_with_env(&[url, "--insecure", "--key-store", key_store], env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json(&out)["provided"]["tbh"]
        .as_str()
        .expect("a verified binding")
        .to_string()
}

#[test]
fn a_softhsm_key_signs_requests_stays_the_same_and_never_leaves_the_token() {
    let (_token, store, env) = softhsm_token();
    let env = envs(&env);
    let server = serve(&[]);
    let first = tbh_via(&server.url, &store, &env);
    let second = tbh_via(&server.url, &store, &env);
    assert_eq!(first, second, "the key persists in the token across runs");

    let list = json(&tokbind_env(&["keys", "list", "--key-store", &store], &env));
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["scope"], "127.0.0.1");
    assert_eq!(list[0]["key_parameters"], "ecdsap256");
    assert_eq!(list[0]["tbh"], first.as_str());
    assert_eq!(list[0]["extractable"], false, "generated non-extractable");

    let reset = json(&tokbind_env(
        &[
            "keys",
            "reset",
            "--key-store",
            &store,
            "--scope",
            "127.0.0.1",
        ],
        &env,
    ));
    assert_eq!(reset["deleted"], 1);
    let after = tbh_via(&server.url, &store, &env);
    assert_ne!(after, first, "a reset key means a new Token Binding ID");
}

#[test]
fn softhsm_signs_every_key_parameter() {
    let (_token, store, env) = softhsm_token();
    let env = envs(&env);
    for kp in ["rsa2048_pss", "rsa2048_pkcs1.5", "ecdsap256"] {
        let server = serve(&["--key-parameters", kp]);
        let out = get_with_env(&[&server.url, "--insecure", "--key-store", &store], &env);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{kp}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let body = json(&out);
        assert_eq!(body["token_binding"]["key_parameters"], kp);
        assert!(
            body["provided"]["tbh"].is_string(),
            "{kp}: the server verified the token's signature"
        );
    }
    let list = json(&tokbind_env(&["keys", "list", "--key-store", &store], &env));
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|k| k["extractable"] == false)
    );
}

#[test]
fn pkcs11_errors_are_clear() {
    let server = serve(&[]);
    let out = get_with_env(
        &[
            &server.url,
            "--insecure",
            "--key-store",
            "pkcs11:/nonexistent/module.so",
        ],
        &[("TOKBIND_PKCS11_PIN", "1")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot load /nonexistent/module.so"));
    let out = get_with_env(
        &[
            &server.url,
            "--insecure",
            "--key-store",
            "pkcs11:/nonexistent/module.so",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "no PIN is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("TOKBIND_PKCS11_PIN"));
    let (_token, store, env) = softhsm_token();
    let wrong_pin: Vec<(&str, &str)> = vec![
        ("SOFTHSM2_CONF", env[0].1.as_str()),
        ("TOKBIND_PKCS11_PIN", "0000"),
    ];
    let out = get_with_env(
        &[&server.url, "--insecure", "--key-store", &store],
        &wrong_pin,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("PKCS#11"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn file_store_survives_restarts_and_refuses_corruption() {
    let dir = TempDir::new("file");
    let store = format!("file:{}", dir.0.display());
    let server = serve(&[]);
    let first = tbh_via(&server.url, &store, &[]);
    assert_eq!(
        tbh_via(&server.url, &store, &[]),
        first,
        "same key after the process restarts"
    );
    let key_file = dir.0.join("127.0.0.1").join("ecdsap256.pk8");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    std::fs::write(&key_file, b"garbage").unwrap();
    let out = get_with_env(&[&server.url, "--insecure", "--key-store", &store], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unreadable") && err.contains("ecdsap256.pk8"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&key_file).unwrap(),
        b"garbage",
        "never silently replaced"
    );

    // Listing reports the damage; an explicit reset deletes the damaged key (the way out).
    assert_eq!(
        tokbind_env(&["keys", "list", "--key-store", &store], &[])
            .status
            .code(),
        Some(1)
    );
    let reset = json(&tokbind_env(
        &[
            "keys",
            "reset",
            "--key-store",
            &store,
            "--scope",
            "127.0.0.1",
        ],
        &[],
    ));
    assert_eq!(reset["deleted"], 1);
    assert!(!key_file.exists());
    let fresh = tbh_via(&server.url, &store, &[]);
    assert_ne!(fresh, first);
    let reset = json(&tokbind_env(
        &[
            "keys",
            "reset",
            "--key-store",
            &store,
            "--scope",
            "www.127.0.0.1.nip.io",
        ],
        &[],
    ));
    assert_eq!(reset["deleted"], 0, "another site's scope deletes nothing");
    let reset = json(&tokbind_env(&["keys", "reset", "--key-store", &store], &[]));
    assert_eq!(reset["deleted"], 1);
}

#[test]
fn key_store_usage_errors() {
    for bad in ["disk", "file:", "pkcs11:"] {
        let out = tokbind_env(&["get", "https://127.0.0.1:1/", "--key-store", bad], &[]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
    }
    let out = tokbind_env(&["keys", "list"], &[]);
    assert_eq!(out.status.code(), Some(2), "--key-store is required");
}
