//! Self-signed certificates for demos and tests.

use std::net::IpAddr;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509NameBuilder};

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct SelfSigned {
    /// The certificate (PEM). Give it to clients as their only trusted root.
    pub cert_pem: Vec<u8>,
    /// The P-256 private key (PKCS#8 PEM).
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for SelfSigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfSigned").finish_non_exhaustive()
    }
}

impl SelfSigned {
    /// A fresh P-256 certificate valid for 30 days for `names` (DNS names or IP addresses;
    /// the first is also the subject's common name).
    pub fn generate(names: &[&str]) -> Result<Self, ErrorStack> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
        let mut serial = BigNum::new()?;
        serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
        // A unique subject (and a key identifier): trust stores find issuers by name, so
        // two self-signed certificates both named "localhost" would shadow each other.
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(
            Nid::COMMONNAME,
            names.first().copied().unwrap_or("localhost"),
        )?;
        let unique = format!("tokbind self-signed {}", serial.to_hex_str()?);
        name.append_entry_by_nid(Nid::ORGANIZATIONNAME, &unique)?;
        let name = name.build();

        let mut b = X509::builder()?;
        b.set_version(2)?;
        let serial = serial.to_asn1_integer()?;
        b.set_serial_number(&serial)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(&name)?;
        b.set_pubkey(&key)?;
        let (not_before, not_after) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(30)?);
        b.set_not_before(&not_before)?;
        b.set_not_after(&not_after)?;
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_cert_sign()
                .build()?,
        )?;
        b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
        b.append_extension(ski)?;
        let mut san = SubjectAlternativeName::new();
        for n in names {
            if n.parse::<IpAddr>().is_ok() {
                san.ip(n);
            } else {
                san.dns(n);
            }
        }
        let san = san.build(&b.x509v3_context(None, None))?;
        b.append_extension(san)?;
        b.sign(&key, MessageDigest::sha256())?;
        Ok(Self {
            cert_pem: b.build().to_pem()?,
            key_pem: key.private_key_to_pem_pkcs8()?,
        })
    }
}
