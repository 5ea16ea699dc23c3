//! Typed resource addresses: `azure.resourceProvider.Microsoft.Kubernetes`,
//! `arc.connectedCluster.mynewcluster`.
//!
//! An address is a resource type (two dot-separated words: a namespace and a kind) followed by
//! the resource's name, which may itself contain dots.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// A resource type such as `azure.resourceGroup`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceType(Cow<'static, str>);

impl ResourceType {
    /// The subscription the run works in (read only).
    pub const SUBSCRIPTION: Self = Self::of("azure.subscription");
    /// A resource provider registration.
    pub const RESOURCE_PROVIDER: Self = Self::of("azure.resourceProvider");
    /// A permission check at a scope (a plan-time precondition).
    pub const ROLE_CHECK: Self = Self::of("azure.roleCheck");
    /// A resource group.
    pub const RESOURCE_GROUP: Self = Self::of("azure.resourceGroup");
    /// An Azure Arc connected cluster (ARM resource).
    pub const CONNECTED_CLUSTER: Self = Self::of("arc.connectedCluster");
    /// The connectivity check after onboarding (a post-apply check).
    pub const CONNECTIVITY: Self = Self::of("arc.connectivity");
    /// The onboarding key pair kept in the cluster.
    pub const ONBOARDING_KEY: Self = Self::of("k8s.onboardingKey");
    /// The Arc agents and the ownership record in the cluster.
    pub const ARC_AGENTS: Self = Self::of("k8s.arcAgents");

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
    "`{input}` is not a resource address: {reason} (addresses look like `arc.connectedCluster.mycluster`)"
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
            return Err(err(
                "the type must be two words, like `azure.resourceGroup`",
            ));
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
        assert_eq!(a.rtype, ResourceType::RESOURCE_PROVIDER);
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
        let a = Address::new(ResourceType::CONNECTED_CLUSTER, "c1");
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, "\"arc.connectedCluster.c1\"");
        assert_eq!(serde_json::from_str::<Address>(&json).unwrap(), a);
    }
}
