//! Run progress: timestamped lines for people, and an NDJSON stream for machines modelled on
//! Terraform's machine-readable UI (`@level`, `@message`, `@module`, `@timestamp`, `type`, then
//! the event's own fields; the first line is a `version` message).
//!
//! Everything here is a pure function of the events and the times given, so it is tested with
//! fixed times.
// The commands call these as they are wired in; until then only the tests do.

use arcplan_engine::address::Address;
use arcplan_engine::diag::{Diagnostic, Severity};
use arcplan_engine::events::Event;
use arcplan_engine::plan::{Action, CheckStatus};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The version of the NDJSON message schema.
pub const UI_VERSION: &str = "1.0";
/// How many `Refreshing state...` lines are shown before the rest are only counted.
pub const REFRESH_LINES: usize = 20;
/// The least time between two `Still creating...` lines of one resource, in seconds.
pub const PROGRESS_EVERY: u64 = 10;

/// A duration as Terraform shows it: `3s`, `1m20s`, `1h2m0s` (whole seconds, rounded down).
pub fn duration(seconds: f64) -> String {
    let s = if seconds.is_finite() && seconds > 0.0 {
        seconds as u64
    } else {
        0
    };
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec}s"),
        (h, m, sec) => format!("{h}h{m}m{sec}s"),
    }
}

/// `HH:MM:SS` of a time.
pub fn clock(now: OffsetDateTime) -> String {
    format!("{:02}:{:02}:{:02}", now.hour(), now.minute(), now.second())
}

fn rfc3339(now: OffsetDateTime) -> String {
    now.format(&Rfc3339).unwrap_or_default()
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// `Creating`, `Modifying`... for `Creating...` and `Still creating...`.
fn doing(action: Action) -> Option<&'static str> {
    match action {
        Action::Create => Some("Creating"),
        Action::Update => Some("Modifying"),
        Action::Replace => Some("Replacing"),
        Action::Delete => Some("Destroying"),
        // Apply-time steps with `read` are post-apply checks (data sources are read at plan).
        Action::Read => Some("Checking"),
        Action::NoOp => None,
    }
}

/// `Creation complete`, `Modifications complete`...
fn done(action: Action) -> Option<&'static str> {
    match action {
        Action::Create => Some("Creation complete"),
        Action::Update => Some("Modifications complete"),
        Action::Replace => Some("Replacement complete"),
        Action::Delete => Some("Destruction complete"),
        Action::Read => Some("Check complete"),
        Action::NoOp => None,
    }
}

fn diagnostic_text(d: &Diagnostic) -> String {
    let sev = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    format!("{sev}: {}", first_line(&d.message))
}

/// The text of an event's line, without the timestamp. `action` is what the resource is
/// doing, for `ApplyProgress` (which does not carry it).
fn message(event: &Event, action: Option<Action>) -> Option<String> {
    Some(match event {
        Event::RefreshStart { address } => format!("{address}: Refreshing state..."),
        Event::RefreshComplete { address, exists } => format!(
            "{address}: Refresh complete{}",
            if *exists { "" } else { " (not found)" }
        ),
        Event::PlannedChange { address, action } => format!("{address}: Plan to {action}"),
        Event::ApplyStart { address, action } => format!("{address}: {}...", doing(*action)?),
        Event::ApplyProgress {
            address,
            message,
            elapsed_seconds,
        } => {
            let still = match action.and_then(doing) {
                Some(d) => format!("Still {}...", d.to_lowercase()),
                None => "Still working...".to_owned(),
            };
            let detail = if message.is_empty() {
                String::new()
            } else {
                format!(" ({})", first_line(message))
            };
            format!(
                "{address}: {still} [{} elapsed]{detail}",
                duration(*elapsed_seconds)
            )
        }
        Event::ApplyComplete {
            address,
            action,
            elapsed_seconds,
        } => format!(
            "{address}: {} after {}",
            done(*action)?,
            duration(*elapsed_seconds)
        ),
        Event::ApplyErrored {
            address,
            diagnostics,
            ..
        } => {
            let first = diagnostics
                .iter()
                .find(|d| d.severity == Severity::Error)
                .or(diagnostics.first());
            let mut s = format!(
                "{address}: failed: {}",
                first.map_or("unknown error", |d| first_line(&d.message))
            );
            if diagnostics.len() > 1 {
                s.push_str(&format!(" (and {} more)", diagnostics.len() - 1));
            }
            s
        }
        Event::Skipped { address, reason } => format!("{address}: skipped: {reason}"),
        Event::Check { result } => {
            let status = match result.status {
                CheckStatus::Pass => "Check passed",
                CheckStatus::Fail => "Check failed",
                CheckStatus::Pending => "Check pending",
            };
            format!(
                "{}: {status}: {}",
                result.address,
                first_line(&result.summary)
            )
        }
        Event::Diagnostic { diagnostic } => match &diagnostic.address {
            Some(a) => format!("{a}: {}", diagnostic_text(diagnostic)),
            None => diagnostic_text(diagnostic),
        },
    })
}

/// Turns events into timestamped progress lines (`12:00:01 azure.resourceGroup.rg:
/// Creating...`), the same on a terminal and in a log: `Still creating...` at most every
/// [`PROGRESS_EVERY`] seconds per resource, at most [`REFRESH_LINES`] refresh lines (the rest
/// are counted), nothing for planned changes, pending checks or refresh completions.
#[derive(Debug, Default)]
pub struct Progress {
    /// What each resource is doing (from `ApplyStart`), for `Still creating...`.
    actions: HashMap<Address, Action>,
    /// The last progress period shown per resource.
    shown: HashMap<Address, u64>,
    /// Steps in progress: what they do (`None` for a refresh) and when they started.
    running: HashMap<Address, (Option<Action>, OffsetDateTime)>,
    /// Resources whose check failed (their `ApplyErrored` would repeat it).
    failed_checks: HashSet<Address>,
    refreshes: usize,
    hidden_refreshes: usize,
}

impl Progress {
    /// A renderer that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The line for one event at time `now`, or `None` when the event shows nothing. The text
    /// has no trailing newline; it may hold two lines when refresh lines were being counted
    /// (the count comes first).
    pub fn line(&mut self, event: &Event, now: OffsetDateTime) -> Option<String> {
        if let Event::ApplyComplete { address, .. }
        | Event::ApplyErrored { address, .. }
        | Event::Skipped { address, .. } = event
        {
            self.running.remove(address);
        }
        let text = match event {
            Event::RefreshStart { address } => {
                self.running.insert(address.clone(), (None, now));
                self.shown.remove(address);
                self.refreshes += 1;
                if self.refreshes > REFRESH_LINES {
                    self.hidden_refreshes += 1;
                    return None;
                }
                message(event, None)
            }
            Event::RefreshComplete { address, .. } => {
                self.running.remove(address);
                None
            }
            Event::PlannedChange { .. } => None,
            Event::ApplyStart { address, action } => {
                self.actions.insert(address.clone(), *action);
                self.running.insert(address.clone(), (Some(*action), now));
                self.shown.remove(address);
                message(event, None)
            }
            Event::ApplyProgress {
                address,
                elapsed_seconds,
                ..
            } => {
                let period = if elapsed_seconds.is_finite() && *elapsed_seconds > 0.0 {
                    *elapsed_seconds as u64 / PROGRESS_EVERY
                } else {
                    0
                };
                let last = self.shown.get(address).copied().unwrap_or(0);
                if period <= last {
                    return None;
                }
                self.shown.insert(address.clone(), period);
                message(event, self.actions.get(address).copied())
            }
            Event::ApplyErrored {
                address,
                diagnostics,
                action,
            } if self.failed_checks.contains(address) => {
                // The check's own line said it; show only errors beyond the check's verdict.
                let rest: Vec<Diagnostic> = diagnostics
                    .iter()
                    .filter(|d| d.code != "check-failed")
                    .cloned()
                    .collect();
                if rest.is_empty() {
                    None
                } else {
                    message(
                        &Event::ApplyErrored {
                            address: address.clone(),
                            action: *action,
                            diagnostics: rest,
                        },
                        None,
                    )
                }
            }
            Event::Check { result } => {
                if result.status == CheckStatus::Fail {
                    self.failed_checks.insert(result.address.clone());
                }
                if result.status == CheckStatus::Pending {
                    None
                } else {
                    message(event, None)
                }
            }
            _ => message(event, None),
        }?;
        let line = format!("{} {text}", clock(now));
        Some(match self.finish(now) {
            Some(count) => format!("{count}\n{line}"),
            None => line,
        })
    }

    /// The heartbeats due at `now`: one `ADDRESS: Still creating... [20s elapsed]` line for
    /// each step in progress that has shown nothing for a [`PROGRESS_EVERY`]-second period (a
    /// key being generated, a registration, a slow read), so a log never goes silent for
    /// longer. Call it every second or so.
    pub fn heartbeats(&mut self, now: OffsetDateTime) -> Vec<String> {
        let mut due: Vec<(&Address, Option<Action>, f64)> = self
            .running
            .iter()
            .map(|(a, (action, since))| (a, *action, (now - *since).as_seconds_f64()))
            .filter(|(a, _, elapsed)| {
                let period = (elapsed.max(0.0) as u64) / PROGRESS_EVERY;
                period > self.shown.get(*a).copied().unwrap_or(0)
            })
            .collect();
        due.sort_by_key(|x| x.0.to_string());
        let mut lines = Vec::new();
        let mut shown = Vec::new();
        for (address, action, elapsed) in due {
            let still = match action {
                None => "Still refreshing...".to_owned(),
                Some(a) => match doing(a) {
                    Some(d) => format!("Still {}...", d.to_lowercase()),
                    None => "Still working...".to_owned(),
                },
            };
            lines.push(format!(
                "{} {address}: {still} [{} elapsed]",
                clock(now),
                duration(elapsed)
            ));
            shown.push((address.clone(), (elapsed as u64) / PROGRESS_EVERY));
        }
        self.shown.extend(shown);
        lines
    }

    /// The count of refresh lines not shown, if any are still owed (call at the end of a run;
    /// [`Progress::line`] also prints it before the next line it shows).
    pub fn finish(&mut self, now: OffsetDateTime) -> Option<String> {
        let n = std::mem::take(&mut self.hidden_refreshes);
        (n > 0).then(|| {
            format!(
                "{} Refreshing state... ({n} more {})",
                clock(now),
                if n == 1 { "resource" } else { "resources" }
            )
        })
    }
}

fn level(event: &Event) -> &'static str {
    match event {
        Event::ApplyErrored { .. } => "error",
        Event::Diagnostic { diagnostic } => match diagnostic.severity {
            Severity::Error => "error",
            Severity::Warning => "warn",
        },
        Event::Check { result } if result.status == CheckStatus::Fail => "error",
        Event::Skipped { .. } => "warn",
        _ => "info",
    }
}

fn envelope(level: &str, message: String, now: OffsetDateTime, mut v: Value) -> String {
    if let Value::Object(m) = &mut v {
        m.insert("@level".into(), level.into());
        m.insert("@message".into(), message.into());
        m.insert("@module".into(), "arcplan".into());
        m.insert("@timestamp".into(), rfc3339(now).into());
    }
    v.to_string()
}

/// One NDJSON line (no trailing newline) for an event: the envelope fields `@level`,
/// `@message`, `@module` (`arcplan`) and `@timestamp` (RFC 3339), the `type` (`apply_start`,
/// `apply_progress`, `apply_complete`, `apply_errored`, `refresh_start`, `planned_change`,
/// `check`, `skipped`, `diagnostic`...) and the event's own fields.
pub fn ndjson(event: &Event, now: OffsetDateTime) -> String {
    let action = match event {
        Event::ApplyStart { action, .. } => Some(*action),
        _ => None,
    };
    let msg = message(event, action).unwrap_or_else(|| match event {
        Event::ApplyStart { address, action }
        | Event::ApplyComplete {
            address, action, ..
        } => {
            format!("{address}: {action}")
        }
        _ => String::new(),
    });
    let v = serde_json::to_value(event).unwrap_or_else(|_| json!({"type": "unknown"}));
    envelope(level(event), msg, now, v)
}

/// The first line of an NDJSON stream: `type` `version`, the `arcplan` version and the `ui`
/// schema version ([`UI_VERSION`]).
pub fn version_message(now: OffsetDateTime) -> String {
    let version = env!("CARGO_PKG_VERSION");
    envelope(
        "info",
        format!("arcplan {version}"),
        now,
        json!({"type": "version", "arcplan": version, "ui": UI_VERSION}),
    )
}

/// The `change_summary` line of an NDJSON stream, after a plan (`operation` `plan`), an apply
/// (`apply`) or a destroy (`destroy`).
pub fn change_summary(
    (add, change, destroy): (usize, usize, usize),
    operation: &str,
    now: OffsetDateTime,
) -> String {
    let message = if operation == "apply" {
        format!("Apply complete! Resources: {add} added, {change} changed, {destroy} destroyed.")
    } else if operation == "destroy" {
        format!("Destroy complete! Resources: {destroy} destroyed.")
    } else {
        format!("Plan: {add} to add, {change} to change, {destroy} to destroy.")
    };
    envelope(
        "info",
        message,
        now,
        json!({
            "type": "change_summary",
            "changes": {"add": add, "change": change, "remove": destroy, "operation": operation},
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use arcplan_engine::plan::CheckResult;
    use time::macros::datetime;

    fn rg() -> Address {
        Address::new(arcplan_providers::kinds::RESOURCE_GROUP, "rg-arc")
    }

    fn cc() -> Address {
        Address::new(arcplan_providers::kinds::CONNECTED_CLUSTER, "mynewcluster")
    }

    fn conn() -> Address {
        Address::new(arcplan_providers::kinds::CONNECTIVITY, "mynewcluster")
    }

    /// An apply: events at fixed times.
    fn apply_events() -> Vec<(Event, OffsetDateTime)> {
        let t0 = datetime!(2025-03-01 12:00:00 UTC);
        let at = |s: i64| t0 + time::Duration::seconds(s);
        let progress = |s: f64, m: &str| Event::ApplyProgress {
            address: cc(),
            message: m.into(),
            elapsed_seconds: s,
        };
        vec![
            (
                Event::ApplyStart {
                    address: rg(),
                    action: Action::Create,
                },
                at(1),
            ),
            (
                Event::ApplyComplete {
                    address: rg(),
                    action: Action::Create,
                    elapsed_seconds: 3.4,
                },
                at(4),
            ),
            (
                Event::ApplyStart {
                    address: cc(),
                    action: Action::Create,
                },
                at(4),
            ),
            (progress(2.0, "Registering"), at(6)),
            (progress(10.2, "Registering"), at(14)),
            (progress(12.0, "Registering"), at(16)),
            (progress(21.0, "3/9 agents available"), at(25)),
            (
                Event::ApplyComplete {
                    address: cc(),
                    action: Action::Create,
                    elapsed_seconds: 83.0,
                },
                at(87),
            ),
            (
                Event::ApplyStart {
                    address: Address::new(arcplan_providers::kinds::RESOURCE_GROUP, "rg-old"),
                    action: Action::Delete,
                },
                at(88),
            ),
            (
                Event::ApplyComplete {
                    address: Address::new(arcplan_providers::kinds::RESOURCE_GROUP, "rg-old"),
                    action: Action::Delete,
                    elapsed_seconds: 1.0,
                },
                at(89),
            ),
            (
                Event::ApplyStart {
                    address: conn(),
                    action: Action::Read,
                },
                at(90),
            ),
            (
                Event::Check {
                    result: CheckResult {
                        address: conn(),
                        status: CheckStatus::Fail,
                        summary: "the agents did not connect within 15m".into(),
                        fix: Some("look at kubectl -n azure-arc get pods".into()),
                        details: None,
                        depends_on: vec![],
                        desired: None,
                    },
                },
                at(95),
            ),
            (
                Event::ApplyErrored {
                    address: conn(),
                    action: Action::Read,
                    diagnostics: vec![Diagnostic::error(
                        "check-failed",
                        "the agents did not connect within 15m",
                    )],
                },
                at(95),
            ),
            (
                Event::ApplyErrored {
                    address: Address::new(arcplan_providers::kinds::ARC_AGENTS, "other"),
                    action: Action::Update,
                    diagnostics: vec![
                        Diagnostic::error(
                            "helm",
                            "helm upgrade failed: timed out\nwaiting for the condition",
                        ),
                        Diagnostic::warning("helm", "release left pending"),
                    ],
                },
                at(96),
            ),
            (
                Event::Skipped {
                    address: Address::new(arcplan_providers::kinds::ARC_AGENTS, "later"),
                    reason: "k8s.arcAgents.other failed".into(),
                },
                at(97),
            ),
            (
                Event::Diagnostic {
                    diagnostic: Diagnostic::warning("throttled", "ARM throttled 3 requests")
                        .with_address("azure.resourceGroup.rg-arc"),
                },
                at(98),
            ),
        ]
    }

    #[test]
    fn apply_lines_at_fixed_times() {
        let mut p = Progress::new();
        let lines: Vec<String> = apply_events()
            .iter()
            .filter_map(|(e, t)| p.line(e, *t))
            .collect();
        let expected = [
            "12:00:01 azure.resourceGroup.rg-arc: Creating...",
            "12:00:04 azure.resourceGroup.rg-arc: Creation complete after 3s",
            "12:00:04 arc.connectedCluster.mynewcluster: Creating...",
            "12:00:14 arc.connectedCluster.mynewcluster: Still creating... [10s elapsed] (Registering)",
            "12:00:25 arc.connectedCluster.mynewcluster: Still creating... [21s elapsed] (3/9 agents available)",
            "12:01:27 arc.connectedCluster.mynewcluster: Creation complete after 1m23s",
            "12:01:28 azure.resourceGroup.rg-old: Destroying...",
            "12:01:29 azure.resourceGroup.rg-old: Destruction complete after 1s",
            "12:01:30 arc.connectivity.mynewcluster: Checking...",
            "12:01:35 arc.connectivity.mynewcluster: Check failed: the agents did not connect within 15m",
            "12:01:36 k8s.arcAgents.other: failed: helm upgrade failed: timed out (and 1 more)",
            "12:01:37 k8s.arcAgents.later: skipped: k8s.arcAgents.other failed",
            "12:01:38 azure.resourceGroup.rg-arc: warning: ARM throttled 3 requests",
        ];
        assert_eq!(lines, expected);
        assert_eq!(p.finish(datetime!(2025-03-01 12:02:00 UTC)), None);
    }

    #[test]
    fn modifications_and_replacements() {
        let mut p = Progress::new();
        let t = datetime!(2025-03-01 08:05:09 UTC);
        let up = Event::ApplyComplete {
            address: rg(),
            action: Action::Update,
            elapsed_seconds: 0.4,
        };
        assert_eq!(
            p.line(&up, t).unwrap(),
            "08:05:09 azure.resourceGroup.rg-arc: Modifications complete after 0s"
        );
        let start = Event::ApplyStart {
            address: cc(),
            action: Action::Replace,
        };
        assert_eq!(
            p.line(&start, t).unwrap(),
            "08:05:09 arc.connectedCluster.mynewcluster: Replacing..."
        );
        let prog = Event::ApplyProgress {
            address: cc(),
            message: String::new(),
            elapsed_seconds: 3661.0,
        };
        assert_eq!(
            p.line(&prog, t).unwrap(),
            "08:05:09 arc.connectedCluster.mynewcluster: Still replacing... [1h1m1s elapsed]"
        );
        assert_eq!(
            p.line(
                &Event::PlannedChange {
                    address: rg(),
                    action: Action::Create
                },
                t
            ),
            None
        );
        assert_eq!(
            p.line(
                &Event::RefreshComplete {
                    address: rg(),
                    exists: true
                },
                t
            ),
            None
        );
    }

    #[test]
    fn refresh_lines_are_collapsed_after_twenty() {
        let mut p = Progress::new();
        let t = datetime!(2025-03-01 12:00:00 UTC);
        let mut lines = Vec::new();
        for i in 0..25 {
            let address = Address::new(
                arcplan_providers::kinds::RESOURCE_GROUP,
                format!("rg{i:02}"),
            );
            lines.extend(p.line(
                &Event::RefreshStart {
                    address: address.clone(),
                },
                t,
            ));
            lines.extend(p.line(
                &Event::RefreshComplete {
                    address,
                    exists: true,
                },
                t,
            ));
        }
        assert_eq!(lines.len(), REFRESH_LINES);
        assert_eq!(
            lines[0],
            "12:00:00 azure.resourceGroup.rg00: Refreshing state..."
        );
        assert_eq!(
            lines[19],
            "12:00:00 azure.resourceGroup.rg19: Refreshing state..."
        );
        let next = p
            .line(
                &Event::ApplyStart {
                    address: rg(),
                    action: Action::Create,
                },
                t,
            )
            .unwrap();
        assert_eq!(
            next,
            "12:00:00 Refreshing state... (5 more resources)\n12:00:00 azure.resourceGroup.rg-arc: Creating..."
        );
        assert_eq!(p.finish(t), None);
        p.line(&Event::RefreshStart { address: rg() }, t);
        assert_eq!(
            p.finish(t).as_deref(),
            Some("12:00:00 Refreshing state... (1 more resource)")
        );
    }

    #[test]
    fn ndjson_stream_starts_with_version_and_every_line_parses() {
        let t = datetime!(2025-03-01 12:00:00 UTC);
        let first = version_message(t);
        let v: Value = serde_json::from_str(&first).unwrap();
        assert_eq!(v["type"], "version");
        assert_eq!(v["ui"], UI_VERSION);
        assert_eq!(v["arcplan"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["@module"], "arcplan");
        assert_eq!(v["@timestamp"], "2025-03-01T12:00:00Z");
        let mut stream = vec![first];
        stream.extend(apply_events().iter().map(|(e, t)| ndjson(e, *t)));
        stream.push(change_summary((2, 0, 1), "apply", t));
        for line in &stream {
            assert!(!line.contains('\n'), "one line per message: {line}");
            let v: Value = serde_json::from_str(line).unwrap();
            for key in ["@level", "@message", "@module", "@timestamp", "type"] {
                assert!(v.get(key).is_some(), "{key} missing in {line}");
            }
        }
        let start: Value = serde_json::from_str(&stream[1]).unwrap();
        assert_eq!(start["type"], "apply_start");
        assert_eq!(start["address"], "azure.resourceGroup.rg-arc");
        assert_eq!(start["action"], "create");
        assert_eq!(start["@message"], "azure.resourceGroup.rg-arc: Creating...");
        assert_eq!(start["@timestamp"], "2025-03-01T12:00:01Z");
        let progress: Value = serde_json::from_str(&stream[5]).unwrap();
        assert_eq!(progress["type"], "apply_progress");
        assert_eq!(progress["elapsed_seconds"], 10.2);
        let errored: Value = serde_json::from_str(&stream[13]).unwrap();
        assert_eq!(errored["type"], "apply_errored");
        assert_eq!(errored["@level"], "error");
        assert_eq!(errored["diagnostics"][0]["code"], "check-failed");
        let summary: Value = serde_json::from_str(stream.last().unwrap()).unwrap();
        assert_eq!(
            summary["changes"],
            json!({"add": 2, "change": 0, "remove": 1, "operation": "apply"})
        );
    }

    #[test]
    fn heartbeats_for_silent_steps_every_ten_seconds() {
        let t0 = datetime!(2025-03-01 12:00:00 UTC);
        let at = |s: i64| t0 + time::Duration::seconds(s);
        let key = Address::new(arcplan_providers::kinds::ONBOARDING_KEY, "c1");
        let mut p = Progress::new();
        p.line(&Event::RefreshStart { address: rg() }, at(0));
        p.line(
            &Event::ApplyStart {
                address: key.clone(),
                action: Action::Create,
            },
            at(0),
        );
        assert!(p.heartbeats(at(9)).is_empty());
        assert_eq!(
            p.heartbeats(at(10)),
            vec![
                "12:00:10 azure.resourceGroup.rg-arc: Still refreshing... [10s elapsed]",
                "12:00:10 k8s.onboardingKey.c1: Still creating... [10s elapsed]",
            ]
        );
        // Once per period, and not for a step that finished.
        assert!(p.heartbeats(at(11)).is_empty());
        p.line(
            &Event::RefreshComplete {
                address: rg(),
                exists: true,
            },
            at(12),
        );
        assert_eq!(
            p.heartbeats(at(21)),
            vec!["12:00:21 k8s.onboardingKey.c1: Still creating... [21s elapsed]"]
        );
        // A provider's own progress line counts as the period's heartbeat.
        let progress = p.line(
            &Event::ApplyProgress {
                address: key.clone(),
                message: "generating".into(),
                elapsed_seconds: 30.5,
            },
            at(30),
        );
        assert!(progress.is_some());
        assert!(p.heartbeats(at(35)).is_empty());
        p.line(
            &Event::ApplyComplete {
                address: key,
                action: Action::Create,
                elapsed_seconds: 36.0,
            },
            at(36),
        );
        assert!(p.heartbeats(at(60)).is_empty());
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0.0), "0s");
        assert_eq!(duration(59.9), "59s");
        assert_eq!(duration(60.0), "1m0s");
        assert_eq!(duration(f64::NAN), "0s");
        assert_eq!(duration(7322.0), "2h2m2s");
    }
}
