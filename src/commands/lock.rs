//! The words of the cluster locks (the engine's apply session takes them through the
//! providers' `lock` verb): who this run is, the line a waiting run prints, and what a failure
//! to take a lock means.

use arcplan_engine::diag::Diagnostic;
use arcplan_engine::provider::LockWaiting;
use std::time::Duration;

/// Who this run is, in the Leases it holds: `user@host (arcplan V, pid P, run R)`, with the
/// real host name (not `$HOSTNAME`, which shells do not export).
pub fn holder_identity() -> String {
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "arcplan".into());
    let host = gethostname::gethostname()
        .to_string_lossy()
        .trim()
        .to_owned();
    let host = if host.is_empty() {
        "unknown-host".to_owned()
    } else {
        host
    };
    format!(
        "{user}@{host} (arcplan {}, pid {}, run {})",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        uuid::Uuid::new_v4()
    )
}

/// `Waiting for the lock of C: locked by … (waited Ns of --lock-timeout T)`.
pub fn waiting_line(w: &LockWaiting) -> String {
    format!(
        "Waiting for the lock of {}: {} (waited {}s of --lock-timeout {})",
        w.scope,
        w.holder,
        w.waited.as_secs(),
        humantime::format_duration(Duration::from_secs(w.timeout.as_secs()))
    )
}

/// The last line of a failure to take a lock: what it means, by cause.
pub fn failure_line(d: &Diagnostic, destroy: bool) -> String {
    match d.code {
        "k8s-locked" => "nothing was changed: another arcplan run holds the cluster's lock (named above); wait for it, or pass --lock-timeout to wait longer".into(),
        "cancelled" => "nothing was changed: interrupted while waiting for the cluster's lock".into(),
        "k8s-forbidden" => "nothing was changed: the credential may not use the cluster's lock (Lease kube-system/arcplan-lock); see the hint above".into(),
        "k8s-unreachable" if destroy => "nothing was changed: the cluster cannot be reached to take its lock; check the kubeconfig and the network, or pass --cluster-unreachable to disconnect it from Azure only".into(),
        "k8s-unreachable" => "nothing was changed: the cluster cannot be reached to take its lock; check the kubeconfig, the network and that the cluster is running".into(),
        c if c.starts_with("k8s-kubeconfig") || c == "k8s-context-missing" => "nothing was changed: the cluster's kubeconfig or context cannot be used (see above), so its lock cannot be taken".into(),
        _ => "nothing was changed: the cluster's lock cannot be taken (see above)".into(),
    }
}
