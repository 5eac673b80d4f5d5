//! Property tests: decoders never panic on arbitrary input, and everything that decodes
//! re-encodes to the same bytes.

use proptest::prelude::*;
use tokbind_proto::{
    Ekm, Extensions, KeyParameters, MessageBuilder, SigningKey, TokenBinding, TokenBindingIdRef,
    TokenBindingMessage, TokenBindingParameters, TokenBindingType, base64url, verify_header,
};

/// Arbitrary TBID bytes that are structurally valid for their key parameters.
fn tbid() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::array::uniform32(any::<u8>()).prop_flat_map(|x| {
            prop::array::uniform32(any::<u8>()).prop_map(move |y| {
                let mut v = vec![2, 0, 65, 64];
                v.extend_from_slice(&x);
                v.extend_from_slice(&y);
                v
            })
        }),
        (
            0u8..=1,
            prop::collection::vec(any::<u8>(), 255),
            prop::sample::select(vec![vec![3u8], vec![1, 0, 1], vec![0x7f, 0xff, 0xff, 0xff]])
        )
            .prop_map(|(kp, rest, e)| {
                let mut n = vec![0x80 | rest[0]];
                n.extend_from_slice(&rest[..255]);
                let key_len = 2 + 256 + 1 + e.len();
                let mut v = vec![kp];
                v.extend_from_slice(&(key_len as u16).to_be_bytes());
                v.extend_from_slice(&[1, 0]);
                v.extend_from_slice(&n);
                v.push(e.len() as u8);
                v.extend_from_slice(&e);
                v
            }),
        (3u8..=255, prop::collection::vec(any::<u8>(), 0..40)).prop_map(|(kp, key)| {
            let mut v = vec![kp];
            v.extend_from_slice(&(key.len() as u16).to_be_bytes());
            v.extend_from_slice(&key);
            v
        }),
    ]
}

fn extensions() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..8)),
        0..3,
    )
    .prop_map(|exts| {
        let mut out = Vec::new();
        for (t, data) in exts {
            out.push(t);
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
            out.extend_from_slice(&data);
        }
        out
    })
}

type RawBinding = (u8, Vec<u8>, Vec<u8>, Vec<u8>);

fn binding() -> impl Strategy<Value = RawBinding> {
    (
        any::<u8>(),
        tbid(),
        prop::collection::vec(any::<u8>(), 64..300),
        extensions(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..700)) {
        let _ = TokenBindingMessage::decode(&bytes);
        let _ = TokenBindingIdRef::decode(&bytes);
        let _ = TokenBindingParameters::decode(&bytes);
        let _ = Extensions::from_bytes(&bytes);
        let _ = verify_header(&bytes, &Ekm::new([1; 32]), KeyParameters::ECDSAP256);
    }

    #[test]
    fn decode_never_panics_on_mutated_valid_messages(
        bindings in prop::collection::vec(binding(), 1..4),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode(&bindings);
        for (i, x) in flips {
            let at = i.index(bytes.len());
            bytes[at] ^= x;
        }
        let _ = TokenBindingMessage::decode(&bytes);
        let _ = TokenBindingMessage::decode(&bytes[..cut.index(bytes.len())]);
        let _ = verify_header(base64url::encode(&bytes).as_bytes(), &Ekm::new([1; 32]), KeyParameters::ECDSAP256);
    }

    #[test]
    fn encode_decode_round_trips(bindings in prop::collection::vec(binding(), 1..4)) {
        let bytes = encode(&bindings);
        let message = TokenBindingMessage::decode(&bytes).unwrap();
        prop_assert_eq!(message.bindings().len(), bindings.len());
        for (b, (t, id, sig, ext)) in message.bindings().iter().zip(&bindings) {
            prop_assert_eq!(u8::from(b.binding_type()), *t);
            prop_assert_eq!(b.id().as_bytes(), &id[..]);
            prop_assert_eq!(b.signature(), &sig[..]);
            prop_assert_eq!(b.extensions().as_bytes(), &ext[..]);
        }
        prop_assert_eq!(message.to_bytes(), bytes.clone());
        // And through the header encoding.
        let text = base64url::encode(&bytes);
        let again = base64url::decode(text.as_bytes()).unwrap();
        prop_assert_eq!(&again, &bytes);
    }

    #[test]
    fn parameters_round_trip(major: u8, minor: u8, kps in prop::collection::vec(any::<u8>(), 1..20)) {
        let kps: Vec<KeyParameters> = kps.into_iter().map(KeyParameters::from).collect();
        let p = TokenBindingParameters::new(tokbind_proto::ProtocolVersion::new(major, minor), &kps).unwrap();
        prop_assert_eq!(TokenBindingParameters::decode(&p.to_bytes()).unwrap(), p);
    }

    #[test]
    fn any_single_bit_flip_of_a_signed_header_is_refused(bit in 0usize..(139 * 8)) {
        let key = signing_key();
        let ekm = Ekm::new([9; 32]);
        let mut bytes = MessageBuilder::new(&ekm).provided(key).unwrap().to_bytes().unwrap();
        bytes[bit / 8] ^= 1 << (bit % 8);
        let result = verify_header(base64url::encode(&bytes).as_bytes(), &ekm, KeyParameters::ECDSAP256);
        prop_assert!(result.is_err(), "flipping bit {} was accepted", bit);
    }
}

fn signing_key() -> &'static SigningKey {
    static KEY: std::sync::OnceLock<SigningKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate(KeyParameters::ECDSAP256).unwrap())
}

fn encode(bindings: &[RawBinding]) -> Vec<u8> {
    let parts = bindings.iter().map(|(t, id, sig, ext)| {
        TokenBinding::new(
            TokenBindingType::from(*t),
            TokenBindingIdRef::decode(id).unwrap(),
            sig,
            Extensions::from_bytes(ext).unwrap(),
        )
        .unwrap()
    });
    TokenBindingMessage::new(parts).unwrap().to_bytes()
}
