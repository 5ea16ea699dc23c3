//! The definition of every served kind ([`ResourceDef`] values) with its rules: defaulting,
//! validation, the managedFields skeleton, Table columns and cells. One module per API group
//! (`other` holds the groups with one kind each); adding a kind is adding a definition here
//! and listing it in [`super::resources::RESOURCES`].

pub mod apps;
pub mod batch;
pub mod core;
pub mod other;
pub mod rbac;

use serde_json::{Value, json};

use super::resources::{Column, Defaulting, NameRule, ResourceDef};
use super::status::Cause;
use super::table::age;

/// `validate` of kinds with no rule of their own.
pub fn no_validation(_: &Value, _: &mut Vec<Cause>) {}

/// `defaults` of kinds with no defaults.
pub fn no_defaults(_: &mut Value, _: &Defaulting) {}

/// `skeleton` of kinds whose Go type has no non-pointer struct besides `metadata`.
pub fn metadata_skeleton() -> Value {
    json!({"metadata": {}})
}

/// `skeleton` of kinds with `spec` and `status` structs.
pub fn spec_status_skeleton() -> Value {
    json!({"metadata": {}, "spec": {}, "status": {}})
}

/// A Table column.
pub const fn col(name: &'static str, ty: &'static str, priority: i32) -> Column {
    Column {
        name,
        ty,
        format: "",
        priority,
    }
}

/// The `Name` column every table starts with.
pub const NAME: Column = Column {
    name: "Name",
    ty: "string",
    format: "name",
    priority: 0,
};

/// The `Age` column.
pub const AGE: Column = col("Age", "string", 0);

/// The columns of kinds without their own printer.
pub const NAME_AGE: &[Column] = &[NAME, AGE];

/// The cells of [`NAME_AGE`].
pub fn name_age_cells(o: &Value) -> Vec<Value> {
    vec![name_cell(o), age_cell(o)]
}

/// The `Name` cell.
pub fn name_cell(o: &Value) -> Value {
    json!(s(o, "/metadata/name"))
}

/// The `Age` cell.
pub fn age_cell(o: &Value) -> Value {
    json!(age(o))
}

/// The string at `ptr` (empty when missing).
pub fn s<'a>(obj: &'a Value, ptr: &str) -> &'a str {
    obj.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

/// The integer at `ptr` (0 when missing).
pub fn n(obj: &Value, ptr: &str) -> i64 {
    obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

/// How many entries the map or list at `ptr` has.
pub fn len(obj: &Value, ptr: &str) -> usize {
    match obj.pointer(ptr) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

/// A validation cause.
pub fn cause(reason: &str, field: &str, message: String) -> Cause {
    Cause {
        reason: reason.into(),
        field: field.into(),
        message,
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

impl NameRule {
    /// `None` when `name` is valid, else the reason it is not.
    pub fn check(self, name: &str) -> Option<&'static str> {
        let (ok, msg) = match self {
            NameRule::DnsSubdomain => (is_dns_subdomain(name), SUBDOMAIN_MSG),
            NameRule::DnsLabel => (is_dns_label(name), LABEL_MSG),
            NameRule::PathSegment => (
                !name.is_empty()
                    && name != "."
                    && name != ".."
                    && !name.contains('/')
                    && !name.contains('%'),
                "may not contain '/'",
            ),
        };
        (!ok).then_some(msg)
    }
}

/// Validates an object about to be stored: its name (by the kind's [`NameRule`]), its labels,
/// then the kind's own rule.
pub fn validate(def: &ResourceDef, obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let name = s(obj, "/metadata/name");
    if let Some(msg) = def.name_rule.check(name) {
        causes.push(cause(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: \"{name}\": {msg}"),
        ));
    }
    if let Some(labels) = obj.pointer("/metadata/labels") {
        match labels.as_object() {
            Some(m) => {
                for (k, v) in m {
                    if !v.is_string() {
                        causes.push(cause(
                            "FieldValueInvalid",
                            &format!("metadata.labels.{k}"),
                            "Invalid value: must be a string".into(),
                        ));
                    }
                }
            }
            None => causes.push(cause(
                "FieldValueInvalid",
                "metadata.labels",
                "Invalid value: must be a map of strings".into(),
            )),
        }
    }
    (def.validate)(obj, &mut causes);
    causes
}

#[cfg(test)]
mod tests {
    use super::super::resources::{RESOURCES, by_kind, by_plural};
    use super::*;

    #[test]
    fn every_definition_is_found_by_plural_and_kind_and_has_a_cell_per_column() {
        for def in RESOURCES {
            assert!(!def.plural.is_empty() && !def.kind.is_empty(), "{def:?}");
            let found = by_plural(def.group, def.version, def.plural).expect(def.plural);
            assert_eq!(found.kind, def.kind);
            let found = by_kind(&def.api_version(), def.kind).expect(def.kind);
            assert_eq!(found.plural, def.plural);
            let obj = json!({"metadata": {"name": "x"}});
            assert_eq!((def.cells)(&obj).len(), def.columns.len(), "{}", def.kind);
        }
    }

    #[test]
    fn name_rules() {
        assert_eq!(NameRule::DnsSubdomain.check("a.b-c"), None);
        assert_eq!(NameRule::DnsSubdomain.check("A"), Some(SUBDOMAIN_MSG));
        assert_eq!(NameRule::DnsLabel.check("a.b"), Some(LABEL_MSG));
        assert_eq!(NameRule::PathSegment.check("system:Admin"), None);
        assert!(NameRule::PathSegment.check("..").is_some());
        assert!(NameRule::PathSegment.check("a%b").is_some());
    }
}
