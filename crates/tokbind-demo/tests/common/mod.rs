//! Process plumbing shared by the multi-process tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed (and reaped) when dropped, so a failing test leaves nothing
/// running.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port that was free on `ip` a moment ago.
///
/// The port is given back at once, so two calls may return the same one (CI saw two
/// instances handed one port), and on 127.0.0.1 an outgoing connection may take it as its
/// source port. So give every listener its own address, and not 127.0.0.1.
pub fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind(format!("{ip}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `tokbind-demo` binary with `args`, output piped.
pub fn demo(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tokbind-demo"));
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// `tokbind-demo keygen`: (signing keys, cookie keys, DPoP nonce key), as every instance
/// shares them.
pub fn keygen() -> (String, String, String) {
    let out = demo(&["keygen"]).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let var = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("keygen printed no {name}: {stdout}"))
            .to_string()
    };
    (
        var("TOKBIND_SIGNING_KEYS"),
        var("TOKBIND_COOKIE_KEYS"),
        var("TOKBIND_DPOP_NONCE_KEY"),
    )
}

/// A Debian package's program, wherever the package puts it.
pub fn program(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` not found: install it with `apt-get install {package}` (scripts/test does)")
        })
}

/// A Redis server on a Unix socket in `dir` (no port to race for); its URL.
pub fn redis_in(dir: &std::path::Path, log: Stdio) -> (Killed, String) {
    let socket = dir.join("redis.sock");
    let redis = Killed(
        Command::new(program("redis-server", "redis-server"))
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(log)
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while !socket.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (redis, format!("redis+unix://{}", socket.display()))
}
