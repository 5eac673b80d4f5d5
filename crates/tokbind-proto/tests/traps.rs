//! One test (or more) per implementer trap — where RFC 8471 and RFC 8473 are easy to misread —
//! plus interop with signatures made by OpenSSL.

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer};
use tokbind_proto::codec::DecodeError;
use tokbind_proto::{
    Ekm, Extensions, HeaderError, KeyParameters, MessageBuilder, SigningKey, TokenBinding,
    TokenBindingId, TokenBindingIdRef, TokenBindingMessage, TokenBindingSigner, TokenBindingType,
    ValidationError, base64url, validate, verify_header,
};

fn ekm() -> Ekm {
    Ekm::new(*b"0123456789abcdef0123456789abcdef")
}

fn ec_key() -> SigningKey {
    SigningKey::generate(KeyParameters::ECDSAP256).unwrap()
}

/// Encode a message from raw parts (for building malformed or unusual messages).
fn message(bindings: &[(TokenBindingType, &[u8], &[u8])]) -> Vec<u8> {
    let bs = bindings.iter().map(|(t, tbid, sig)| {
        TokenBinding::new(
            *t,
            TokenBindingIdRef::decode(tbid).unwrap(),
            sig,
            Extensions::EMPTY,
        )
        .unwrap()
    });
    TokenBindingMessage::new(bs).unwrap().to_bytes()
}

fn sign(key: &dyn TokenBindingSigner, t: TokenBindingType, ekm: &Ekm) -> Vec<u8> {
    key.sign(&ekm.signed_input(t, key.key_parameters()))
        .unwrap()
}

fn check(
    bytes: &[u8],
    negotiated: KeyParameters,
) -> Result<tokbind_proto::VerifiedBindings, HeaderError> {
    verify_header(base64url::encode(bytes).as_bytes(), &ekm(), negotiated)
}

fn reason(r: Result<tokbind_proto::VerifiedBindings, HeaderError>) -> &'static str {
    r.map(|_| "valid").unwrap_or_else(|e| e.reason())
}

fn decode_err(bytes: &[u8]) -> DecodeError {
    TokenBindingMessage::decode(bytes).unwrap_err()
}

// RFC 8471 §3.2: the TBID is key_parameters ‖ key_length ‖ key; no type byte, signature or extensions.
#[test]
fn t01_tbid_excludes_type_signature_and_extensions() {
    let key = ec_key();
    let e = ekm();
    let header = MessageBuilder::new(&e)
        .provided(&key)
        .unwrap()
        .referred(&key)
        .unwrap();
    let bytes = header.to_bytes().unwrap();
    let msg = TokenBindingMessage::decode(&bytes).unwrap();
    let [p, r] = msg.bindings() else { panic!() };
    assert_eq!(
        p.id().as_bytes(),
        r.id().as_bytes(),
        "referred TBID equals provided TBID"
    );
    assert_eq!(p.id().as_bytes().len(), 68);
    assert_eq!(&p.id().as_bytes()[..4], &[0x02, 0x00, 0x41, 0x40]);
    assert_eq!(p.id().as_bytes(), key.token_binding_id().as_bytes());
    // tbh hashes the raw TBID bytes, not their base64url text.
    assert_ne!(
        key.token_binding_id().tbh(),
        tokbind_proto::Tbh::of(key.token_binding_id().to_string().as_bytes())
    );
}

// RFC 8471 §3.2: two nested lengths; exact EC point and RSA modulus shapes.
#[test]
fn t02_nested_key_lengths_and_key_shapes_are_strict() {
    let point = [7u8; 64];
    // key_length says 65 but the point vector says 63.
    let mut tbid = vec![2, 0, 65, 63];
    tbid.extend_from_slice(&point);
    assert!(matches!(
        TokenBindingIdRef::decode(&tbid).unwrap_err(),
        DecodeError::Invalid {
            field: "TokenBindingPublicKey.point",
            ..
        }
    ));
    // A 0x04-prefixed point (65 bytes) is refused.
    let mut tbid = vec![2, 0, 66, 65, 4];
    tbid.extend_from_slice(&point);
    let err = TokenBindingIdRef::decode(&tbid).unwrap_err();
    assert!(err.to_string().contains("no 0x04 prefix"), "{err}");
    // key_length longer than the key it holds: trailing bytes inside key_length.
    let mut tbid = vec![2, 0, 66, 64];
    tbid.extend_from_slice(&point);
    tbid.push(0);
    assert!(matches!(
        TokenBindingIdRef::decode(&tbid).unwrap_err(),
        DecodeError::TrailingBytes {
            field: "TokenBindingID.key_length",
            ..
        }
    ));

    let rsa = |modulus: &[u8], exponent: &[u8]| {
        let mut key = Vec::new();
        key.extend_from_slice(&(modulus.len() as u16).to_be_bytes());
        key.extend_from_slice(modulus);
        key.push(exponent.len() as u8);
        key.extend_from_slice(exponent);
        let mut tbid = vec![0];
        tbid.extend_from_slice(&(key.len() as u16).to_be_bytes());
        tbid.extend_from_slice(&key);
        TokenBindingIdRef::decode(&tbid)
            .map(|_| ())
            .map_err(|e| e.field())
    };
    let mut n = vec![0xc5; 256];
    assert_eq!(rsa(&n, &[1, 0, 1]), Ok(()));
    assert_eq!(
        rsa(&n[..255], &[1, 0, 1]),
        Err("TokenBindingPublicKey.modulus")
    );
    n[0] = 0x00;
    assert_eq!(
        rsa(&n, &[1, 0, 1]),
        Err("TokenBindingPublicKey.modulus"),
        "leading zero"
    );
    n[0] = 0x7f;
    assert_eq!(
        rsa(&n, &[1, 0, 1]),
        Err("TokenBindingPublicKey.modulus"),
        "2047 bits"
    );
    let n = vec![0xc5; 256];
    let mut n257 = vec![0x01];
    n257.extend_from_slice(&n);
    assert_eq!(rsa(&n257, &[1, 0, 1]), Err("TokenBindingPublicKey.modulus"));
    for bad_e in [
        &[0u8, 1, 0, 1][..],
        &[1, 0, 0],
        &[1],
        &[2],
        &[1, 0, 0, 0, 1],
    ] {
        assert_eq!(
            rsa(&n, bad_e),
            Err("TokenBindingPublicKey.publicexponent"),
            "{bad_e:?}"
        );
    }
    assert_eq!(rsa(&n, &[3]), Ok(()));
}

// RFC 8471 §3.3: raw R‖S, not DER; high-S signatures are valid.
#[test]
fn t03_ecdsa_is_raw_fixed_width_and_high_s_is_accepted() {
    let key = ec_key();
    let e = ekm();
    let tbid = key.token_binding_id().as_bytes().to_vec();
    let sig = sign(&key, TokenBindingType::PROVIDED, &e);
    assert_eq!(sig.len(), 64);

    // Flip S to n - S: the other valid signature for the same (r, hash).
    let n =
        BigNum::from_hex_str("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551")
            .unwrap();
    let s = BigNum::from_slice(&sig[32..]).unwrap();
    let mut flipped = BigNum::new().unwrap();
    flipped.checked_sub(&n, &s).unwrap();
    let mut high = sig[..32].to_vec();
    high.extend_from_slice(&flipped.to_vec_padded(32).unwrap());
    assert_ne!(high, sig, "exactly one of S and n - S is above n/2");
    for candidate in [&sig, &high] {
        let m = message(&[(TokenBindingType::PROVIDED, &tbid, candidate)]);
        assert_eq!(reason(check(&m, KeyParameters::ECDSAP256)), "valid");
    }

    // The same signature DER-encoded is refused (wrong length for ecdsap256).
    let der = EcdsaSig::from_private_components(
        BigNum::from_slice(&sig[..32]).unwrap(),
        BigNum::from_slice(&sig[32..]).unwrap(),
    )
    .unwrap()
    .to_der()
    .unwrap();
    let m = message(&[(TokenBindingType::PROVIDED, &tbid, &der)]);
    assert_eq!(
        check(&m, KeyParameters::ECDSAP256).unwrap_err(),
        HeaderError::Invalid(ValidationError::InvalidSignature {
            binding_type: TokenBindingType::PROVIDED,
            detail: "wrong length for its key parameters"
        })
    );
}

// RFC 8471 §3: no 132-byte lower bound, but every length must be exact and nothing may trail.
#[test]
fn t04_exact_lengths_no_trailing_garbage() {
    let key = ec_key();
    let e = ekm();
    let bytes = MessageBuilder::new(&e)
        .provided(&key)
        .unwrap()
        .to_bytes()
        .unwrap();
    assert_eq!(bytes.len(), 139);
    assert_eq!(&bytes[..2], &[0x00, 0x89]);
    assert!(TokenBindingMessage::decode(&bytes).is_ok());

    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        decode_err(&trailing),
        DecodeError::TrailingBytes {
            field: "TokenBindingMessage",
            ..
        }
    ));

    let mut short_outer = bytes.clone();
    short_outer[1] -= 1; // the list now ends one byte before the extensions length does
    assert!(matches!(
        decode_err(&short_outer),
        DecodeError::Truncated { .. } | DecodeError::TrailingBytes { .. }
    ));

    let mut long_outer = bytes.clone();
    long_outer[1] += 1;
    assert!(matches!(
        decode_err(&long_outer),
        DecodeError::Truncated { .. }
    ));

    assert!(matches!(
        decode_err(&[0, 0]),
        DecodeError::Invalid {
            field: "TokenBindingMessage.tokenbindings",
            ..
        }
    ));
    assert!(matches!(decode_err(&[]), DecodeError::Truncated { .. }));

    // A signature shorter than the wire minimum of 64 bytes.
    let tbid = key.token_binding_id().as_bytes();
    let mut raw = vec![0u8];
    raw.extend_from_slice(tbid);
    raw.extend_from_slice(&[0, 63]);
    raw.extend_from_slice(&[1; 63]);
    raw.extend_from_slice(&[0, 0]);
    let mut m = (raw.len() as u16).to_be_bytes().to_vec();
    m.extend_from_slice(&raw);
    assert!(matches!(
        decode_err(&m),
        DecodeError::Invalid {
            field: "TokenBinding.signature",
            ..
        }
    ));

    // Extensions: well-formed unknown ones are carried; a malformed list is refused.
    let mut with_ext = bytes[..bytes.len() - 2].to_vec();
    with_ext.extend_from_slice(&[0, 4, 0x99, 0, 1, 0xab]);
    with_ext[1] += 4;
    let msg = TokenBindingMessage::decode(&with_ext).unwrap();
    assert_eq!(
        msg.bindings()[0].extensions().iter().collect::<Vec<_>>(),
        vec![(0x99, &[0xab][..])]
    );
    assert_eq!(msg.to_bytes(), with_ext);
    assert_eq!(
        reason(check(&with_ext, KeyParameters::ECDSAP256)),
        "valid",
        "unknown extensions are ignored"
    );
    let mut bad_ext = with_ext.clone();
    let at = bad_ext.len() - 2;
    bad_ext[at] = 2; // extension_data says 2 bytes, only 1 left
    assert!(matches!(
        decode_err(&bad_ext),
        DecodeError::Truncated {
            field: "TB_Extension.extension_data",
            ..
        }
    ));
}

// RFC 8471 §3.3: exactly type ‖ key_parameters ‖ EKM is signed — nothing more, nothing less.
#[test]
fn t05_only_type_key_parameters_and_ekm_are_signed() {
    let key = ec_key();
    let e = ekm();
    let tbid = key.token_binding_id().as_bytes().to_vec();
    let wrong_inputs: Vec<Vec<u8>> = vec![
        e.as_bytes().to_vec(), // drafts ≤ -08: EKM only
        [b"Token Binding".as_slice(), &[1, 0, 0, 2], e.as_bytes()].concat(), // draft-09 interim
        e.signed_input(TokenBindingType::REFERRED, KeyParameters::ECDSAP256)
            .to_vec(), // wrong type
        e.signed_input(TokenBindingType::PROVIDED, KeyParameters::RSA2048_PSS)
            .to_vec(), // wrong kp
    ];
    for input in wrong_inputs {
        let sig = openssl_sign_with(&key.to_pkcs8().unwrap(), &input);
        let m = message(&[(TokenBindingType::PROVIDED, &tbid, &sig)]);
        assert_eq!(
            reason(check(&m, KeyParameters::ECDSAP256)),
            "invalid_signature"
        );
    }
    // The right input, signed by OpenSSL, verifies: the input really is those 34 bytes.
    let right = openssl_sign_with(
        &key.to_pkcs8().unwrap(),
        &e.signed_input(TokenBindingType::PROVIDED, KeyParameters::ECDSAP256),
    );
    let m = message(&[(TokenBindingType::PROVIDED, &tbid, &right)]);
    assert_eq!(reason(check(&m, KeyParameters::ECDSAP256)), "valid");
}

/// ECDSA-P256-SHA256 signature by OpenSSL, converted from DER to raw R‖S.
fn openssl_sign_with(pkcs8: &[u8], input: &[u8]) -> Vec<u8> {
    let pkey = PKey::private_key_from_pkcs8(pkcs8).unwrap();
    let mut signer = Signer::new(MessageDigest::sha256(), &pkey).unwrap();
    let der = signer.sign_oneshot_to_vec(input).unwrap();
    let sig = EcdsaSig::from_der(&der).unwrap();
    [
        sig.r().to_vec_padded(32).unwrap(),
        sig.s().to_vec_padded(32).unwrap(),
    ]
    .concat()
}

// RFC 8471 §3.3: the EKM is the connection's; a referred binding is signed over the same EKM.
#[test]
fn t06_bindings_are_tied_to_this_connections_ekm() {
    let (p, r) = (ec_key(), ec_key());
    let e = ekm();
    let other = Ekm::new([0xee; 32]);
    let ptbid = p.token_binding_id().as_bytes().to_vec();
    let rtbid = r.token_binding_id().as_bytes().to_vec();
    let ok_p = sign(&p, TokenBindingType::PROVIDED, &e);
    let referred_other_conn = sign(&r, TokenBindingType::REFERRED, &other);
    let m = message(&[
        (TokenBindingType::PROVIDED, &ptbid, &ok_p),
        (TokenBindingType::REFERRED, &rtbid, &referred_other_conn),
    ]);
    assert_eq!(
        check(&m, KeyParameters::ECDSAP256).unwrap_err(),
        HeaderError::Invalid(ValidationError::InvalidSignature {
            binding_type: TokenBindingType::REFERRED,
            detail: "does not verify over this connection's EKM"
        })
    );
}

// RFC 8471 §3.3: RSA-PSS with SHA-256, MGF1-SHA-256 and salt length exactly 32.
#[test]
fn t07_rsa_pss_salt_length_is_pinned_to_32() {
    let rsa = Rsa::generate(2048).unwrap();
    let pkey = PKey::from_rsa(rsa.clone()).unwrap();
    let tbid = TokenBindingId::rsa2048(
        KeyParameters::RSA2048_PSS,
        &rsa.n().to_vec(),
        &rsa.e().to_vec(),
    )
    .unwrap();
    let e = ekm();
    let input = e.signed_input(TokenBindingType::PROVIDED, KeyParameters::RSA2048_PSS);
    let pss = |salt: RsaPssSaltlen, mgf: MessageDigest| {
        let mut s = Signer::new(MessageDigest::sha256(), &pkey).unwrap();
        s.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        s.set_rsa_pss_saltlen(salt).unwrap();
        s.set_rsa_mgf1_md(mgf).unwrap();
        s.sign_oneshot_to_vec(&input).unwrap()
    };
    let cases = [
        (
            pss(RsaPssSaltlen::custom(32), MessageDigest::sha256()),
            "valid",
        ),
        (
            pss(RsaPssSaltlen::DIGEST_LENGTH, MessageDigest::sha256()),
            "valid",
        ),
        (
            pss(RsaPssSaltlen::custom(20), MessageDigest::sha256()),
            "invalid_signature",
        ),
        (
            pss(RsaPssSaltlen::custom(0), MessageDigest::sha256()),
            "invalid_signature",
        ),
        (
            pss(RsaPssSaltlen::MAXIMUM_LENGTH, MessageDigest::sha256()),
            "invalid_signature",
        ),
        (
            pss(RsaPssSaltlen::custom(32), MessageDigest::sha1()),
            "invalid_signature",
        ),
    ];
    for (i, (sig, expected)) in cases.iter().enumerate() {
        let m = message(&[(TokenBindingType::PROVIDED, tbid.as_bytes(), sig)]);
        assert_eq!(
            reason(check(&m, KeyParameters::RSA2048_PSS)),
            *expected,
            "case {i}"
        );
    }

    // A PKCS#1 v1.5 signature is not a PSS signature, and vice versa.
    let mut s = Signer::new(MessageDigest::sha256(), &pkey).unwrap();
    s.set_rsa_padding(Padding::PKCS1).unwrap();
    let pkcs1 = s.sign_oneshot_to_vec(&input).unwrap();
    let m = message(&[(TokenBindingType::PROVIDED, tbid.as_bytes(), &pkcs1)]);
    assert_eq!(
        reason(check(&m, KeyParameters::RSA2048_PSS)),
        "invalid_signature"
    );

    let tbid15 = TokenBindingId::rsa2048(
        KeyParameters::RSA2048_PKCS1_5,
        &rsa.n().to_vec(),
        &rsa.e().to_vec(),
    )
    .unwrap();
    let input15 = e.signed_input(TokenBindingType::PROVIDED, KeyParameters::RSA2048_PKCS1_5);
    let mut s = Signer::new(MessageDigest::sha256(), &pkey).unwrap();
    s.set_rsa_padding(Padding::PKCS1).unwrap();
    let good15 = s.sign_oneshot_to_vec(&input15).unwrap();
    let m = message(&[(TokenBindingType::PROVIDED, tbid15.as_bytes(), &good15)]);
    assert_eq!(reason(check(&m, KeyParameters::RSA2048_PKCS1_5)), "valid");
    let mut s = Signer::new(MessageDigest::sha256(), &pkey).unwrap();
    s.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
    s.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH).unwrap();
    let pss_as_15 = s.sign_oneshot_to_vec(&input15).unwrap();
    let m = message(&[(TokenBindingType::PROVIDED, tbid15.as_bytes(), &pss_as_15)]);
    assert_eq!(
        reason(check(&m, KeyParameters::RSA2048_PKCS1_5)),
        "invalid_signature"
    );
}

// RFC 8471 §4.2: the provided binding must use the negotiated key parameters; a referred one need not.
#[test]
fn t08_key_parameter_matching() {
    let e = ekm();
    let ec = ec_key();
    let rsa = SigningKey::generate(KeyParameters::RSA2048_PSS).unwrap();
    let header = MessageBuilder::new(&e)
        .provided(&ec)
        .unwrap()
        .to_bytes()
        .unwrap();
    for negotiated in [KeyParameters::RSA2048_PSS, KeyParameters::RSA2048_PKCS1_5] {
        assert_eq!(
            check(&header, negotiated).unwrap_err(),
            HeaderError::Invalid(ValidationError::KeyParametersMismatch {
                negotiated,
                provided: KeyParameters::ECDSAP256
            })
        );
    }
    let mixed = MessageBuilder::new(&e)
        .provided(&ec)
        .unwrap()
        .referred(&rsa)
        .unwrap()
        .to_bytes()
        .unwrap();
    let ok = check(&mixed, KeyParameters::ECDSAP256).unwrap();
    assert_eq!(ok.referred.as_ref(), Some(rsa.token_binding_id()));
    assert_eq!(ok.provided, *ec.token_binding_id());
}

// RFC 8473 §2: strict base64url, one value.
#[test]
fn t09_header_value_is_strict_unpadded_base64url() {
    let e = ekm();
    let key = ec_key();
    let value = MessageBuilder::new(&e)
        .provided(&key)
        .unwrap()
        .to_header_value()
        .unwrap();
    assert!(value.starts_with("AIkAAgBBQ"));
    assert!(verify_header(value.as_bytes(), &e, KeyParameters::ECDSAP256).is_ok());
    let bad = [
        format!("{value}="),
        format!("{value}=="),
        format!(" {value}"),
        format!("{value}\r\n"),
        value.replace('-', "+").replace('_', "/"),
        format!("{value},{value}"),
        format!("{}\n{}", &value[..60], &value[60..]),
    ];
    for b in &bad {
        if b == &value {
            continue; // no '-' or '_' in this value to replace
        }
        assert_eq!(
            verify_header(b.as_bytes(), &e, KeyParameters::ECDSAP256).unwrap_err(),
            HeaderError::Base64,
            "{b:?}"
        );
    }
    let huge = vec![b'A'; tokbind_proto::header::MAX_HEADER_VALUE_LEN + 4];
    assert_eq!(
        reason(verify_header(&huge, &e, KeyParameters::ECDSAP256)),
        "header_too_long"
    );
    assert_eq!(
        reason(verify_header(b"", &e, KeyParameters::ECDSAP256)),
        "malformed_message"
    );
}

// RFC 8471 §3.1 against §4.2: unknown types are never a reason to reject by themselves; a bad signature in one is.
#[test]
fn t10_unknown_types() {
    let e = ekm();
    let (p, o) = (ec_key(), ec_key());
    let good = MessageBuilder::new(&e)
        .provided(&p)
        .unwrap()
        .binding(TokenBindingType::new(0x4d), &o)
        .unwrap()
        .to_bytes()
        .unwrap();
    let ok = check(&good, KeyParameters::ECDSAP256).unwrap();
    assert_eq!(
        ok.others,
        vec![(TokenBindingType::new(0x4d), o.token_binding_id().clone())]
    );
    assert!(ok.referred.is_none());

    let ptbid = p.token_binding_id().as_bytes().to_vec();
    let otbid = o.token_binding_id().as_bytes().to_vec();
    let psig = sign(&p, TokenBindingType::PROVIDED, &e);
    let wrong_type_sig = sign(&o, TokenBindingType::new(0x0b), &e);
    let m = message(&[
        (TokenBindingType::PROVIDED, &ptbid, &psig),
        (TokenBindingType::new(0x4d), &otbid, &wrong_type_sig),
    ]);
    assert_eq!(
        reason(check(&m, KeyParameters::ECDSAP256)),
        "invalid_signature"
    );
}

// RFC 8473 §5.4: a referred binding with unknown key parameters is ignored, never trusted.
#[test]
fn t11_referred_with_unknown_key_parameters_is_dropped_not_trusted() {
    let e = ekm();
    let p = ec_key();
    let ptbid = p.token_binding_id().as_bytes().to_vec();
    let psig = sign(&p, TokenBindingType::PROVIDED, &e);
    let unknown_tbid = [0x60, 0x00, 0x03, 1, 2, 3];
    let m = message(&[
        (TokenBindingType::PROVIDED, &ptbid, &psig),
        (TokenBindingType::REFERRED, &unknown_tbid, &[0u8; 64]),
    ]);
    let ok = check(&m, KeyParameters::ECDSAP256).unwrap();
    assert!(ok.referred.is_none());
    assert_eq!(
        ok.unverified,
        vec![(TokenBindingType::REFERRED, KeyParameters::new(0x60))]
    );
    // …and an unknown-parameter *provided* binding can never match a negotiation.
    let m = message(&[(TokenBindingType::PROVIDED, &unknown_tbid, &[0u8; 64])]);
    assert_eq!(
        reason(check(&m, KeyParameters::ECDSAP256)),
        "key_parameters_mismatch"
    );
    let parsed = TokenBindingMessage::decode(&m).unwrap();
    assert_eq!(
        validate(&parsed, &e, KeyParameters::new(0x60)).unwrap_err(),
        ValidationError::UnsupportedKeyParameters(KeyParameters::new(0x60))
    );
}

// RFC 8473 §2: exactly one provided, at most one referred; and a bound on bindings per message.
#[test]
fn t12_cardinality() {
    let e = ekm();
    let a = ec_key();
    let build = |types: &[TokenBindingType]| {
        types
            .iter()
            .fold(MessageBuilder::new(&e), |m, t| m.binding(*t, &a).unwrap())
            .to_bytes()
            .unwrap()
    };
    const P: TokenBindingType = TokenBindingType::PROVIDED;
    const R: TokenBindingType = TokenBindingType::REFERRED;
    const U: fn(u8) -> TokenBindingType = TokenBindingType::new;
    assert_eq!(
        reason(check(&build(&[R]), KeyParameters::ECDSAP256)),
        "missing_provided"
    );
    assert_eq!(
        reason(check(&build(&[U(9)]), KeyParameters::ECDSAP256)),
        "missing_provided"
    );
    assert_eq!(
        reason(check(&build(&[P, P]), KeyParameters::ECDSAP256)),
        "duplicate_provided"
    );
    assert_eq!(
        reason(check(&build(&[R, P, R]), KeyParameters::ECDSAP256)),
        "duplicate_referred"
    );
    assert_eq!(
        reason(check(&build(&[R, P]), KeyParameters::ECDSAP256)),
        "valid",
        "order is free"
    );
    assert_eq!(
        reason(check(&build(&[P, R, U(3), U(4)]), KeyParameters::ECDSAP256)),
        "valid"
    );
    assert_eq!(
        reason(check(
            &build(&[P, R, U(3), U(4), U(5)]),
            KeyParameters::ECDSAP256
        )),
        "too_many_bindings"
    );
}

#[test]
fn openssl_generated_p256_keys_interoperate() {
    // A key made by OpenSSL, imported via PKCS#8, produces the TBID of its public point.
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let ec = EcKey::generate(&group).unwrap();
    let pkcs8 = PKey::from_ec_key(ec.clone())
        .unwrap()
        .private_key_to_pkcs8()
        .unwrap();
    let key = SigningKey::from_pkcs8(KeyParameters::ECDSAP256, &pkcs8).unwrap();
    let mut ctx = BigNumContext::new().unwrap();
    let point = ec
        .public_key()
        .to_bytes(
            &group,
            openssl::ec::PointConversionForm::UNCOMPRESSED,
            &mut ctx,
        )
        .unwrap();
    assert_eq!(&key.token_binding_id().as_bytes()[4..], &point[1..]);
    let e = ekm();
    let header = MessageBuilder::new(&e)
        .provided(&key)
        .unwrap()
        .to_bytes()
        .unwrap();
    assert_eq!(reason(check(&header, KeyParameters::ECDSAP256)), "valid");
}
