//! The `token_binding` TLS extension (RFC 8472) and the pure logic of negotiating a
//! protocol version and key parameters with it. The TLS crate calls into this from its
//! handshake callbacks; nothing here touches a socket.
//!
//! ```text
//! struct {
//!     TB_ProtocolVersion token_binding_version;   // major, minor
//!     TokenBindingKeyParameters key_parameters_list<1..2^8-1>;
//! } TokenBindingParameters;
//! ```
//!
//! The same structure travels in the ClientHello (the client's highest version and its key
//! parameters by preference) and in the ServerHello — TLS 1.3: EncryptedExtensions,
//! draft-ietf-tokbind-tls13 §2 — (the chosen version and exactly one key parameter).

use core::fmt;
use core::str::FromStr;

use smallvec::SmallVec;

use crate::codec::{DecodeError, Reader, put_vec_u8};
use crate::registry::KeyParameters;

/// TLS ExtensionType of `token_binding` (RFC 8472 §2, IANA).
pub const TOKEN_BINDING_EXTENSION_TYPE: u16 = 24;

/// `TB_ProtocolVersion`. Versions compare as the 16-bit number `major << 8 | minor`
/// (RFC 8472 §2), which is what the derived ordering does.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion {
    /// `major`.
    pub major: u8,
    /// `minor`.
    pub minor: u8,
}

impl ProtocolVersion {
    /// Token Binding 1.0 (RFC 8471 §2).
    pub const V1_0: Self = Self::new(1, 0);
    /// Oldest prototype version with the final wire format (`{0, 10}`: draft-ietf-tokbind-protocol-10 and later sign the same bytes).
    pub const OLDEST_DRAFT: Self = Self::new(0, 10);
    /// Newest prototype version (`{0, 18}`, google/token_bind).
    pub const NEWEST_DRAFT: Self = Self::new(0, 18);

    /// A version from its two bytes.
    pub const fn new(major: u8, minor: u8) -> Self {
        Self { major, minor }
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl fmt::Debug for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for ProtocolVersion {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (major, minor) = s.split_once('.').ok_or("expected MAJOR.MINOR, e.g. 1.0")?;
        let parse = |p: &str| p.parse::<u8>().map_err(|_| "version parts are 0..=255");
        Ok(Self::new(parse(major)?, parse(minor)?))
    }
}

/// `TokenBindingParameters`: the extension's data.
///
/// The fields are private so that every value fits `key_parameters_list<1..2^8-1>`: it is
/// either decoded or built by [`TokenBindingParameters::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBindingParameters {
    version: ProtocolVersion,
    key_parameters: SmallVec<[KeyParameters; 4]>,
}

impl TokenBindingParameters {
    /// Extension data from its parts: 1 to 255 key parameters, in the sender's order of
    /// preference (duplicates and unknown values are the receiver's to judge).
    pub fn new(
        version: ProtocolVersion,
        key_parameters: &[KeyParameters],
    ) -> Result<Self, DecodeError> {
        if key_parameters.is_empty() || key_parameters.len() > usize::from(u8::MAX) {
            return Err(Reader::invalid(
                2,
                "key_parameters_list",
                "1 to 255 key parameters are required",
            ));
        }
        Ok(Self {
            version,
            key_parameters: SmallVec::from_slice(key_parameters),
        })
    }

    /// `token_binding_version`.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// `key_parameters_list`, in the sender's order of preference.
    pub fn key_parameters(&self) -> &[KeyParameters] {
        &self.key_parameters
    }

    /// Decode the extension data strictly (non-empty list, no trailing bytes).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let major = r.u8("TB_ProtocolVersion.major")?;
        let minor = r.u8("TB_ProtocolVersion.minor")?;
        let at = r.offset();
        let list = r.vec_u8("key_parameters_list")?;
        if list.is_empty() {
            return Err(Reader::invalid(
                at,
                "key_parameters_list",
                "at least one key parameter is required",
            ));
        }
        r.expect_end("TokenBindingParameters")?;
        Ok(Self {
            version: ProtocolVersion::new(major, minor),
            key_parameters: list.iter().copied().map(KeyParameters::from).collect(),
        })
    }

    /// Append the extension data to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.version.major);
        out.push(self.version.minor);
        let list: SmallVec<[u8; 4]> = self.key_parameters.iter().map(|k| u8::from(*k)).collect();
        put_vec_u8(out, &list);
    }

    /// The extension data as a fresh vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + self.key_parameters.len());
        self.encode(&mut out);
        out
    }
}

/// What a handshake settled on when Token Binding was negotiated. Definitive for the
/// connection: the provided binding MUST use these key parameters (RFC 8472 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Negotiated {
    /// The Token Binding protocol version.
    pub version: ProtocolVersion,
    /// The one key parameter the server selected.
    pub key_parameters: KeyParameters,
}

impl Negotiated {
    /// The server's extension data announcing this choice.
    pub fn to_parameters(&self) -> TokenBindingParameters {
        TokenBindingParameters {
            version: self.version,
            key_parameters: SmallVec::from_slice(&[self.key_parameters]),
        }
    }
}

/// Facts about the rest of the TLS handshake that RFC 8472 makes Token Binding depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HandshakeFacts {
    /// The connection uses TLS 1.3 (the EMS and RI rules do not apply, draft-ietf-tokbind-tls13).
    pub tls13: bool,
    /// Extended Master Secret (RFC 7627) was negotiated.
    pub extended_master_secret: bool,
    /// Renegotiation indication (RFC 5746: the extension or the SCSV) was negotiated.
    pub renegotiation_indication: bool,
}

impl HandshakeFacts {
    /// Whether Token Binding may be negotiated at all: always on TLS 1.3, and on TLS ≤ 1.2
    /// only with both EMS and RI (RFC 8472 §3, RFC 8471 §7.5 — triple-handshake defence).
    pub fn permits_token_binding(&self) -> bool {
        self.tls13 || (self.extended_master_secret && self.renegotiation_indication)
    }
}

/// A policy could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// No key parameters were given.
    #[error("at least one key parameter is required")]
    Empty,
    /// A key parameter this implementation cannot verify or sign.
    #[error("key parameters {0} are not supported")]
    Unsupported(KeyParameters),
    /// The same key parameter twice.
    #[error("key parameters {0} listed twice")]
    Duplicate(KeyParameters),
    /// More key parameters than the extension can carry.
    #[error("at most 255 key parameters")]
    TooMany,
}

fn checked_list(list: &[KeyParameters]) -> Result<Vec<KeyParameters>, PolicyError> {
    if list.is_empty() {
        return Err(PolicyError::Empty);
    }
    if list.len() > 255 {
        return Err(PolicyError::TooMany);
    }
    for (i, kp) in list.iter().enumerate() {
        if !kp.is_known() {
            return Err(PolicyError::Unsupported(*kp));
        }
        if list[..i].contains(kp) {
            return Err(PolicyError::Duplicate(*kp));
        }
    }
    Ok(list.to_vec())
}

/// The server's side of RFC 8472 §3: which versions and key parameters it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPolicy {
    key_parameters: Vec<KeyParameters>,
    accept_draft_versions: bool,
}

impl Default for ServerPolicy {
    /// All three key parameters (ecdsap256 preferred), version 1.0 only.
    fn default() -> Self {
        Self {
            key_parameters: KeyParameters::PREFERENCE.to_vec(),
            accept_draft_versions: false,
        }
    }
}

impl ServerPolicy {
    /// Accept `key_parameters`, most preferred first.
    pub fn new(key_parameters: &[KeyParameters]) -> Result<Self, PolicyError> {
        Ok(Self {
            key_parameters: checked_list(key_parameters)?,
            accept_draft_versions: false,
        })
    }

    /// Also accept the prototype versions 0.10 to 0.18, whose wire format equals 1.0's
    /// (off by default: no current client sends them).
    pub fn with_draft_versions(mut self, accept: bool) -> Self {
        self.accept_draft_versions = accept;
        self
    }

    /// The accepted key parameters, most preferred first.
    pub fn key_parameters(&self) -> &[KeyParameters] {
        &self.key_parameters
    }

    /// The highest supported version not above the client's (RFC 8472 §3), if any.
    pub fn select_version(&self, client: ProtocolVersion) -> Option<ProtocolVersion> {
        if client >= ProtocolVersion::V1_0 {
            Some(ProtocolVersion::V1_0)
        } else if self.accept_draft_versions && client >= ProtocolVersion::OLDEST_DRAFT {
            Some(client.min(ProtocolVersion::NEWEST_DRAFT))
        } else {
            None
        }
    }

    /// Decide on a ClientHello's `token_binding` extension (RFC 8472 §3). `None` means:
    /// omit the extension from the ServerHello; the handshake continues without Token
    /// Binding. That happens when EMS or RI is missing on TLS ≤ 1.2, when no version fits,
    /// and when the client offers no key parameter the server accepts (unknown ones are
    /// ignored). The key parameter chosen is the server's most preferred one among the
    /// client's.
    pub fn negotiate(
        &self,
        client: &TokenBindingParameters,
        facts: &HandshakeFacts,
    ) -> Option<Negotiated> {
        if !facts.permits_token_binding() {
            return None;
        }
        let version = self.select_version(client.version)?;
        let key_parameters = *self
            .key_parameters
            .iter()
            .find(|kp| client.key_parameters.contains(kp))?;
        Some(Negotiated {
            version,
            key_parameters,
        })
    }
}

/// The client's side of RFC 8472 §2 and §4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPolicy {
    version: ProtocolVersion,
    lowest_version: ProtocolVersion,
    key_parameters: Vec<KeyParameters>,
}

impl Default for ClientPolicy {
    /// Offer version 1.0 with all three key parameters, ecdsap256 first.
    fn default() -> Self {
        Self {
            version: ProtocolVersion::V1_0,
            lowest_version: ProtocolVersion::V1_0,
            key_parameters: KeyParameters::PREFERENCE.to_vec(),
        }
    }
}

impl ClientPolicy {
    /// Offer `key_parameters`, most preferred first, with version 1.0.
    pub fn new(key_parameters: &[KeyParameters]) -> Result<Self, PolicyError> {
        Ok(Self {
            key_parameters: checked_list(key_parameters)?,
            ..Self::default()
        })
    }

    /// Advertise `version` instead of 1.0, and accept answers down to `lowest`.
    pub fn with_versions(mut self, version: ProtocolVersion, lowest: ProtocolVersion) -> Self {
        self.version = version;
        self.lowest_version = lowest.min(version);
        self
    }

    /// The ClientHello extension data.
    pub fn client_hello_parameters(&self) -> TokenBindingParameters {
        TokenBindingParameters {
            version: self.version,
            key_parameters: self.key_parameters.iter().copied().collect(),
        }
    }

    /// Process the server's `token_binding` extension data (RFC 8472 §4).
    ///
    /// `Err` means the client MUST abort the handshake with a fatal `unsupported_extension`
    /// alert. `Ok(None)` means the server chose a lower version the client does not
    /// support: the connection continues without Token Binding. Call this only when the
    /// client offered the extension; a server extension the client did not solicit is
    /// [`NegotiationError::Unsolicited`].
    pub fn process_server_parameters(
        &self,
        data: &[u8],
        facts: &HandshakeFacts,
    ) -> Result<Option<Negotiated>, NegotiationError> {
        let server = TokenBindingParameters::decode(data).map_err(NegotiationError::Malformed)?;
        if server.version > self.version {
            return Err(NegotiationError::VersionTooHigh {
                offered: self.version,
                selected: server.version,
            });
        }
        let [key_parameters] = server.key_parameters[..] else {
            return Err(NegotiationError::NotExactlyOneKeyParameter(
                server.key_parameters.len(),
            ));
        };
        if !self.key_parameters.contains(&key_parameters) {
            return Err(NegotiationError::KeyParametersNotOffered(key_parameters));
        }
        if !facts.permits_token_binding() {
            return Err(NegotiationError::MissingEmsOrRenegotiationIndication);
        }
        if server.version < self.lowest_version {
            return Ok(None);
        }
        Ok(Some(Negotiated {
            version: server.version,
            key_parameters,
        }))
    }
}

/// The server's answer breaks RFC 8472 §4: the client aborts the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// The server sent `token_binding` although the client did not offer it.
    #[error("server sent token_binding without the client offering it")]
    Unsolicited,
    /// The extension data is malformed.
    #[error("malformed token_binding extension: {0}")]
    Malformed(DecodeError),
    /// The server chose a version above the one the client offered.
    #[error("server selected Token Binding {selected}, above the offered {offered}")]
    VersionTooHigh {
        /// The client's version.
        offered: ProtocolVersion,
        /// The server's version.
        selected: ProtocolVersion,
    },
    /// The server's list does not hold exactly one key parameter.
    #[error("server selected {0} key parameters; exactly one is required")]
    NotExactlyOneKeyParameter(usize),
    /// The server selected key parameters the client did not offer.
    #[error("server selected key parameters {0}, which the client did not offer")]
    KeyParametersNotOffered(KeyParameters),
    /// TLS ≤ 1.2 without both Extended Master Secret and renegotiation indication.
    #[error(
        "Token Binding on TLS 1.2 requires Extended Master Secret and renegotiation indication"
    )]
    MissingEmsOrRenegotiationIndication,
}
