//! The onboarding key pair: generation, PEM and DER forms, the public key Azure receives.
//!
//! Azure Arc wants the agents' public key as `agentPublicKeyCertificate`: base64 (standard
//! alphabet) of the DER of the PKCS#1 `RSAPublicKey` SEQUENCE {n, e}, *not* X.509 and *not*
//! SPKI (a 4096-bit key's value starts `MIICCgKCAgEA`). The private key is PKCS#1 PEM
//! (`-----BEGIN RSA PRIVATE KEY-----`) and lives only in the cluster.
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

/// An adapter giving the `rsa` crate (rand_core 0.6) the operating system's random number
/// generator from `rand` 0.9. Should the OS generator ever fail, it falls back to `rand`'s
/// thread generator (a CSPRNG seeded from the OS) instead of panicking.
struct OsRng06;

impl rsa::rand_core::RngCore for OsRng06 {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        use rand::TryRngCore as _;
        if rand::rngs::OsRng.try_fill_bytes(dest).is_err() {
            rand::RngCore::fill_bytes(&mut rand::rng(), dest);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for OsRng06 {}

/// Checks that `bits` is a key size arcplan generates.
pub fn generate_check(bits: usize) -> Result<(), KeyError> {
    if ALLOWED_KEY_BITS.contains(&bits) {
        Ok(())
    } else {
        Err(KeyError::Bits(bits))
    }
}

/// Generates a new RSA key of `bits` bits; returns the PKCS#1 PEM private key and the public
/// key facts. CPU-heavy (seconds for 4096 bits): call it from a blocking task.
pub fn generate(bits: usize) -> Result<(PrivateKeyPem, PublicKeyInfo), KeyError> {
    generate_check(bits)?;
    let key = rsa::RsaPrivateKey::new(&mut OsRng06, bits)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let pem = key
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| KeyError::Encode(e.to_string()))?;
    let info = info_of(&key)?;
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
    fn bad_input_is_an_error_not_a_panic() {
        assert_eq!(generate(1000), Err(KeyError::Bits(1000)));
        assert_eq!(
            public_key_of(&PrivateKeyPem::new("not a key")),
            Err(KeyError::NotPkcs1Pem)
        );
        assert_eq!(fingerprint("%%%"), None);
    }
}
