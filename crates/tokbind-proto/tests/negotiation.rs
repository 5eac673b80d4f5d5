//! RFC 8472: the `token_binding` extension codec and both sides' negotiation rules.

use tokbind_proto::negotiation::PolicyError;
use tokbind_proto::{
    ClientPolicy, HandshakeFacts, KeyParameters, Negotiated, NegotiationError, ProtocolVersion,
    ServerPolicy, TOKEN_BINDING_EXTENSION_TYPE, TokenBindingParameters,
};

const EC: KeyParameters = KeyParameters::ECDSAP256;
const PKCS1: KeyParameters = KeyParameters::RSA2048_PKCS1_5;
const PSS: KeyParameters = KeyParameters::RSA2048_PSS;

const TLS12_OK: HandshakeFacts = HandshakeFacts {
    tls13: false,
    extended_master_secret: true,
    renegotiation_indication: true,
};

fn params(major: u8, minor: u8, kps: &[KeyParameters]) -> TokenBindingParameters {
    TokenBindingParameters::new(ProtocolVersion::new(major, minor), kps).unwrap()
}

#[test]
fn parameters_are_built_only_in_the_sizes_the_extension_carries() {
    let v = ProtocolVersion::new(1, 0);
    assert!(TokenBindingParameters::new(v, &[]).is_err());
    let most: Vec<KeyParameters> = (0..=254u8).map(KeyParameters::new).collect();
    let p = TokenBindingParameters::new(v, &most).unwrap();
    assert_eq!(TokenBindingParameters::decode(&p.to_bytes()).unwrap(), p);
    let too_many: Vec<KeyParameters> = (0..=255u8).map(KeyParameters::new).collect();
    assert!(TokenBindingParameters::new(v, &too_many).is_err());
}

#[test]
fn extension_bytes_match_the_published_and_constructed_examples() {
    assert_eq!(TOKEN_BINDING_EXTENSION_TYPE, 24);
    // fizz's captured ServerHello extension: 0018 0004 000d 01 02.
    let fizz = hex::decode("00180004000d0102").unwrap();
    assert_eq!(
        u16::from_be_bytes([fizz[0], fizz[1]]),
        TOKEN_BINDING_EXTENSION_TYPE
    );
    let p = TokenBindingParameters::decode(&fizz[4..]).unwrap();
    assert_eq!(p, params(0, 13, &[EC]));
    assert_eq!(p.to_bytes(), &fizz[4..]);
    // RFC 8472 rules: ClientHello 1.0 offering ecdsap256 > rsa2048_pss > rsa2048_pkcs1.5,
    // ServerHello selecting ecdsap256.
    assert_eq!(
        ClientPolicy::default().client_hello_parameters().to_bytes(),
        hex::decode("0100030201 00".replace(' ', "")).unwrap()
    );
    let chosen = Negotiated {
        version: ProtocolVersion::V1_0,
        key_parameters: EC,
    };
    assert_eq!(
        chosen.to_parameters().to_bytes(),
        hex::decode("01000102").unwrap()
    );
}

#[test]
fn extension_decoding_is_strict() {
    let bad: &[&[u8]] = &[
        &[],
        &[1],
        &[1, 0],
        &[1, 0, 0],
        &[1, 0, 2, 2],
        &[1, 0, 1, 2, 0],
    ];
    for b in bad {
        assert!(TokenBindingParameters::decode(b).is_err(), "{b:?}");
    }
    // Unknown key parameters decode (and are ignored by negotiation).
    assert_eq!(
        TokenBindingParameters::decode(&[1, 0, 2, 0x99, 2]).unwrap(),
        params(1, 0, &[KeyParameters::new(0x99), EC])
    );
}

#[test]
fn server_selects_the_highest_supported_version_not_above_the_clients() {
    let strict = ServerPolicy::default();
    let drafts = ServerPolicy::default().with_draft_versions(true);
    let cases = [
        ((0, 9), None, None),
        ((0, 10), None, Some((0, 10))),
        ((0, 13), None, Some((0, 13))),
        ((0, 18), None, Some((0, 18))),
        ((0, 200), None, Some((0, 18))),
        ((1, 0), Some((1, 0)), Some((1, 0))),
        ((1, 1), Some((1, 0)), Some((1, 0))),
        ((2, 0), Some((1, 0)), Some((1, 0))),
    ];
    for ((ma, mi), want_strict, want_drafts) in cases {
        let offer = params(ma, mi, &[EC]);
        let v = |p: &ServerPolicy| {
            p.negotiate(&offer, &TLS12_OK)
                .map(|n| (n.version.major, n.version.minor))
        };
        assert_eq!(v(&strict), want_strict, "{ma}.{mi} strict");
        assert_eq!(v(&drafts), want_drafts, "{ma}.{mi} drafts");
    }
}

#[test]
fn server_preference_wins_over_client_order_and_unknowns_are_ignored() {
    let server = ServerPolicy::new(&[PSS, EC]).unwrap();
    let pick = |kps: &[KeyParameters]| {
        server
            .negotiate(&params(1, 0, kps), &TLS12_OK)
            .map(|n| n.key_parameters)
    };
    assert_eq!(pick(&[EC, PSS]), Some(PSS));
    assert_eq!(pick(&[EC, PKCS1]), Some(EC));
    assert_eq!(pick(&[KeyParameters::new(7), EC]), Some(EC));
    assert_eq!(
        pick(&[PKCS1]),
        None,
        "no common key parameters: omit the extension"
    );
    assert_eq!(pick(&[KeyParameters::new(7)]), None);
}

#[test]
fn server_omits_token_binding_without_ems_and_ri_on_tls12_only() {
    let server = ServerPolicy::default();
    let offer = params(1, 0, &[EC]);
    for (ems, ri) in [(false, true), (true, false), (false, false)] {
        let tls12 = HandshakeFacts {
            tls13: false,
            extended_master_secret: ems,
            renegotiation_indication: ri,
        };
        assert_eq!(server.negotiate(&offer, &tls12), None, "ems={ems} ri={ri}");
        let tls13 = HandshakeFacts {
            tls13: true,
            ..tls12
        };
        assert!(
            server.negotiate(&offer, &tls13).is_some(),
            "TLS 1.3 has no EMS/RI rule"
        );
    }
}

#[test]
fn client_aborts_on_every_rfc8472_section4_violation() {
    let client = ClientPolicy::new(&[EC, PSS]).unwrap();
    let answer =
        |p: TokenBindingParameters, facts| client.process_server_parameters(&p.to_bytes(), &facts);
    assert_eq!(
        answer(params(1, 0, &[PSS]), TLS12_OK),
        Ok(Some(Negotiated {
            version: ProtocolVersion::V1_0,
            key_parameters: PSS
        }))
    );
    assert_eq!(
        answer(params(1, 1, &[EC]), TLS12_OK),
        Err(NegotiationError::VersionTooHigh {
            offered: ProtocolVersion::V1_0,
            selected: ProtocolVersion::new(1, 1)
        })
    );
    assert_eq!(
        answer(params(1, 0, &[EC, PSS]), TLS12_OK),
        Err(NegotiationError::NotExactlyOneKeyParameter(2))
    );
    assert_eq!(
        answer(params(1, 0, &[PKCS1]), TLS12_OK),
        Err(NegotiationError::KeyParametersNotOffered(PKCS1))
    );
    let no_ems = HandshakeFacts {
        extended_master_secret: false,
        ..TLS12_OK
    };
    assert_eq!(
        answer(params(1, 0, &[EC]), no_ems),
        Err(NegotiationError::MissingEmsOrRenegotiationIndication)
    );
    let no_ri = HandshakeFacts {
        renegotiation_indication: false,
        ..TLS12_OK
    };
    assert_eq!(
        answer(params(1, 0, &[EC]), no_ri),
        Err(NegotiationError::MissingEmsOrRenegotiationIndication)
    );
    let tls13 = HandshakeFacts {
        tls13: true,
        extended_master_secret: false,
        renegotiation_indication: false,
    };
    assert!(answer(params(1, 0, &[EC]), tls13).unwrap().is_some());
    assert!(matches!(
        client.process_server_parameters(&[1, 0, 0], &TLS12_OK),
        Err(NegotiationError::Malformed(_))
    ));
    assert!(matches!(
        client.process_server_parameters(&[1, 0, 1, 2, 9], &TLS12_OK),
        Err(NegotiationError::Malformed(_))
    ));
}

#[test]
fn client_continues_without_token_binding_on_an_unsupported_lower_version() {
    let client = ClientPolicy::default();
    assert_eq!(
        client.process_server_parameters(&params(0, 13, &[EC]).to_bytes(), &TLS12_OK),
        Ok(None)
    );
    let lenient =
        ClientPolicy::default().with_versions(ProtocolVersion::V1_0, ProtocolVersion::OLDEST_DRAFT);
    assert_eq!(
        lenient.process_server_parameters(&params(0, 13, &[EC]).to_bytes(), &TLS12_OK),
        Ok(Some(Negotiated {
            version: ProtocolVersion::new(0, 13),
            key_parameters: EC
        }))
    );
}

#[test]
fn client_and_server_agree_end_to_end() {
    for server_kps in [&[EC][..], &[PSS], &[PKCS1], &[PKCS1, EC]] {
        let server = ServerPolicy::new(server_kps).unwrap();
        let client = ClientPolicy::default();
        let chosen = server
            .negotiate(&client.client_hello_parameters(), &TLS12_OK)
            .unwrap();
        assert_eq!(chosen.key_parameters, server_kps[0]);
        let seen = client
            .process_server_parameters(&chosen.to_parameters().to_bytes(), &TLS12_OK)
            .unwrap();
        assert_eq!(seen, Some(chosen));
    }
}

#[test]
fn policies_refuse_nonsense() {
    assert_eq!(ServerPolicy::new(&[]), Err(PolicyError::Empty));
    assert_eq!(
        ServerPolicy::new(&[EC, EC]),
        Err(PolicyError::Duplicate(EC))
    );
    assert_eq!(
        ClientPolicy::new(&[KeyParameters::new(9)]),
        Err(PolicyError::Unsupported(KeyParameters::new(9)))
    );
    assert_eq!("1.0".parse::<ProtocolVersion>(), Ok(ProtocolVersion::V1_0));
    assert_eq!(ProtocolVersion::new(0, 18).to_string(), "0.18");
    assert!("1".parse::<ProtocolVersion>().is_err());
}
