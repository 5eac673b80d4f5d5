//! What the workspace's benchmarks share (a dev-dependency only, never published).
//!
//! Every ratio in BENCHMARKS.md is measured the same way: [`paired_median`] alternates
//! short batches of the baseline and of the measured path, so that drift in the machine's
//! speed (frequency, other load) hits both sides alike, and reports the median of the
//! per-round ratios. Criterion measures two benchmarks minutes apart, and on a small shared
//! machine that drift alone can exceed the difference being measured.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::time::Instant;

use tokbind_proto::{ConnectionInfo, Ekm, KeyParameters, Negotiated, ProtocolVersion, TlsVersion};

/// Which side of a paired measurement a call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The floor the ratio is relative to.
    Baseline,
    /// The path being measured.
    Measured,
}

/// The median, over `rounds`, of (time of `batch` calls of `run(Measured)`) ÷ (time of
/// `batch` calls of `run(Baseline)`), the two batches run back to back in each round. One
/// closure runs both sides, so both may use the same mutable fixture.
pub fn paired_median(rounds: usize, batch: u32, mut run: impl FnMut(Side)) -> f64 {
    let mut time = |side| {
        let t = Instant::now();
        for _ in 0..batch {
            run(side);
        }
        t.elapsed().as_secs_f64()
    };
    let mut ratios = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let base = time(Side::Baseline);
        ratios.push(time(Side::Measured) / base);
    }
    ratios.sort_by(f64::total_cmp);
    ratios[rounds / 2]
}

/// A TLS 1.2 connection with Extended Master Secret that negotiated Token Binding 1.0 with
/// ecdsap256 and exported `ekm`: what the TLS listener puts in every request's extensions.
pub fn bound_connection(ekm: [u8; 32]) -> ConnectionInfo {
    ConnectionInfo::with_token_binding(
        TlsVersion::Tls12,
        true,
        false,
        Negotiated {
            version: ProtocolVersion::V1_0,
            key_parameters: KeyParameters::ECDSAP256,
        },
        Ekm::new(ekm),
    )
}
