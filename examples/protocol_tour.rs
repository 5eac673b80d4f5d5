//! A tour of the protocol core, no network: negotiate, sign, verify, and watch the attacks
//! Token Binding exists for fail.
//!
//! `cargo run --release --example protocol_tour`

use tokbind::proto::{
    ClientPolicy, Ekm, HandshakeFacts, KeyParameters, MessageBuilder, ServerPolicy, SigningKey,
    TokenBindingSigner, verify_header,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let facts = HandshakeFacts {
        tls13: false,
        extended_master_secret: true,
        renegotiation_indication: true,
    };
    let mut failures = 0;
    let mut expect = |what: &str, ok: bool| {
        println!("  [{}] {what}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failures += 1;
        }
    };

    for kp in KeyParameters::PREFERENCE {
        println!("\n== {kp}");
        // RFC 8472: the client offers, the server chooses, the client checks the answer.
        let client = ClientPolicy::new(&[kp])?;
        let server = ServerPolicy::default();
        let chosen = server
            .negotiate(&client.client_hello_parameters(), &facts)
            .ok_or("not negotiated")?;
        let seen = client.process_server_parameters(&chosen.to_parameters().to_bytes(), &facts)?;
        expect(
            &format!(
                "negotiated Token Binding {} with {}",
                chosen.version, chosen.key_parameters
            ),
            seen == Some(chosen),
        );

        // RFC 8471: the client signs type ‖ key_parameters ‖ EKM with its key for this server.
        // (Here the EKM is random bytes standing in for the TLS exporter output.)
        let ekm = Ekm::new(random32(1));
        let key = SigningKey::generate(kp)?;
        let header = MessageBuilder::new(&ekm)
            .provided(&key)?
            .to_header_value()?;
        println!("  Sec-Token-Binding: {}…", &header[..48]);

        let verified = verify_header(header.as_bytes(), &ekm, chosen.key_parameters)?;
        expect(
            &format!(
                "server verified the provided binding, tbh {}",
                verified.provided.tbh()
            ),
            verified.provided == *key.token_binding_id(),
        );

        let replayed = verify_header(
            header.as_bytes(),
            &Ekm::new(random32(2)),
            chosen.key_parameters,
        );
        expect(
            &format!(
                "the same header on another connection is refused ({})",
                reason(&replayed)
            ),
            reason(&replayed) == "invalid_signature",
        );

        let thief = SigningKey::generate(kp)?;
        let forged = MessageBuilder::new(&ekm)
            .provided(&thief)?
            .to_header_value()?;
        let theirs = verify_header(forged.as_bytes(), &ekm, chosen.key_parameters)?;
        expect(
            "another key on the same connection proves another ID (a cookie bound to the first is useless to it)",
            theirs.provided != verified.provided,
        );
    }

    println!();
    if failures == 0 {
        println!("all steps behaved as expected");
        Ok(())
    } else {
        Err(format!("{failures} step(s) did not behave as expected").into())
    }
}

fn reason<T>(r: &Result<T, tokbind::proto::HeaderError>) -> &'static str {
    match r {
        Ok(_) => "accepted",
        Err(e) => e.reason(),
    }
}

/// Fresh bytes per run: a throwaway key's TBID hash is as good a random source as any here.
fn random32(salt: u8) -> [u8; 32] {
    let key = SigningKey::generate(KeyParameters::ECDSAP256).expect("key generation");
    let mut out = key.token_binding_id().tbh().0;
    out[0] ^= salt;
    out
}
