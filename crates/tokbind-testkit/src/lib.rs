//! What the workspace's tests and fuzz targets share (never published):
//!
//! * [`DbscBrowser`]: a DBSC browser's session key and the proofs it signs, byte for byte
//!   as Chromium 156 signs them;
//! * [`cookie_oracle`]: arbitrary `Cookie` headers through the README's stack, read by every
//!   parser applications use, and the invariant they must keep;
//! * [`counters`]: the layers' counters (their `metrics` feature), read back from a
//!   recorder of the test's own.

pub mod cookie_oracle;
pub mod counters;
mod dbsc_browser;

pub use dbsc_browser::DbscBrowser;
