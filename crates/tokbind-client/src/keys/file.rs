//! Keys as PKCS#8 files: `<dir>/<scope>/<key parameters>.pk8`.
//!
//! * Files are created with mode 0600 inside directories with mode 0700.
//! * Creation is atomic and never overwrites: the key is written to a fresh temporary file,
//!   synced, then hard-linked to its final name, which fails if another process created
//!   the key first — that key is then used instead. A crash leaves either no key or a
//!   whole one.
//! * A key file that does not parse is an error ([`KeyStoreError::Corrupt`]): replacing it
//!   silently would change the client's Token Binding ID and void everything bound to it.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokbind_proto::{KeyParameters, SigningKey, TokenBindingSigner as _};

use super::{KeyInfo, KeyStore, KeyStoreError, StoreKey};

const EXTENSION: &str = "pk8";

/// Keys in a directory, one file per scope and key parameters.
#[derive(Debug)]
pub struct FileKeyStore {
    dir: PathBuf,
    loaded: Mutex<HashMap<(String, KeyParameters), Arc<SigningKey>>>,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> KeyStoreError + '_ {
    move |source| KeyStoreError::Io {
        location: path.display().to_string(),
        source,
    }
}

/// A directory name for a scope: letters, digits, `.` and `-` as they are; anything else
/// (`:` of IPv6, `/`, …) as `%XX`, so no scope can escape the store directory.
fn encode_scope(scope: &str) -> String {
    let mut out = String::with_capacity(scope.len());
    for b in scope.bytes() {
        if b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || b == b'-'
            || (b == b'.' && !out.is_empty())
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode_scope(name: &str) -> Option<String> {
    let mut out = Vec::with_capacity(name.len());
    let mut bytes = name.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

fn create_dir(path: &Path) -> Result<(), KeyStoreError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(io_error(path))
}

impl FileKeyStore {
    /// Use (creating it if needed) the store in `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, KeyStoreError> {
        let dir = dir.into();
        create_dir(&dir)?;
        Ok(Self {
            dir,
            loaded: Mutex::default(),
        })
    }

    /// Where the key for `scope` and `key_parameters` is kept.
    pub fn path(&self, scope: &str, key_parameters: KeyParameters) -> PathBuf {
        self.dir
            .join(encode_scope(scope))
            .join(format!("{key_parameters}.{EXTENSION}"))
    }

    fn load(path: &Path, key_parameters: KeyParameters) -> Result<SigningKey, KeyStoreError> {
        let der = zeroize::Zeroizing::new(fs::read(path).map_err(io_error(path))?);
        SigningKey::from_pkcs8(key_parameters, &der).map_err(|e| KeyStoreError::Corrupt {
            location: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Create the key file without ever replacing an existing one.
    fn create(path: &Path, key_parameters: KeyParameters) -> Result<SigningKey, KeyStoreError> {
        let dir = path.parent().expect("key paths have a directory");
        create_dir(dir)?;
        let key = SigningKey::generate(key_parameters)?;
        let der = key.to_pkcs8()?;
        let tmp = dir.join(format!(".{}.{}.tmp", std::process::id(), unique()));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = (|| {
            let mut f = options.open(&tmp)?;
            f.write_all(&der)?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_error(&tmp)(e));
        }
        let linked = fs::hard_link(&tmp, path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                // Make the new name durable too.
                if let Ok(d) = File::open(dir) {
                    let _ = d.sync_all();
                }
                Ok(key)
            }
            // Another process made this key first: use theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Self::load(path, key_parameters),
            Err(e) => Err(io_error(path)(e)),
        }
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl KeyStore for FileKeyStore {
    fn key_for(
        &self,
        scope: &str,
        key_parameters: KeyParameters,
    ) -> Result<StoreKey, KeyStoreError> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = loaded.get(&(scope.to_string(), key_parameters)) {
            return Ok(Arc::clone(k) as StoreKey);
        }
        let path = self.path(scope, key_parameters);
        let key = match fs::symlink_metadata(&path) {
            Ok(_) => Self::load(&path, key_parameters)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::create(&path, key_parameters)?,
            Err(e) => return Err(io_error(&path)(e)),
        };
        let key = Arc::new(key);
        loaded.insert((scope.to_string(), key_parameters), Arc::clone(&key));
        Ok(key)
    }

    fn list(&self) -> Result<Vec<KeyInfo>, KeyStoreError> {
        self.entries()?
            .into_iter()
            .map(|(scope, key_parameters, path)| {
                let key = Self::load(&path, key_parameters)?;
                Ok(KeyInfo {
                    scope,
                    key_parameters,
                    tbh: key.token_binding_id().tbh().to_string(),
                    extractable: true,
                })
            })
            .collect()
    }

    fn reset(&self, scope: Option<&str>) -> Result<usize, KeyStoreError> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let mut deleted = 0;
        // The files are not parsed: deleting a damaged key is how a user recovers from it.
        for (key_scope, key_parameters, path) in self.entries()? {
            if scope.is_some_and(|s| s != key_scope) {
                continue;
            }
            fs::remove_file(&path).map_err(io_error(&path))?;
            loaded.remove(&(key_scope, key_parameters));
            deleted += 1;
        }
        Ok(deleted)
    }
}

impl FileKeyStore {
    /// Every key file as (scope, key parameters, path), sorted, without reading them.
    fn entries(&self) -> Result<Vec<(String, KeyParameters, PathBuf)>, KeyStoreError> {
        let mut out = Vec::new();
        for scope_dir in fs::read_dir(&self.dir).map_err(io_error(&self.dir))? {
            let scope_dir = scope_dir.map_err(io_error(&self.dir))?.path();
            let Some(scope) = scope_dir
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(decode_scope)
            else {
                continue;
            };
            if !scope_dir.is_dir() {
                continue;
            }
            for file in fs::read_dir(&scope_dir).map_err(io_error(&scope_dir))? {
                let path = file.map_err(io_error(&scope_dir))?.path();
                let kp = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(&format!(".{EXTENSION}")))
                    .and_then(|n| n.parse::<KeyParameters>().ok());
                if let Some(kp) = kp {
                    out.push((scope.clone(), kp, path));
                }
            }
        }
        out.sort_by(|a, b| (&a.0, u8::from(a.1)).cmp(&(&b.0, u8::from(b.1))));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "tokbind-filestore-{tag}-{}-{}",
            std::process::id(),
            unique()
        ))
    }

    #[test]
    fn keys_persist_with_restrictive_permissions_and_survive_reopen() {
        let dir = temp_dir("persist");
        let store = FileKeyStore::open(&dir).unwrap();
        let a = store
            .key_for("example.com", KeyParameters::ECDSAP256)
            .unwrap()
            .token_binding_id()
            .clone();
        let again = FileKeyStore::open(&dir)
            .unwrap()
            .key_for("example.com", KeyParameters::ECDSAP256)
            .unwrap();
        assert_eq!(again.token_binding_id(), &a, "same key after a restart");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(
                mode(&store.path("example.com", KeyParameters::ECDSAP256)),
                0o600
            );
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&dir.join("example.com")), 0o700);
        }
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_corrupt_key_is_an_error_never_a_new_key() {
        let dir = temp_dir("corrupt");
        let store = FileKeyStore::open(&dir).unwrap();
        store
            .key_for("example.com", KeyParameters::ECDSAP256)
            .unwrap();
        let path = store.path("example.com", KeyParameters::ECDSAP256);
        let before = fs::read(&path).unwrap();
        fs::write(&path, b"not a key").unwrap();
        let err = FileKeyStore::open(&dir)
            .unwrap()
            .key_for("example.com", KeyParameters::ECDSAP256)
            .unwrap_err();
        assert!(matches!(err, KeyStoreError::Corrupt { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"not a key", "left as found");
        assert_ne!(before, b"not a key");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn concurrent_creation_yields_one_key() {
        let dir = temp_dir("race");
        let ids: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        FileKeyStore::open(&dir)
                            .unwrap()
                            .key_for("race.example", KeyParameters::ECDSAP256)
                            .unwrap()
                            .token_binding_id()
                            .clone()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(
            ids.windows(2).all(|w| w[0] == w[1]),
            "every opener got the same key"
        );
        let leftovers = fs::read_dir(dir.join("race.example")).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary files left");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn list_and_reset_by_scope() {
        let dir = temp_dir("reset");
        let store = FileKeyStore::open(&dir).unwrap();
        let a = store
            .key_for("a.example", KeyParameters::ECDSAP256)
            .unwrap()
            .token_binding_id()
            .clone();
        store
            .key_for("b.example", KeyParameters::ECDSAP256)
            .unwrap();
        store.key_for("::1", KeyParameters::ECDSAP256).unwrap();
        let scopes: Vec<String> = store.list().unwrap().into_iter().map(|k| k.scope).collect();
        assert_eq!(scopes, ["::1", "a.example", "b.example"]);
        assert_eq!(store.reset(Some("a.example")).unwrap(), 1);
        let fresh = store
            .key_for("a.example", KeyParameters::ECDSAP256)
            .unwrap();
        assert_ne!(
            fresh.token_binding_id(),
            &a,
            "a reset scope gets a new Token Binding ID"
        );
        assert_eq!(store.reset(None).unwrap(), 3);
        assert!(store.list().unwrap().is_empty());
        assert_eq!(encode_scope("../etc"), "%2E.%2Fetc");
        assert_eq!(decode_scope(&encode_scope("::1")).unwrap(), "::1");
        let _ = fs::remove_dir_all(&dir);
    }
}
