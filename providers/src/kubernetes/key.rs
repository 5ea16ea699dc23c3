//! The onboarding key pair: generation, PEM and DER forms, the public key Azure receives.
//!
//! Azure Arc wants the agents' public key as `agentPublicKeyCertificate`: base64 (standard
//! alphabet) of the DER of the PKCS#1 `RSAPublicKey` SEQUENCE {n, e}, *not* X.509 and *not*
//! SPKI (a 4096-bit key's value starts `MIICCgKCAgEA`). The private key is PKCS#1 PEM
//! (`-----BEGIN RSA PRIVATE KEY-----`) and lives only in the cluster.
//!
//! Generation is AWS-LC's (`aws-lc-rs`, constant-time, a few hundred milliseconds for 4096 bits);
//! the `rsa` crate parses and encodes. [`super::key_pool`] runs generation off the async runtime.
//!
//! This module is pure (no I/O besides the operating system's random number generator). It
//! never formats a private key into an error or a `Debug` string: [`PrivateKeyPem`] prints as
//! `PrivateKeyPem(..)`.

use base64::Engine as _;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, EncodeRsaPublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

/// The prefix every 4096-bit key's `agentPublicKeyCertificate` starts with.
pub const RSA_4096_PUBLIC_KEY_PREFIX: &str = "MIICCgKCAgEA";

/// The key sizes arcplan accepts.
pub const ALLOWED_KEY_BITS: [usize; 2] = [2048, 4096];

/// A PKCS#1 PEM private key. Its `Debug` form never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKeyPem(String);

impl PrivateKeyPem {
    /// Wraps PEM text (not checked; see [`public_key_of`]).
    pub fn new(pem: impl Into<String>) -> Self {
        Self(pem.into())
    }

    /// The PEM text. Only for writing it into the cluster or into Helm's standard input.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKeyPem(..)")
    }
}

/// What the public half of a key tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyInfo {
    /// base64 of the DER PKCS#1 RSAPublicKey (the `agentPublicKeyCertificate`).
    pub public_key: String,
    /// The modulus size in bits.
    pub bits: usize,
    /// `sha256:` and the first 32 hex digits of the SHA-256 of the public DER.
    pub fingerprint: String,
}

/// Why a key could not be made or read. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key size is not supported.
    #[error("key size {0} bits is not supported (use 2048 or 4096; Azure Arc uses 4096)")]
    Bits(usize),
    /// Generation failed.
    #[error("generating the RSA key failed: {0}")]
    Generate(String),
    /// The stored text is not a PKCS#1 PEM RSA private key.
    #[error(
        "the stored private key is not a PKCS#1 PEM RSA private key (`-----BEGIN RSA PRIVATE KEY-----`)"
    )]
    NotPkcs1Pem,
    /// Encoding failed.
    #[error("encoding the key failed: {0}")]
    Encode(String),
}

/// Checks that `bits` is a key size arcplan generates.
pub fn generate_check(bits: usize) -> Result<(), KeyError> {
    if ALLOWED_KEY_BITS.contains(&bits) {
        Ok(())
    } else {
        Err(KeyError::Bits(bits))
    }
}

/// Generates a new RSA key of `bits` bits; returns the PKCS#1 PEM private key and the public
/// key facts. CPU-heavy (a few hundred milliseconds for 4096 bits): call it from a blocking task
/// ([`super::key_pool::KeyPool`] does).
///
/// The primes come from AWS-LC (`aws-lc-rs`: constant-time, its own DRBG seeded by the operating
/// system); the `rsa` crate only re-encodes the result, so the Secret's PKCS#1 PEM and the PKCS#1
/// DER public key are byte-for-byte the forms arcplan has always written.
pub fn generate(bits: usize) -> Result<(PrivateKeyPem, PublicKeyInfo), KeyError> {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
    use rsa::pkcs8::DecodePrivateKey;
    generate_check(bits)?;
    let size = match bits {
        2048 => aws_lc_rs::rsa::KeySize::Rsa2048,
        _ => aws_lc_rs::rsa::KeySize::Rsa4096,
    };
    let pair = aws_lc_rs::rsa::KeyPair::generate(size)
        .map_err(|_| KeyError::Generate("AWS-LC could not generate the key".into()))?;
    let pkcs8: Pkcs8V1Der<'static> = pair
        .as_der()
        .map_err(|_| KeyError::Encode("AWS-LC could not export the key".into()))?;
    let key = rsa::RsaPrivateKey::from_pkcs8_der(pkcs8.as_ref())
        .map_err(|_| KeyError::Encode("the generated key is not a PKCS#8 RSA key".into()))?;
    drop(pkcs8);
    let info = info_of(&key)?;
    // Both libraries must agree on the public half (PKCS#1 RSAPublicKey DER).
    let aws_public = base64::engine::general_purpose::STANDARD
        .encode(aws_lc_rs::signature::KeyPair::public_key(&pair).as_ref());
    if aws_public != info.public_key || info.bits != bits {
        return Err(KeyError::Encode(
            "the generated key's public half does not re-encode identically".into(),
        ));
    }
    let pem = key
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| KeyError::Encode(e.to_string()))?;
    Ok((PrivateKeyPem(pem.as_str().to_owned()), info))
}

/// The public key facts of a PKCS#1 PEM private key.
pub fn public_key_of(pem: &PrivateKeyPem) -> Result<PublicKeyInfo, KeyError> {
    let key =
        rsa::RsaPrivateKey::from_pkcs1_pem(pem.0.trim()).map_err(|_| KeyError::NotPkcs1Pem)?;
    info_of(&key)
}

fn info_of(key: &rsa::RsaPrivateKey) -> Result<PublicKeyInfo, KeyError> {
    let der = key
        .to_public_key()
        .to_pkcs1_der()
        .map_err(|e| KeyError::Encode(e.to_string()))?;
    Ok(PublicKeyInfo {
        public_key: base64::engine::general_purpose::STANDARD.encode(der.as_bytes()),
        bits: key.size() * 8,
        fingerprint: fingerprint_of_der(der.as_bytes()),
    })
}

fn fingerprint_of_der(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The fingerprint of a base64 public key (as [`PublicKeyInfo::fingerprint`]); `None` when it
/// is not base64.
pub fn fingerprint(public_key_b64: &str) -> Option<String> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(public_key_b64.trim())
        .ok()?;
    Some(fingerprint_of_der(&der))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1::DecodeRsaPublicKey;

    #[test]
    fn generated_4096_key_round_trips_and_has_the_arc_prefix() {
        let (pem, info) = generate(4096).expect("generate");
        assert!(pem.expose().starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        assert!(
            info.public_key.starts_with(RSA_4096_PUBLIC_KEY_PREFIX),
            "{}",
            &info.public_key[..20]
        );
        assert_eq!(info.bits, 4096);
        // Round trip: the PEM gives back the same public key.
        assert_eq!(public_key_of(&pem).expect("parse"), info);
        // The public key is a PKCS#1 RSAPublicKey DER (not SPKI).
        let der = base64::engine::general_purpose::STANDARD
            .decode(&info.public_key)
            .expect("base64");
        let public = rsa::RsaPublicKey::from_pkcs1_der(&der).expect("pkcs1 public key");
        assert_eq!(public.size(), 512);
        assert_eq!(
            fingerprint(&info.public_key),
            Some(info.fingerprint.clone())
        );
        // Debug never shows the key.
        assert_eq!(format!("{pem:?}"), "PrivateKeyPem(..)");
    }

    #[test]
    fn generated_keys_are_new_and_encoded_as_the_rsa_crate_encodes_them() {
        // The PEM is the `rsa` crate's own PKCS#1 encoding of the key (what arcplan wrote before
        // AWS-LC generated the primes): decoding and re-encoding gives the same bytes.
        let (a, info_a) = generate(2048).expect("generate");
        let (b, info_b) = generate(2048).expect("generate");
        assert_ne!(info_a.public_key, info_b.public_key, "every key is new");
        assert_eq!(info_a.bits, 2048);
        assert!(info_a.public_key.starts_with("MIIBCgKCAQEA"));
        for pem in [&a, &b] {
            let key = rsa::RsaPrivateKey::from_pkcs1_pem(pem.expose()).expect("PKCS#1");
            key.validate().expect("a consistent RSA key");
            assert_eq!(key.e(), &rsa::BigUint::from(65537u32));
            let again = key.to_pkcs1_pem(LineEnding::LF).expect("encode");
            assert_eq!(again.as_str(), pem.expose());
            assert!(pem.expose().ends_with("-----END RSA PRIVATE KEY-----\n"));
        }
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert_eq!(generate(1000), Err(KeyError::Bits(1000)));
        assert_eq!(
            public_key_of(&PrivateKeyPem::new("not a key")),
            Err(KeyError::NotPkcs1Pem)
        );
        assert_eq!(fingerprint("%%%"), None);
    }
}
