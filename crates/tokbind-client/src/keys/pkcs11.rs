//! Keys inside a PKCS#11 token: generated there as sensitive and non-extractable, used
//! there for every signature (RFC 8471 §7.1: keep the private key where it cannot be
//! copied).
//!
//! Each key pair is a pair of token objects labelled `tokbind:<scope>:<key parameters>`.
//! ecdsap256 signs with `CKM_ECDSA` over SHA-256 of the signed input (its output is the raw
//! `R‖S` Token Binding wants); rsa2048_pkcs1.5 with `CKM_SHA256_RSA_PKCS`; rsa2048_pss with
//! `CKM_SHA256_RSA_PKCS_PSS`, MGF1-SHA-256 and a 32-byte salt.

use std::path::Path;
use std::sync::{Arc, Mutex};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use tokbind_proto::{KeyParameters, SignError, TokenBindingId, TokenBindingSigner};

use super::{KeyInfo, KeyStore, KeyStoreError, StoreKey};

const LABEL_PREFIX: &str = "tokbind:";
/// DER of the P-256 curve OID (1.2.840.10045.3.1.7) for `CKA_EC_PARAMS`.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

fn p11(e: impl std::fmt::Display) -> KeyStoreError {
    KeyStoreError::Pkcs11(e.to_string())
}

/// Keys in a PKCS#11 token, found by module, slot and user PIN.
pub struct Pkcs11KeyStore {
    session: Arc<Mutex<Session>>,
    description: String,
    // Kept last: the context must outlive the session (fields drop in order).
    _context: Pkcs11,
}

impl std::fmt::Debug for Pkcs11KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11KeyStore")
            .field("token", &self.description)
            .finish_non_exhaustive()
    }
}

impl Pkcs11KeyStore {
    /// Load the PKCS#11 `module` (e.g. `/usr/lib/softhsm/libsofthsm2.so`), open the token in
    /// `slot` (or the first slot with a token) and log in as the user with `pin`.
    pub fn open(module: &Path, slot: Option<u64>, pin: &str) -> Result<Self, KeyStoreError> {
        let context = Pkcs11::new(module)
            .map_err(|e| KeyStoreError::Pkcs11(format!("cannot load {}: {e}", module.display())))?;
        context
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(p11)?;
        let slots = context.get_slots_with_token().map_err(p11)?;
        let slot = match slot {
            Some(id) => *slots
                .iter()
                .find(|s| s.id() == id)
                .ok_or_else(|| KeyStoreError::Pkcs11(format!("no token in slot {id}")))?,
            None => *slots
                .first()
                .ok_or_else(|| KeyStoreError::Pkcs11("no slot holds a token".into()))?,
        };
        let info = context.get_token_info(slot).map_err(p11)?;
        let session = context.open_rw_session(slot).map_err(p11)?;
        session
            .login(UserType::User, Some(&AuthPin::from(pin.to_string())))
            .map_err(p11)?;
        Ok(Self {
            session: Arc::new(Mutex::new(session)),
            description: format!("{} (slot {})", info.label().trim(), slot.id()),
            _context: context,
        })
    }

    fn label(scope: &str, key_parameters: KeyParameters) -> Vec<u8> {
        format!("{LABEL_PREFIX}{scope}:{key_parameters}").into_bytes()
    }

    fn find(
        session: &Session,
        class: ObjectClass,
        label: &[u8],
    ) -> Result<Option<ObjectHandle>, KeyStoreError> {
        let found = session
            .find_objects(&[
                Attribute::Class(class),
                Attribute::Token(true),
                Attribute::Label(label.to_vec()),
            ])
            .map_err(p11)?;
        Ok(found.first().copied())
    }

    fn generate(
        session: &Session,
        key_parameters: KeyParameters,
        label: &[u8],
    ) -> Result<(), KeyStoreError> {
        let private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label.to_vec()),
        ];
        let (mechanism, mut public) = match key_parameters {
            KeyParameters::ECDSAP256 => (
                Mechanism::EccKeyPairGen,
                vec![Attribute::EcParams(P256_PARAMS.to_vec())],
            ),
            KeyParameters::RSA2048_PSS | KeyParameters::RSA2048_PKCS1_5 => (
                Mechanism::RsaPkcsKeyPairGen,
                vec![
                    Attribute::ModulusBits(2048.into()),
                    Attribute::PublicExponent(vec![1, 0, 1]),
                ],
            ),
            _ => {
                return Err(SignError::UnsupportedKeyParameters(key_parameters).into());
            }
        };
        public.extend([
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::Label(label.to_vec()),
        ]);
        session
            .generate_key_pair(&mechanism, &public, &private)
            .map_err(p11)?;
        Ok(())
    }

    /// The Token Binding ID of the public key object `public`.
    fn token_binding_id(
        session: &Session,
        public: ObjectHandle,
        key_parameters: KeyParameters,
    ) -> Result<TokenBindingId, KeyStoreError> {
        let corrupt = |reason: &str| KeyStoreError::Corrupt {
            location: format!("PKCS#11 object {public}"),
            reason: reason.into(),
        };
        if key_parameters == KeyParameters::ECDSAP256 {
            let attrs = session
                .get_attributes(public, &[AttributeType::EcPoint])
                .map_err(p11)?;
            let Some(Attribute::EcPoint(der)) = attrs.first() else {
                return Err(corrupt("no EC point"));
            };
            // CKA_EC_POINT is DER: OCTET STRING (0x04, 65) wrapping 0x04 ‖ X ‖ Y.
            let point = match der.as_slice() {
                [0x04, 0x41, 0x04, rest @ ..] | [0x04, rest @ ..] if rest.len() == 64 => rest,
                _ => return Err(corrupt("not an uncompressed P-256 point")),
            };
            Ok(TokenBindingId::ecdsap256(
                point.try_into().expect("64 bytes"),
            ))
        } else {
            let attrs = session
                .get_attributes(
                    public,
                    &[AttributeType::Modulus, AttributeType::PublicExponent],
                )
                .map_err(p11)?;
            let (mut n, mut e) = (None, None);
            for a in attrs {
                match a {
                    Attribute::Modulus(v) => n = Some(v),
                    Attribute::PublicExponent(v) => e = Some(v),
                    _ => {}
                }
            }
            let (Some(n), Some(e)) = (n, e) else {
                return Err(corrupt("no RSA modulus or exponent"));
            };
            TokenBindingId::rsa2048(key_parameters, &n, &e).map_err(|err| corrupt(&err.to_string()))
        }
    }
}

impl KeyStore for Pkcs11KeyStore {
    fn key_for(
        &self,
        scope: &str,
        key_parameters: KeyParameters,
    ) -> Result<StoreKey, KeyStoreError> {
        let label = Self::label(scope, key_parameters);
        let session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        if Self::find(&session, ObjectClass::PRIVATE_KEY, &label)?.is_none() {
            Self::generate(&session, key_parameters, &label)?;
        }
        let private = Self::find(&session, ObjectClass::PRIVATE_KEY, &label)?
            .ok_or_else(|| p11("the private key vanished"))?;
        let public = Self::find(&session, ObjectClass::PUBLIC_KEY, &label)?
            .ok_or_else(|| p11("the public key is missing"))?;
        let id = Self::token_binding_id(&session, public, key_parameters)?;
        drop(session);
        Ok(Arc::new(Pkcs11Key {
            session: Arc::clone(&self.session),
            private,
            key_parameters,
            id,
        }))
    }

    fn list(&self) -> Result<Vec<KeyInfo>, KeyStoreError> {
        let session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for private in session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Token(true),
            ])
            .map_err(p11)?
        {
            let attrs = session
                .get_attributes(private, &[AttributeType::Label, AttributeType::Extractable])
                .map_err(p11)?;
            let (mut label, mut extractable) = (None, true);
            for a in attrs {
                match a {
                    Attribute::Label(l) => label = String::from_utf8(l).ok(),
                    Attribute::Extractable(x) => extractable = x,
                    _ => {}
                }
            }
            let Some((scope, kp)) = label
                .as_deref()
                .and_then(|l| l.strip_prefix(LABEL_PREFIX))
                .and_then(|l| l.rsplit_once(':'))
                .and_then(|(s, k)| Some((s.to_string(), k.parse::<KeyParameters>().ok()?)))
            else {
                continue; // not one of ours
            };
            let label = Self::label(&scope, kp);
            let public = Self::find(&session, ObjectClass::PUBLIC_KEY, &label)?
                .ok_or_else(|| p11("the public key is missing"))?;
            let tbh = Self::token_binding_id(&session, public, kp)?
                .tbh()
                .to_string();
            out.push(KeyInfo {
                scope,
                key_parameters: kp,
                tbh,
                extractable,
            });
        }
        out.sort_by(|a, b| {
            (&a.scope, u8::from(a.key_parameters)).cmp(&(&b.scope, u8::from(b.key_parameters)))
        });
        Ok(out)
    }

    fn reset(&self, scope: Option<&str>) -> Result<usize, KeyStoreError> {
        let keys = self.list()?;
        let session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let mut deleted = 0;
        for key in keys.iter().filter(|k| scope.is_none_or(|s| s == k.scope)) {
            let label = Self::label(&key.scope, key.key_parameters);
            for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
                if let Some(h) = Self::find(&session, class, &label)? {
                    session.destroy_object(h).map_err(p11)?;
                }
            }
            deleted += 1;
        }
        Ok(deleted)
    }
}

/// A private key inside the token.
struct Pkcs11Key {
    session: Arc<Mutex<Session>>,
    private: ObjectHandle,
    key_parameters: KeyParameters,
    id: TokenBindingId,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("key_parameters", &self.key_parameters)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl TokenBindingSigner for Pkcs11Key {
    fn key_parameters(&self) -> KeyParameters {
        self.key_parameters
    }

    fn token_binding_id(&self) -> &TokenBindingId {
        &self.id
    }

    fn sign(
        &self,
        signed_input: &[u8; tokbind_proto::ekm::SIGNED_INPUT_LEN],
    ) -> Result<Vec<u8>, SignError> {
        let session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let backend = |e: cryptoki::error::Error| {
            tracing::warn!(error = %e, "PKCS#11 signing failed");
            SignError::Backend
        };
        match self.key_parameters {
            KeyParameters::ECDSAP256 => {
                let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, signed_input);
                session
                    .sign(&Mechanism::Ecdsa, self.private, digest.as_ref())
                    .map_err(backend)
            }
            KeyParameters::RSA2048_PKCS1_5 => session
                .sign(&Mechanism::Sha256RsaPkcs, self.private, signed_input)
                .map_err(backend),
            KeyParameters::RSA2048_PSS => {
                let params = PkcsPssParams {
                    hash_alg: MechanismType::SHA256,
                    mgf: PkcsMgfType::MGF1_SHA256,
                    s_len: 32.into(),
                };
                session
                    .sign(
                        &Mechanism::Sha256RsaPkcsPss(params),
                        self.private,
                        signed_input,
                    )
                    .map_err(backend)
            }
            other => Err(SignError::UnsupportedKeyParameters(other)),
        }
    }
}
