//! The plan: a value that says what apply will do, and why.
//!
//! A [`Plan`] is produced by the planner and consumed by the executor; neither needs the other
//! to exist. It serialises (with a `format_version`) for `plan -out`, `show --json` and review,
//! and it never holds a secret: providers report sensitive attribute paths, and their values
//! are left out before the plan is built.
//!
//! | action  | before            | after                         |
//! |---------|-------------------|-------------------------------|
//! | create  | absent            | the planned object            |
//! | update  | the live object   | the planned object            |
//! | replace | the live object   | the planned new object        |
//! | delete  | the live object   | absent                        |
//! | no-op   | the live object   | the live object               |
//! | read    | absent            | the object read (data nodes)  |

use crate::address::Address;
pub use crate::json::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The plan format version. Readers reject another major version and ignore unknown fields.
pub const FORMAT_VERSION: &str = "1.0";

/// What will happen to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Nothing: live state matches the desired state.
    NoOp,
    /// The resource is created.
    Create,
    /// A data source is read.
    Read,
    /// The resource is changed in place.
    Update,
    /// The resource is deleted and created again (an attribute cannot change in place).
    Replace,
    /// The resource is deleted.
    Delete,
}

impl Action {
    /// The symbol the human plan shows: `+`, `~`, `-/+`, `-`, `<=`, or a space.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Read => "<=",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }

    /// True for actions that change something.
    pub fn is_change(self) -> bool {
        !matches!(self, Action::NoOp | Action::Read)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::NoOp => "no-op",
            Action::Create => "create",
            Action::Read => "read",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
        })
    }
}

/// Why a resource is replaced, deleted or created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// An attribute that cannot change in place differs.
    CannotUpdate,
    /// The user asked for it (`--replace`).
    Requested,
    /// The resource is no longer in the configuration (prune).
    DeleteBecauseNoResourceConfig,
    /// `destroy` was asked for.
    DeleteBecauseDestroy,
    /// A resource it is bound to is replaced (for example its key changed).
    ReplaceBecauseDependency,
    /// The resource does not exist.
    NotFound,
    /// Anything else the provider explains in the message.
    Other,
}

/// The reason for an action, in code and words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// A stable code.
    pub code: ReasonCode,
    /// A sentence for people.
    pub message: String,
}

impl Reason {
    /// A reason from a code and a message.
    pub fn new(code: ReasonCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// One planned change.
///
/// A no-op's planned state is its live state: the planner leaves `after` empty rather than keep a
/// second copy of `before` (a fleet's plan is mostly no-ops), and [`Change::planned_after`] and
/// the serialised form (plan files, `plan --json`) still give it as `after`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Change {
    /// The resource.
    pub address: Address,
    /// What happens.
    pub action: Action,
    /// Why, for replace and delete (and anything else worth saying).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// The live state before the change (sensitive values removed), as compact text (see
    /// [`Json`]; [`Change::before_value`] parses it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Json>,
    /// The planned state after the change (sensitive values removed); for a no-op, empty means
    /// `before` (see [`Change::planned_after`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// JSON pointers into `after` whose value is known only after apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_unknown: Vec<String>,
    /// JSON pointers of attributes whose values are secret (shown as `(sensitive)`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive_paths: Vec<String>,
    /// JSON pointers of the attributes that force a replacement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace_paths: Vec<String>,
    /// The live version observed when planning (ETag, resourceVersion or a digest), so apply
    /// can refuse a stale plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_version: Option<String>,
    /// Outputs known at plan time (for no-op resources), used by dependents at apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Value>,
    /// The desired attributes to apply, references unresolved (never secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<Value>,
    /// Addresses this change must wait for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<Address>,
    /// For a delete: deletes that must finish before this one (instead of after it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delete_after: Vec<Address>,
    /// Addresses whose changes this one causes (a replace cascades to them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cascades_to: Vec<Address>,
    /// Set when the difference is drift: the live state changed outside arcplan while the
    /// configuration of the resource is still what arcplan last applied (see [`Drift`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
    /// Set in a sharded run for a change another shard owns: this run's action is then `read`
    /// (it only waits, during apply, for the owner to converge the resource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
}

/// The shard that owns a change a sharded run only waits for (see [`crate::shard`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Who owns it, for people: `shard K/N`, or the fleet's run (for an in-cluster run).
    pub shard: String,
    /// What the owner will do.
    pub action: Action,
}

/// A difference that arose outside arcplan.
///
/// arcplan keeps no state file, so "what arcplan last applied" is recorded on the resource
/// itself: when a provider applies a change it records the [`desired_digest`] of the change's
/// desired attributes (wherever the resource can carry it, such as an annotation), and its
/// `read` reports it back. A difference between live and desired state is **drift** when the
/// configuration's digest still equals the recorded one (nobody edited the file; the live state
/// moved), and a **configuration change** otherwise. A resource whose provider records nothing
/// cannot be told apart: a normal plan shows its difference as a change; a refresh-only plan,
/// which must not hide a difference, lists it as drift with `attributed: false` (it may also be
/// a change to the file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// What converging would do. A normal plan does it (it equals the change's action); a
    /// refresh-only plan keeps `no-op` as its action and says here what a normal plan would do.
    pub action: Action,
    /// What differs, in words (the provider's reason).
    pub message: String,
    /// False when the resource keeps no record of arcplan's last apply, so the difference may
    /// as well be a change of the configuration (refresh-only plans only).
    #[serde(default = "attributed_default")]
    pub attributed: bool,
}

fn attributed_default() -> bool {
    true
}

impl Change {
    /// A change with just an address and an action.
    pub fn new(address: Address, action: Action) -> Self {
        Self {
            address,
            action,
            reason: None,
            before: None,
            after: None,
            after_unknown: Vec::new(),
            sensitive_paths: Vec::new(),
            replace_paths: Vec::new(),
            observed_version: None,
            outputs: None,
            desired: None,
            depends_on: Vec::new(),
            delete_after: Vec::new(),
            cascades_to: Vec::new(),
            drift: None,
            owner: None,
        }
    }

    /// The live state before the change, parsed.
    pub fn before_value(&self) -> Option<Value> {
        self.before.as_ref().map(Json::value)
    }

    /// The planned state after the change: `after`, or for a no-op without one, `before`.
    pub fn planned_after(&self) -> Option<std::borrow::Cow<'_, Value>> {
        match (&self.after, self.action) {
            (None, Action::NoOp) => self.before_value().map(std::borrow::Cow::Owned),
            (after, _) => after.as_ref().map(std::borrow::Cow::Borrowed),
        }
    }
}

/// A change's `after` as it is written.
#[derive(Serialize)]
#[serde(untagged)]
enum AfterOut<'a> {
    Text(&'a Json),
    Value(&'a Value),
}

/// [`Change`] as it is written: the fields in order, a no-op's `after` given as its `before`.
#[derive(Serialize)]
struct ChangeOut<'a> {
    address: &'a Address,
    action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a Reason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<&'a Json>,
    /// A no-op's `after` is its `before`, written from the same text.
    #[serde(skip_serializing_if = "Option::is_none")]
    after: Option<AfterOut<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    after_unknown: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    sensitive_paths: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    replace_paths: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    observed_version: Option<&'a String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outputs: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    desired: Option<&'a Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    depends_on: &'a [Address],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    delete_after: &'a [Address],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    cascades_to: &'a [Address],
    #[serde(skip_serializing_if = "Option::is_none")]
    drift: Option<&'a Drift>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<&'a Owner>,
}

impl Serialize for Change {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ChangeOut {
            address: &self.address,
            action: self.action,
            reason: self.reason.as_ref(),
            before: self.before.as_ref(),
            after: match (&self.after, self.action) {
                (None, Action::NoOp) => self.before.as_ref().map(AfterOut::Text),
                (after, _) => after.as_ref().map(AfterOut::Value),
            },
            after_unknown: &self.after_unknown,
            sensitive_paths: &self.sensitive_paths,
            replace_paths: &self.replace_paths,
            observed_version: self.observed_version.as_ref(),
            outputs: self.outputs.as_ref(),
            desired: self.desired.as_ref(),
            depends_on: &self.depends_on,
            delete_after: &self.delete_after,
            cascades_to: &self.cascades_to,
            drift: self.drift.as_ref(),
            owner: self.owner.as_ref(),
        }
        .serialize(s)
    }
}

/// The digest of a resource's desired attributes (references unresolved, keys in canonical
/// order): what a provider records when it applies a change, and what the planner compares to
/// tell drift from a configuration change. `None` (no attributes) digests like `null`.
pub fn desired_digest(desired: Option<&Value>) -> String {
    value_digest(desired.unwrap_or(&Value::Null))[..32].to_owned()
}

/// The SHA-256 (hex) of `value`'s [`canonical_json`]: equal values, equal digests.
pub fn value_digest(value: &Value) -> String {
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(canonical_json(value).as_bytes());
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// `value` as JSON text with object keys sorted at every level, so equal values give equal text.
pub fn canonical_json(value: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&m[k]));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// The outcome of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// The condition holds.
    Pass,
    /// The condition does not hold; the plan (or apply) fails.
    Fail,
    /// The condition can only be evaluated during apply.
    Pending,
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check's address.
    pub address: Address,
    /// Pass, fail or pending.
    pub status: CheckStatus,
    /// What was checked and what was found.
    pub summary: String,
    /// How to make a failing check pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Structured details (the principal, scope, missing actions...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// Addresses a post-apply check waits for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<Address>,
    /// The check's attributes, references unresolved, for evaluation during apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<Value>,
}

/// What kind of run the plan is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanMode {
    /// Converge on the configuration.
    #[default]
    Normal,
    /// Delete everything the configuration manages.
    Destroy,
    /// Only read and report; change nothing.
    RefreshOnly,
}

/// A whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// [`FORMAT_VERSION`] when written.
    pub format_version: String,
    /// The digest of the configuration file the plan was made from.
    pub config_digest: String,
    /// The stack.
    pub stack: String,
    /// Normal, destroy or refresh-only.
    #[serde(default)]
    pub mode: PlanMode,
    /// Every resource's change (no-ops included), in dependency order.
    pub changes: Vec<Change>,
    /// Check results.
    #[serde(default)]
    pub checks: Vec<CheckResult>,
    /// `K/N` when the plan is one shard's (`--shard`); see [`crate::shard::merge`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

/// The plan's summary counts, as the human summary line shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Resources created (replacements included).
    pub add: usize,
    /// Resources updated in place.
    pub change: usize,
    /// Resources deleted (replacements included).
    pub destroy: usize,
}

impl Plan {
    /// The counts for `Plan: X to add, Y to change, Z to destroy.`.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1;
                }
                Action::Delete => s.destroy += 1,
                Action::NoOp | Action::Read => {}
            }
        }
        s
    }

    /// True when applying would change something.
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action.is_change())
    }

    /// The changes that are drift (refresh-only plans included, where the action is `no-op`).
    pub fn drifted(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.drift.is_some())
    }

    /// True when something changed outside arcplan.
    pub fn has_drift(&self) -> bool {
        self.drifted().next().is_some()
    }

    /// True when the plan holds apply-time checks (they run on every apply, even one that
    /// changes nothing).
    pub fn has_pending_checks(&self) -> bool {
        self.checks.iter().any(|c| c.status == CheckStatus::Pending)
    }

    /// True when a check failed (the plan cannot be applied).
    pub fn has_failed_checks(&self) -> bool {
        self.checks.iter().any(|c| c.status == CheckStatus::Fail)
    }

    /// The change for an address.
    pub fn change(&self, address: &Address) -> Option<&Change> {
        self.changes.iter().find(|c| &c.address == address)
    }

    /// Parses a saved plan, refusing another major format version.
    pub fn from_json(text: &str) -> Result<Plan, PlanFileError> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| PlanFileError::Malformed(e.to_string()))?;
        let version = v
            .get("format_version")
            .and_then(Value::as_str)
            .ok_or_else(|| PlanFileError::Malformed("no format_version".into()))?;
        let major = |s: &str| s.split('.').next().unwrap_or_default().to_owned();
        if major(version) != major(FORMAT_VERSION) {
            return Err(PlanFileError::Version {
                found: version.to_owned(),
                supported: FORMAT_VERSION,
            });
        }
        serde_json::from_value(v).map_err(|e| PlanFileError::Malformed(e.to_string()))
    }
}

/// Why a saved plan cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanFileError {
    /// Not a plan file.
    #[error("not an arcplan plan file: {0}")]
    Malformed(String),
    /// A plan from an incompatible arcplan version.
    #[error(
        "plan format {found} is not supported (this arcplan reads {supported}); make the plan again with this version"
    )]
    Version {
        /// The version in the file.
        found: String,
        /// The version this build reads.
        supported: &'static str,
    },
}

/// Removes the values at `paths` (JSON pointers) from `value`, replacing them with the marker
/// string `(sensitive)`. Used by the planner so no secret reaches a plan.
pub fn redact(value: &mut Value, paths: &[String]) {
    for p in paths {
        if let Some(slot) = value.pointer_mut(p) {
            *slot = Value::String("(sensitive)".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::ResourceType;

    fn plan(actions: &[Action]) -> Plan {
        Plan {
            format_version: FORMAT_VERSION.into(),
            config_digest: "d".into(),
            stack: "s".into(),
            mode: PlanMode::Normal,
            changes: actions
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    Change::new(
                        Address::new(ResourceType::of("azure.resourceGroup"), format!("g{i}")),
                        *a,
                    )
                })
                .collect(),
            checks: Vec::new(),
            shard: None,
        }
    }

    #[test]
    fn summary_counts_replace_as_add_and_destroy() {
        let p = plan(&[
            Action::Create,
            Action::Update,
            Action::Replace,
            Action::Delete,
            Action::NoOp,
            Action::Read,
        ]);
        assert_eq!(
            p.summary(),
            Summary {
                add: 2,
                change: 1,
                destroy: 2
            }
        );
        assert!(p.has_changes());
        assert!(!plan(&[Action::NoOp, Action::Read]).has_changes());
    }

    #[test]
    fn serde_form_has_format_version_and_kebab_actions() {
        let p = plan(&[Action::NoOp]);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["format_version"], "1.0");
        assert_eq!(v["changes"][0]["action"], "no-op");
        assert_eq!(v["changes"][0]["address"], "azure.resourceGroup.g0");
        let back = Plan::from_json(&v.to_string()).unwrap();
        assert_eq!(back, p);
    }

    /// Every field of a change survives a plan file, a sharded run's owner included (a saved
    /// shard plan applied later must still wait for the other shard's change).
    #[test]
    fn a_saved_change_keeps_every_field() {
        let mut p = plan(&[Action::Read]);
        p.shard = Some("2/4".into());
        let a: Address = "x.y.dep".parse().unwrap();
        let c = &mut p.changes[0];
        c.reason = Some(Reason::new(ReasonCode::Other, "why"));
        c.before = Some(serde_json::json!({"b": 1}).into());
        c.after = Some(serde_json::json!({"a": 2}));
        c.after_unknown = vec!["/u".into()];
        c.sensitive_paths = vec!["/s".into()];
        c.replace_paths = vec!["/r".into()];
        c.observed_version = Some("v1".into());
        c.outputs = Some(serde_json::json!({"o": 3}));
        c.desired = Some(serde_json::json!({"d": 4}));
        c.depends_on = vec![a.clone()];
        c.delete_after = vec![a.clone()];
        c.cascades_to = vec![a];
        c.drift = Some(Drift {
            action: Action::Update,
            message: "moved".into(),
            attributed: false,
        });
        c.owner = Some(Owner {
            shard: "shard 1/4".into(),
            action: Action::Create,
        });
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(Plan::from_json(&text).unwrap(), p, "{text}");
    }

    #[test]
    fn rejects_other_major_versions() {
        let mut v = serde_json::to_value(plan(&[])).unwrap();
        v["format_version"] = "2.0".into();
        assert!(matches!(
            Plan::from_json(&v.to_string()),
            Err(PlanFileError::Version { .. })
        ));
        assert!(matches!(
            Plan::from_json("{}"),
            Err(PlanFileError::Malformed(_))
        ));
        v["format_version"] = "1.7".into();
        v["future_field"] = 1.into();
        assert!(
            Plan::from_json(&v.to_string()).is_ok(),
            "minor versions and unknown fields are accepted"
        );
    }

    #[test]
    fn redact_replaces_sensitive_values() {
        let mut v = serde_json::json!({"a": {"secret": "s3cr3t"}, "b": 1});
        redact(&mut v, &["/a/secret".into(), "/missing".into()]);
        assert_eq!(
            v,
            serde_json::json!({"a": {"secret": "(sensitive)"}, "b": 1})
        );
    }

    #[test]
    fn a_no_op_is_written_with_its_before_as_after() {
        let mut c = Change::new(
            Address::new(ResourceType::of("azure.resourceGroup"), "rg"),
            Action::NoOp,
        );
        c.before = Some(serde_json::json!({"name": "rg", "tags": {"a": "b"}}).into());
        assert_eq!(c.planned_after().map(|a| a.into_owned()), c.before_value());
        let written = serde_json::to_value(&c).unwrap();
        assert_eq!(written["after"], written["before"]);
        let mut full = c.clone();
        full.after = full.before_value();
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            serde_json::to_string(&full).unwrap()
        );
        let read: Change = serde_json::from_value(written).unwrap();
        assert_eq!(
            read.planned_after().map(|a| a.into_owned()),
            c.before_value()
        );
        assert_eq!(read.before, c.before, "the text reads back the same");
    }
}
