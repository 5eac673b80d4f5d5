//! Running `tokbind` processes from tests.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use tokbind_tls::{ServerVerification, TokenBindingConnector};
use tokio::net::TcpStream;

use serde_json::Value;

pub struct Served {
    child: Child,
    pub url: String,
}

impl Served {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.url
            .strip_prefix("https://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("not an https://ADDR URL: {}", self.url))
    }

    /// The server's process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends the process `signal` (`INT`, `TERM`), by the shell's `kill`.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("sh")
            .args(["-c", &format!("kill -{signal} {}", self.pid())])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal}");
    }

    /// How the process ended, if it did within `within`.
    pub fn exited_within(
        &mut self,
        within: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let until = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if std::time::Instant::now() >= until {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tokbind serve --listen 127.0.0.1:0 EXTRA…`, once it listens.
pub fn serve(extra: &[&str]) -> Served {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    spawn_listening(&args)
}

/// `tokbind ARGS…` for a command that prints `listening on URL` first (serve, proxy),
/// once it listens.
pub fn spawn_listening(args: &[&str]) -> Served {
    spawn_listening_under(&[], args)
}

/// Like [`spawn_listening`], run by `wrapper` (e.g. `prlimit --nofile=64 --`).
pub fn spawn_listening_under(wrapper: &[&str], args: &[&str]) -> Served {
    let bin = env!("CARGO_BIN_EXE_tokbind");
    let mut command = match wrapper.split_first() {
        Some((program, wrapper_args)) => {
            let mut c = Command::new(program);
            c.args(wrapper_args).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let mut child = command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line was {first:?}"))
        .trim()
        .to_string();
    assert!(
        url.starts_with("https://127.0.0.1:") && !url.ends_with(":0"),
        "{url}"
    );
    Served { child, url }
}

/// `tokbind get ARGS…`.
pub fn get(args: &[&str]) -> Output {
    get_with_env(args, &[])
}

/// `tokbind ARGS…` with extra environment variables.
pub fn tokbind_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tokbind"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// `tokbind get ARGS…` with extra environment variables.
pub fn get_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    tokbind_env(&all, env)
}

/// stdout as JSON.
pub fn json(out: &Output) -> Value {
    if out.stdout.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// A finished TLS handshake with `addr`, offering `h2` or only `http/1.1` (and no Token
/// Binding, so that a request without `Sec-Token-Binding` is served).
pub async fn tls(
    addr: SocketAddr,
    http1_only: bool,
) -> impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static {
    // Built once: a new connector loads the system's CA bundle (tens of milliseconds),
    // which would make the tests that open many connections measure that instead.
    static CONNECTORS: OnceLock<[TokenBindingConnector; 2]> = OnceLock::new();
    let connectors = CONNECTORS.get_or_init(|| {
        let builder = || {
            TokenBindingConnector::builder()
                .server_verification(ServerVerification::InsecureAcceptAnything)
                .offer_token_binding(false)
        };
        [
            builder().build().unwrap(),
            builder().http1_only().build().unwrap(),
        ]
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (tls, _) = connectors[usize::from(http1_only)]
        .connect("127.0.0.1", tcp)
        .await
        .unwrap();
    tls
}
