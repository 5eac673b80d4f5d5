//! `cargo bench -p tokbind-proto --bench verify`
//!
//! For each key parameter: `raw_*` is the signature check alone with the backend (the key
//! already parsed) — the floor; `header_provided_*` is the whole per-request server path
//! for a one-binding `Sec-Token-Binding` value (base64url decode, strict parse, validation,
//! key import, signature check). The ratio of the two, printed at the end, is the overhead
//! of everything that is not the signature check (goal P1: ≤ 1.10 for ecdsap256).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group};
use tokbind_bench::Side;
use tokbind_proto::{
    Ekm, KeyParameters, MessageBuilder, PreparedKey, SigningKey, TokenBindingMessage,
    TokenBindingType, base64url, verify_header,
};

struct Case {
    name: &'static str,
    kp: KeyParameters,
}

const CASES: [Case; 3] = [
    Case {
        name: "p256",
        kp: KeyParameters::ECDSAP256,
    },
    Case {
        name: "rsa2048_pss",
        kp: KeyParameters::RSA2048_PSS,
    },
    Case {
        name: "rsa2048_pkcs1_5",
        kp: KeyParameters::RSA2048_PKCS1_5,
    },
];

fn verify(c: &mut Criterion) {
    let ekm = Ekm::new([0x5a; 32]);
    let mut group = c.benchmark_group("verify");
    for case in &CASES {
        let key = SigningKey::generate(case.kp).unwrap();
        let header = MessageBuilder::new(&ekm)
            .provided(&key)
            .unwrap()
            .to_header_value()
            .unwrap();

        let bytes = base64url::decode(header.as_bytes()).unwrap();
        let message = TokenBindingMessage::decode(&bytes).unwrap();
        let binding = message.bindings()[0];
        let prepared = PreparedKey::new(&binding.id()).unwrap();
        let input = ekm.signed_input(TokenBindingType::PROVIDED, case.kp);
        assert!(prepared.verify(&input, binding.signature()));
        assert!(verify_header(header.as_bytes(), &ekm, case.kp).is_ok());

        group.bench_function(format!("raw_{}", case.name), |b| {
            b.iter(|| prepared.verify(black_box(&input), black_box(binding.signature())))
        });
        group.bench_function(format!("header_provided_{}", case.name), |b| {
            b.iter(|| verify_header(black_box(header.as_bytes()), &ekm, case.kp).unwrap())
        });
    }
    // The server verifies one header per new connection, between handshakes that fill the
    // caches with other work: the same path with the caches evicted before each call (the
    // eviction untimed). Its ratio to `header_provided_p256` is what a cold verification
    // costs over the hot loop above (BENCHMARKS.md, P3).
    group.bench_function("header_provided_p256_cold", |b| {
        let header = p256_header(&ekm);
        let mut evict = vec![0u8; EVICT_BYTES];
        b.iter_custom(|iters| {
            let mut timed = std::time::Duration::ZERO;
            for i in 0..iters {
                evict_caches(&mut evict, i);
                let started = std::time::Instant::now();
                black_box(
                    verify_header(black_box(header.as_bytes()), &ekm, KeyParameters::ECDSAP256)
                        .unwrap(),
                );
                timed += started.elapsed();
            }
            timed
        })
    });
    group.bench_function("decode_only_p256", |b| {
        let header = p256_header(&ekm);
        b.iter(|| {
            let mut buf = smallvec_buf();
            tokbind_proto::header::decode_header(black_box(header.as_bytes()), &mut buf)
                .map(|m| m.bindings().len())
                .unwrap()
        })
    });
    group.bench_function("encode_p256", |b| {
        let key = SigningKey::generate(KeyParameters::ECDSAP256).unwrap();
        let bytes = MessageBuilder::new(&ekm)
            .provided(&key)
            .unwrap()
            .to_bytes()
            .unwrap();
        let message = TokenBindingMessage::decode(&bytes).unwrap();
        let mut out = Vec::with_capacity(bytes.len());
        b.iter(|| {
            out.clear();
            black_box(&message).encode(&mut out);
            out.len()
        })
    });
    group.finish();
}

/// More than this machine's last-level cache (8 MiB on the benchmark machine).
const EVICT_BYTES: usize = 32 << 20;

/// Writes a byte in every cache line of `buf`, pushing everything else out of the caches.
fn evict_caches(buf: &mut [u8], round: u64) {
    for line in buf.chunks_mut(64) {
        line[0] = line[0].wrapping_add(round as u8);
    }
    black_box(&buf[0]);
}

/// A one-binding `Sec-Token-Binding` value over `ekm`, from a new P-256 key.
fn p256_header(ekm: &Ekm) -> String {
    let key = SigningKey::generate(KeyParameters::ECDSAP256).unwrap();
    MessageBuilder::new(ekm)
        .provided(&key)
        .unwrap()
        .to_header_value()
        .unwrap()
}

fn smallvec_buf() -> smallvec::SmallVec<[u8; tokbind_proto::header::INLINE_MESSAGE_LEN]> {
    smallvec::SmallVec::new()
}

criterion_group!(benches, verify);

/// Median time of one benchmark from criterion's estimates of this run.
fn median_ns(id: &str) -> Option<f64> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let path = target
        .join("criterion/verify")
        .join(id)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// The ratio header/raw, in alternating batches ([`tokbind_bench::paired_median`]):
/// criterion's two separate measurements drift apart by more than the 10% being measured.
fn paired_ratio(kp: KeyParameters) -> f64 {
    let ekm = Ekm::new([0x5a; 32]);
    let key = SigningKey::generate(kp).unwrap();
    let header = MessageBuilder::new(&ekm)
        .provided(&key)
        .unwrap()
        .to_header_value()
        .unwrap();
    let bytes = base64url::decode(header.as_bytes()).unwrap();
    let message = TokenBindingMessage::decode(&bytes).unwrap();
    let binding = message.bindings()[0];
    let prepared = PreparedKey::new(&binding.id()).unwrap();
    let input = ekm.signed_input(TokenBindingType::PROVIDED, kp);
    tokbind_bench::paired_median(60, 100, |side| match side {
        Side::Baseline => {
            assert!(prepared.verify(black_box(&input), black_box(binding.signature())))
        }
        Side::Measured => {
            black_box(verify_header(black_box(header.as_bytes()), &ekm, kp).unwrap());
        }
    })
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }

    println!("\nfull header path vs raw signature check, same run (goal P1: p256 ratio <= 1.10)");
    println!(
        "  {:<16} {:>12} {:>12} {:>16} {:>14}",
        "key parameters", "raw (med)", "header (med)", "criterion ratio", "paired ratio"
    );
    for case in &CASES {
        let raw = median_ns(&format!("raw_{}", case.name)).unwrap_or(f64::NAN);
        let full = median_ns(&format!("header_provided_{}", case.name)).unwrap_or(f64::NAN);
        println!(
            "  {:<16} {:>9.2} µs {:>9.2} µs {:>16.3} {:>14.3}",
            case.name,
            raw / 1000.0,
            full / 1000.0,
            full / raw,
            paired_ratio(case.kp)
        );
    }
    let hot = median_ns("header_provided_p256").unwrap_or(f64::NAN);
    let cold = median_ns("header_provided_p256_cold").unwrap_or(f64::NAN);
    println!(
        "\nthe p256 header path with the caches evicted first: {:.2} µs, {:.2}x the hot loop's {:.2} µs",
        cold / 1000.0,
        cold / hot,
        hot / 1000.0
    );
}
