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

/// The connected cluster tag that says this stack installed extensions on it (its value is the
/// stack): prune lists a cluster's extensions only when it carries it, so a stack without
/// extensions costs no request.
pub const EXTENSIONS_TAG: &str = "arcplan-extensions";

/// The prefix of the configuration settings arcplan writes on the cluster extensions it manages
/// (extensions carry no tags); users may not set keys under it.
pub const EXTENSION_SETTINGS_PREFIX: &str = "arcplan.";

/// The configuration setting naming the stack that owns an extension.
pub const EXTENSION_OWNER_SETTING: &str = "arcplan.stack";

/// The configuration setting holding the digest of an extension's protected settings (ARM
/// never returns their values, so a change is seen by its digest).
pub const EXTENSION_DIGEST_SETTING: &str = "arcplan.protectedSettingsDigest";

/// The extension type that runs Flux configurations.
pub const FLUX_EXTENSION_TYPE: &str = "microsoft.flux";

/// The name of the `microsoft.flux` extension arcplan adds to a cluster whose Flux
/// configurations have none declared (as `az k8s-configuration flux create` does).
pub const FLUX_IMPLICIT_EXTENSION: &str = "flux";

/// The namespace of the implicit `microsoft.flux` extension's release.
pub const FLUX_RELEASE_NAMESPACE: &str = "flux-system";

/// A Flux configuration's namespace when none is given (the service's default).
pub const FLUX_DEFAULT_NAMESPACE: &str = "default";

/// The branch a Git repository follows when no reference is given (as `az` defaults it).
pub const FLUX_DEFAULT_BRANCH: &str = "main";
