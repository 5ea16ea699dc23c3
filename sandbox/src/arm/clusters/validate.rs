//! Checks of connected cluster request bodies: names, enums, strings, the agent public key.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::arm::{ArmError, eq};

pub(super) fn check_enum(
    props: &Map<String, Value>,
    key: &str,
    allowed: &[&str],
) -> Result<(), ArmError> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if allowed.iter().any(|a| eq(a, s)) => Ok(()),
        Some(other) => Err(ArmError::invalid_content(
            &format!("properties.{key}"),
            format!(
                "The value {other} of 'properties.{key}' is invalid. Allowed values are: {}.",
                allowed.join(", ")
            ),
        )),
    }
}

pub(super) fn check_string(props: &Map<String, Value>, key: &str) -> Result<(), ArmError> {
    match props.get(key) {
        None | Some(Value::Null) | Some(Value::String(_)) => Ok(()),
        Some(_) => Err(ArmError::invalid_content(
            &format!("properties.{key}"),
            format!("The value of 'properties.{key}' must be a string."),
        )),
    }
}

/// Checks that `value` is base64 of a DER PKCS#1 RSAPublicKey.
pub(crate) fn validate_public_key(value: &str) -> Result<(), ArmError> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    let der = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| {
            ArmError::invalid_content(
                "properties.agentPublicKeyCertificate",
                "The agentPublicKeyCertificate is not valid base64.",
            )
        })?;
    rsa::RsaPublicKey::from_pkcs1_der(&der).map_err(|_| {
        ArmError::invalid_content(
            "properties.agentPublicKeyCertificate",
            "The agentPublicKeyCertificate must be the base64-encoded DER of a PKCS#1 RSAPublicKey.",
        )
    })?;
    Ok(())
}

pub(super) fn validate_name(name: &str) -> Result<(), ArmError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ArmError::bad_request(
            "InvalidResourceName",
            format!(
                "The resource name '{name}' is invalid. It must be 1 to 63 characters: letters, digits, '-' and '_', starting and ending with a letter or digit."
            ),
        ))
    }
}
