//! `tokbind decode` / `tokbind verify` on every vector of the protocol crate's test data.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn tokbind(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tokbind"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn vectors() -> Value {
    serde_json::from_str(include_str!("../../tokbind-proto/tests/data/vectors.json")).unwrap()
}

fn kp_name(n: u64) -> &'static str {
    ["rsa2048_pkcs1.5", "rsa2048_pss", "ecdsap256"][n as usize]
}

#[test]
fn decode_prints_every_binding_of_every_spec_vector() {
    for v in vectors()["spec"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let out = tokbind(&["decode", v["header"].as_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{name}");
        assert!(out.stderr.is_empty(), "{name}");
        let json = stdout_json(&out);
        let bindings = json["bindings"].as_array().unwrap();
        for (got, want) in bindings.iter().zip(v["bindings"].as_array().unwrap()) {
            assert_eq!(got["tbid"], want["tbid"], "{name}");
            assert_eq!(got["tbh"], want["tbh"], "{name}");
            let kp = want["key_parameters"].as_u64().unwrap();
            if kp <= 2 {
                assert_eq!(got["key_parameters"], kp_name(kp), "{name}");
            } else {
                assert_eq!(got["key_parameters"], format!("unknown({kp})"), "{name}");
            }
            let t = want["type"].as_u64().unwrap();
            let t_name = match t {
                0 => "provided".to_string(),
                1 => "referred".to_string(),
                n => format!("unknown({n})"),
            };
            assert_eq!(got["type"], t_name.as_str(), "{name}");
            assert_eq!(got["extensions_len"], 0, "{name}");
        }
    }
}

#[test]
fn decode_output_has_the_documented_shape() {
    let h = "AIkAAgBBQFzK4_bhAqLDwRQxqJWte33d7hZ0hZWHwk-miKPg4E9fcgs7gBPoz-9RfuDfN9WCw6keHEw1ZPQMGs9CxpuHm-YAQM_jaOwwej6a-cQBGU7CJpUHOvXG4VvjNq8jDsvta9Y8_bPEPj25GgmKiPjhJEtZA6mJ_9SNifLvVBTi7fR9wSAAAA";
    let out = tokbind(&["decode", h]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        r#"{"bindings":[{"type":"provided","key_parameters":"ecdsap256","tbid":"AgBBQFzK4_bhAqLDwRQxqJWte33d7hZ0hZWHwk-miKPg4E9fcgs7gBPoz-9RfuDfN9WCw6keHEw1ZPQMGs9CxpuHm-Y","tbh":"3Wj4etWUwSPjHC1vDZYlLgAnS_7PEJFceNMBS9vJ3YI","signature_len":64,"extensions_len":0}]}"#
    );
}

#[test]
fn verify_gives_the_server_verdict_on_every_vector_with_an_ekm() {
    let data = vectors();
    let spec = data["spec"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["expect"] != "parse_only")
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                v["ekm"].as_str().unwrap().to_string(),
                v["negotiated"].as_u64().unwrap(),
                v["header"].as_str().unwrap().to_string(),
                v["expect"].as_str().unwrap().to_string(),
            )
        });
    let ping = data["pingidentity"].as_array().unwrap().iter().map(|c| {
        (
            c["test"].as_str().unwrap().to_string(),
            c["ekm"].as_str().unwrap().to_string(),
            c["negotiated"].as_u64().unwrap(),
            c["header"].as_str().unwrap().to_string(),
            c["expect"].as_str().unwrap().to_string(),
        )
    });
    let mut checked = 0;
    for (name, ekm, negotiated, header, expect) in spec.chain(ping) {
        let out = tokbind(&[
            "verify",
            "--ekm",
            &ekm,
            "--negotiated",
            kp_name(negotiated),
            &header,
        ]);
        checked += 1;
        if expect == "valid" {
            assert_eq!(
                out.status.code(),
                Some(0),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let json = stdout_json(&out);
            assert!(json["provided"]["tbid"].is_string(), "{name}");
            assert_eq!(
                json["provided"]["key_parameters"],
                kp_name(negotiated),
                "{name}"
            );
            assert!(json.as_object().unwrap().contains_key("referred"), "{name}");
        } else {
            assert_eq!(out.status.code(), Some(1), "{name}");
            assert!(out.stdout.is_empty(), "{name}");
            let err = String::from_utf8(out.stderr).unwrap();
            assert_eq!(err.lines().count(), 1, "{name}: one line: {err}");
            assert!(err.contains(&format!("({expect})")), "{name}: {err}");
        }
    }
    assert_eq!(checked, 24 + 40);
}

#[test]
fn verify_reports_referred_bindings_and_accepts_base64url_ekm_and_stdin() {
    // TTRP -09 §2.4.2: provided + referred; EKM given in base64url, header through stdin.
    let header = "ARIAAgBBQCfsI1D1sTq5mvT_2H_dihNIvuHJCHGjHPJchPavNbGrOo26-2JgT_IsbvZd4daDFbirYBIwJ-TK1rh8FzrC-psAQMyYIqXj7djGPev1dkjV9XxLYGCyqOrBVEtBHrMUCeo22ymLg3OiFcl_fmOPxJbjxI6lKcF0lyfy-dSQmPIezQ0AAAECAEFArPIiuZxj9gK0dWhIcG63r2-sZ8V3LX9gpNl8Um_oGOtmwoP1v0VHNIHEOzW3BOqcBLvUzVEG6a6KGEj3GrFcqQBAHQm0pzgUTXKLRamuKE1pmmP9I3UBVpoe1DBCe9H2l1VPpsImakUa6crAqZ-0CGBmji7bYzQogpKcyxTTFk5zdwAA";
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokbind"))
        .args([
            "verify",
            "--ekm",
            "wEWWCP1KPxfq-QL4NxYII_P4ti_9YYqrTpGs28BZEqE",
            "--negotiated",
            "ecdsap256",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "Sec-Token-Binding: {header}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let json = stdout_json(&out);
    assert_eq!(
        json["referred"]["tbh"],
        "suMuxh_IlrP-Zrj33LuQOQ5rX039cmBe-wt2df3BrUQ"
    );
    assert_eq!(
        json["provided"]["tbid"],
        "AgBBQCfsI1D1sTq5mvT_2H_dihNIvuHJCHGjHPJchPavNbGrOo26-2JgT_IsbvZd4daDFbirYBIwJ-TK1rh8FzrC-ps"
    );
}

#[test]
fn malformed_input_exits_1_usage_errors_exit_2() {
    for bad in ["AIkA=", "AAA", "not base64!", "AAAA"] {
        let out = tokbind(&["decode", bad]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(
            String::from_utf8(out.stderr)
                .unwrap()
                .starts_with("tokbind: malformed"),
            "{bad}"
        );
    }
    let h = "AIkAAgBBQGto7hHRR0Y5nkOWqc9KNfwW95dEFmSI_tCZ_Cbl7LWlt6Xjp3DbjiDJavGFiKP2HV_2JSE42VzmKOVVV8m7eqAAQOKiDK1Oi0z6v4X5BP7uc0pFestVZ42TTOdJmoHpji06Qq3jsCiCRSJx9ck2fWJYx8tLVXRZPATB3x6c24aY0ZEAAA";
    let ekm = "a7a66e4b07e5ea921ef1eb392b2795efa4f8b30666429d3f6b0776ee31dfadba";
    for args in [
        vec!["verify", "--ekm", "abcd", "--negotiated", "ecdsap256", h],
        vec!["verify", "--ekm", ekm, "--negotiated", "ecdsa", h],
        vec!["verify", "--ekm", ekm, h],
        vec!["decode"],
        vec!["decode", "   "],
        vec!["frobnicate"],
    ] {
        assert_eq!(tokbind(&args).status.code(), Some(2), "{args:?}");
    }
    // Same header, another negotiation: rejected, not a usage error.
    let out = tokbind(&["verify", "--ekm", ekm, "--negotiated", "rsa2048_pss", h]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("key_parameters_mismatch")
    );
}
