//! The Exported Keying Material every Token Binding signature covers (RFC 8471 §3.3).

use core::fmt;

use zeroize::Zeroize;

use crate::registry::{KeyParameters, TokenBindingType};

/// The RFC 5705 / RFC 8446 §7.5 exporter label (RFC 8471 §3.3, §6.4). No context is used.
pub const EXPORTER_LABEL: &str = "EXPORTER-Token-Binding";

/// Length of the exported keying material, in bytes.
pub const EKM_LEN: usize = 32;

/// Length of the signed input: `tokenbinding_type(1) ‖ key_parameters(1) ‖ EKM(32)`.
pub const SIGNED_INPUT_LEN: usize = 2 + EKM_LEN;

/// 32 bytes exported from the TLS connection with label [`EXPORTER_LABEL`] and no context.
///
/// Anyone who knows a connection's EKM can check — and a client holding the key can make —
/// signatures bound to that connection, so the value is zeroized on drop and never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Ekm([u8; EKM_LEN]);

impl Ekm {
    /// Wrap exported bytes.
    pub fn new(bytes: [u8; EKM_LEN]) -> Self {
        Self(bytes)
    }

    /// Fill a new EKM in place with `export` (e.g. a TLS library's exporter), so the bytes
    /// never exist outside this zeroizing type.
    pub fn export_with<E>(
        export: impl FnOnce(&mut [u8; EKM_LEN]) -> Result<(), E>,
    ) -> Result<Self, E> {
        let mut ekm = Self([0; EKM_LEN]);
        export(&mut ekm.0)?;
        Ok(ekm)
    }

    /// Wrap exported bytes given as a slice; `None` unless exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; EKM_LEN] {
        &self.0
    }

    /// The bytes a binding's signature covers: `type ‖ key_parameters ‖ EKM` (RFC 8471
    /// §3.3). Nothing else is signed — not the key, not the version, not the extensions.
    pub fn signed_input(
        &self,
        binding_type: TokenBindingType,
        key_parameters: KeyParameters,
    ) -> [u8; SIGNED_INPUT_LEN] {
        let mut out = [0u8; SIGNED_INPUT_LEN];
        out[0] = u8::from(binding_type);
        out[1] = u8::from(key_parameters);
        out[2..].copy_from_slice(&self.0);
        out
    }
}

impl Drop for Ekm {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Ekm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ekm(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_input_is_type_then_key_parameters_then_ekm() {
        let ekm = Ekm::new([7; 32]);
        let input = ekm.signed_input(TokenBindingType::new(0x4d), KeyParameters::ECDSAP256);
        assert_eq!(&input[..2], &[0x4d, 0x02]);
        assert_eq!(&input[2..], &[7; 32]);
        assert_eq!(format!("{ekm:?}"), "Ekm(<redacted>)");
        assert!(Ekm::from_slice(&[0; 31]).is_none());
    }
}
