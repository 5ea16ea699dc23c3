//! The ARM emulator's data: subscriptions, their resource providers, resource groups, connected
//! clusters and tags, the principal's role assignments, and the seeded generator of ids. Long-running
//! operations live in `operations.rs`, request routing in `routing.rs`.

use std::collections::{BTreeMap, HashMap};

use axum::http::StatusCode;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::authz::{self, PrincipalRole};
use super::catalog::{PROVIDERS, ProviderInfo, RegistrationState, normalize_location};
use super::operations::Operation;
use super::{ArmConfig, ArmError, eq};
use crate::entra::TokenClaims;

pub(crate) struct Provider {
    pub info: &'static ProviderInfo,
    pub state: RegistrationState,
    pub until: Option<Instant>,
}

pub(crate) struct Group {
    pub name: String,
    pub location: String,
    pub tags: Map<String, Value>,
    pub managed_by: Option<String>,
    pub deleting: Option<String>,
    pub changed: time::OffsetDateTime,
    pub clusters: BTreeMap<String, Cluster>,
    /// Custom locations, by lowercase name: the resource and the operation in progress.
    pub custom_locations: BTreeMap<String, (Value, Option<String>)>,
}

pub(crate) struct Cluster {
    pub resource: Value,
    pub busy: Option<String>,
    pub created: time::OffsetDateTime,
    pub changed: time::OffsetDateTime,
    /// Its extensions, by lowercase name.
    pub extensions: BTreeMap<String, Extension>,
    /// Its Flux configurations, by lowercase name.
    pub flux_configurations: BTreeMap<String, FluxConfig>,
    /// Whom its agents let the Custom Locations service in as (the object id their
    /// custom-locations feature binds, with cluster-connect running), as their last heartbeat
    /// saw it; `None`: the feature is off. Not part of the resource: ARM has no such property.
    pub custom_locations_oid: Option<String>,
}

/// A Flux configuration: the resource as ARM returns it, its protected settings (stored, never
/// returned), the operation in progress on it, and when the Flux controller stand-in reports
/// its compliance (`None`: reported).
pub(crate) struct FluxConfig {
    pub resource: Value,
    pub protected: Map<String, Value>,
    pub busy: Option<String>,
    pub reconciles_at: Option<Instant>,
}

/// A cluster extension: the resource as ARM returns it, its protected settings (stored, never
/// returned) and the operation in progress on it.
pub(crate) struct Extension {
    pub resource: Value,
    pub protected: Map<String, Value>,
    pub busy: Option<String>,
    /// The cluster's extension manager installed the current version (its workloads are
    /// available).
    pub installed: bool,
}

pub(crate) struct Subscription {
    pub id: String,
    pub providers: BTreeMap<String, Provider>,
    pub groups: BTreeMap<String, Group>,
    /// Tags of the subscription itself (`/subscriptions/{s}/providers/Microsoft.Resources/tags/default`).
    pub tags: Map<String, Value>,
}

pub(crate) struct Assignment {
    pub name: String,
    pub scope: String,
    pub role_id: &'static str,
    pub principal_id: String,
}

pub(crate) struct ArmState {
    pub cfg: ArmConfig,
    pub subs: BTreeMap<String, Subscription>,
    pub ops: BTreeMap<String, Operation>,
    pub assignments: Vec<Assignment>,
    pub rng: ChaCha8Rng,
    pub op_counts: HashMap<String, u64>,
}

impl ArmState {
    pub fn new(cfg: ArmConfig) -> Self {
        let mut subs = BTreeMap::new();
        for id in &cfg.subscription_ids {
            let mut providers = BTreeMap::new();
            for info in PROVIDERS {
                let registered = info.always_registered
                    || cfg
                        .registered_providers
                        .iter()
                        .any(|p| eq(p, info.namespace));
                providers.insert(
                    info.namespace.to_ascii_lowercase(),
                    Provider {
                        info,
                        state: if registered {
                            RegistrationState::Registered
                        } else {
                            RegistrationState::NotRegistered
                        },
                        until: None,
                    },
                );
            }
            subs.insert(
                id.to_ascii_lowercase(),
                Subscription {
                    id: id.clone(),
                    providers,
                    groups: BTreeMap::new(),
                    tags: Map::new(),
                },
            );
        }
        let mut st = Self {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xA12B_0000_0000_0001),
            cfg,
            subs,
            ops: BTreeMap::new(),
            assignments: Vec::new(),
            op_counts: HashMap::new(),
        };
        let role = st.cfg.role;
        st.set_role(role);
        st
    }

    /// A GUID from the seeded generator.
    pub fn new_uuid(&mut self) -> String {
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    pub fn set_role(&mut self, role: PrincipalRole) {
        let principal = self.cfg.principal_object_id.clone();
        self.assignments
            .retain(|a| !(a.principal_id == principal && a.scope.matches('/').count() == 2));
        self.cfg.role = role;
        if let Some(def) = role.definition() {
            let subs: Vec<String> = self.subs.values().map(|s| s.id.clone()).collect();
            for s in subs {
                let name = self.new_uuid();
                self.assignments.push(Assignment {
                    name,
                    scope: format!("/subscriptions/{s}"),
                    role_id: def.id,
                    principal_id: principal.clone(),
                });
            }
        }
    }

    pub fn assign_role(&mut self, scope: &str, role: PrincipalRole) {
        if let Some(def) = role.definition() {
            let name = self.new_uuid();
            let principal = self.cfg.principal_object_id.clone();
            self.assignments.push(Assignment {
                name,
                scope: scope.trim_end_matches('/').to_string(),
                role_id: def.id,
                principal_id: principal,
            });
        }
    }

    /// Applies every transition whose time has come (registrations, then operations).
    pub fn settle(&mut self) {
        let now = Instant::now();
        for sub in self.subs.values_mut() {
            for p in sub.providers.values_mut() {
                if let Some(until) = p.until
                    && until <= now
                {
                    p.state = match p.state {
                        RegistrationState::Registering => RegistrationState::Registered,
                        RegistrationState::Unregistering => RegistrationState::NotRegistered,
                        s => s,
                    };
                    p.until = None;
                }
            }
        }
        self.settle_operations(now);
        self.settle_flux(now);
    }

    pub fn provider_state(&self, sub: &str, ns: &str) -> Option<RegistrationState> {
        self.subs
            .get(&sub.to_ascii_lowercase())?
            .providers
            .get(&ns.to_ascii_lowercase())
            .map(|p| p.state)
    }

    /// ARM's 409 `MissingSubscriptionRegistration` unless `ns` is registered (or registering)
    /// in the subscription.
    pub fn require_registered(&self, sub: &str, ns: &str) -> Result<(), ArmError> {
        match self.provider_state(sub, ns) {
            Some(RegistrationState::Registered | RegistrationState::Registering) => Ok(()),
            _ => Err(ArmError::conflict(
                "MissingSubscriptionRegistration",
                format!(
                    "The subscription is not registered to use namespace '{ns}'. See https://aka.ms/rps-not-found for how to register subscriptions."
                ),
            )),
        }
    }

    pub fn set_provider_state(&mut self, sub: &str, ns: &str, state: RegistrationState) -> bool {
        let Some(p) = self
            .subs
            .get_mut(&sub.to_ascii_lowercase())
            .and_then(|s| s.providers.get_mut(&ns.to_ascii_lowercase()))
        else {
            return false;
        };
        p.state = state;
        p.until = None;
        true
    }

    pub fn group(&self, sub: &str, rg: &str) -> Option<&Group> {
        self.subs
            .get(&sub.to_ascii_lowercase())?
            .groups
            .get(&rg.to_ascii_lowercase())
    }

    pub fn group_mut(&mut self, sub: &str, rg: &str) -> Option<&mut Group> {
        self.subs
            .get_mut(&sub.to_ascii_lowercase())?
            .groups
            .get_mut(&rg.to_ascii_lowercase())
    }

    pub fn cluster(&self, sub: &str, rg: &str, name: &str) -> Option<&Cluster> {
        self.group(sub, rg)?
            .clusters
            .get(&name.to_ascii_lowercase())
    }

    pub fn cluster_mut(&mut self, sub: &str, rg: &str, name: &str) -> Option<&mut Cluster> {
        self.group_mut(sub, rg)?
            .clusters
            .get_mut(&name.to_ascii_lowercase())
    }

    pub fn all_clusters(&self) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for s in self.subs.values() {
            for g in s.groups.values() {
                for c in g.clusters.values() {
                    out.push((s.id.clone(), g.name.clone(), c.resource.clone()));
                }
            }
        }
        out
    }

    pub fn put_group_direct(
        &mut self,
        sub: &str,
        name: &str,
        location: &str,
        tags: Map<String, Value>,
    ) -> bool {
        let now = time::OffsetDateTime::now_utc();
        let Some(s) = self.subs.get_mut(&sub.to_ascii_lowercase()) else {
            return false;
        };
        let g = s
            .groups
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| Group {
                name: name.to_string(),
                location: normalize_location(location),
                tags: Map::new(),
                managed_by: None,
                deleting: None,
                changed: now,
                clusters: BTreeMap::new(),
                custom_locations: BTreeMap::new(),
            });
        g.location = normalize_location(location);
        g.tags = tags;
        g.changed = now;
        true
    }

    pub fn remove_group_direct(&mut self, sub: &str, rg: &str) -> bool {
        self.subs
            .get_mut(&sub.to_ascii_lowercase())
            .and_then(|s| s.groups.remove(&rg.to_ascii_lowercase()))
            .is_some()
    }

    pub fn remove_cluster_direct(&mut self, sub: &str, rg: &str, name: &str) -> bool {
        self.group_mut(sub, rg)
            .and_then(|g| g.clusters.remove(&name.to_ascii_lowercase()))
            .is_some()
    }

    pub fn group_json(&self, sub: &str, rg: &str) -> Option<Value> {
        let s = self.subs.get(&sub.to_ascii_lowercase())?;
        let g = s.groups.get(&rg.to_ascii_lowercase())?;
        Some(group_to_json(&s.id, g))
    }

    /// Checks the token's tenant and RBAC for `action` at `scope`.
    pub fn authorize(
        &self,
        claims: &TokenClaims,
        action: &str,
        scope: &str,
    ) -> Result<(), ArmError> {
        let allowed = self.assignments.iter().any(|a| {
            a.principal_id.eq_ignore_ascii_case(&claims.oid)
                && authz::scope_contains(&a.scope, scope)
                && authz::role_by_id(a.role_id).is_some_and(|r| r.permits(action))
        });
        if allowed {
            Ok(())
        } else {
            Err(ArmError::new(
                StatusCode::FORBIDDEN,
                "AuthorizationFailed",
                format!(
                    "The client '{}' with object id '{}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
                    claims.appid, claims.oid
                ),
            ))
        }
    }
}

pub(crate) fn group_to_json(sub: &str, g: &Group) -> Value {
    let mut v = json!({
        "id": format!("/subscriptions/{sub}/resourceGroups/{}", g.name),
        "name": g.name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": g.location,
        "properties": {"provisioningState": if g.deleting.is_some() { "Deleting" } else { "Succeeded" }},
    });
    if !g.tags.is_empty() {
        v["tags"] = Value::Object(g.tags.clone());
    }
    if let Some(m) = &g.managed_by {
        v["managedBy"] = json!(m);
    }
    v
}
