//! Typed resource addresses: `<namespace>.<kind>.<name>`, such as `cloud.registration.Example.Io`
//! or `cloud.cluster.store-042` (the kinds themselves are the providers').
//!
//! An address is a resource type (two dot-separated words: a namespace and a kind) followed by
//! the resource's name, which may itself contain dots.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// A resource type: a namespace and a kind, such as `cloud.group` (defined by the providers).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceType(Cow<'static, str>);

impl ResourceType {
    /// A type from a static name.
    pub const fn of(name: &'static str) -> Self {
        Self(Cow::Borrowed(name))
    }

    /// The type's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A resource's address: its type and its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    /// The resource type.
    pub rtype: ResourceType,
    /// The name within the type.
    pub name: String,
}

impl Address {
    /// An address of a type and a name.
    pub fn new(rtype: ResourceType, name: impl Into<String>) -> Self {
        Self {
            rtype,
            name: name.into(),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.rtype, self.name)
    }
}

/// Why a string is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a resource address: {reason} (addresses look like `<namespace>.<kind>.<name>`)"
)]
pub struct AddressError {
    /// The text given.
    pub input: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| AddressError {
            input: s.to_owned(),
            reason,
        };
        let mut parts = s.splitn(3, '.');
        let (Some(ns), Some(kind), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(err("it needs a type and a name"));
        };
        let word = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric());
        if !word(ns) || !word(kind) {
            return Err(err("the type must be two words, a namespace and a kind"));
        }
        if name.is_empty() {
            return Err(err("the name is empty"));
        }
        Ok(Address {
            rtype: ResourceType(Cow::Owned(format!("{ns}.{kind}"))),
            name: name.to_owned(),
        })
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_dots() {
        let a: Address = "azure.resourceProvider.Microsoft.Kubernetes"
            .parse()
            .unwrap();
        assert_eq!(a.rtype, ResourceType::of("azure.resourceProvider"));
        assert_eq!(a.name, "Microsoft.Kubernetes");
        assert_eq!(a.to_string(), "azure.resourceProvider.Microsoft.Kubernetes");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "azure",
            "azure.resourceGroup",
            "azure.resourceGroup.",
            "a-b.c.d",
        ] {
            assert!(bad.parse::<Address>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn round_trips_through_json() {
        let a = Address::new(ResourceType::of("arc.connectedCluster"), "c1");
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, "\"arc.connectedCluster.c1\"");
        assert_eq!(serde_json::from_str::<Address>(&json).unwrap(), a);
    }
}
