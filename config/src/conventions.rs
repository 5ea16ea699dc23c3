//! What the file's words mean where resources live: the tag that records a resource's stack, and
//! the built-in roles that may onboard a cluster. Validation checks the file against them; the
//! providers write and read them.

/// The ARM tag arcplan uses to record which stack owns a resource.
pub const STACK_TAG: &str = "arcplan-stack";

/// Built-in roles that can onboard a cluster (by name), as Azure names them.
pub const ONBOARDING_ROLES: &[&str] = &[
    "Owner",
    "Contributor",
    "Kubernetes Cluster - Azure Arc Onboarding",
];
