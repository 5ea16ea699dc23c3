//! arcplan's providers: the Azure side ([`azure`]: credentials, clouds, the ARM client, provider
//! registration, role checks, resource groups, connected clusters, connectivity) and the cluster
//! side ([`kubernetes`]: onboarding key, ownership record, Arc agents, readiness, lock).
//!
//! Providers implement [`arcplan_engine::provider::Provider`]. They never print; they emit
//! events. There is no special case for the sandbox: it is reached through endpoints,
//! credentials and a CA bundle like any Azure cloud or Kubernetes cluster.

pub mod azure;
pub mod backoff;
pub mod kind;
pub mod kinds;
pub mod kubernetes;
