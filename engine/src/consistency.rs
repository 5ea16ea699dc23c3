//! The engine checks its providers (Terraform's "provider produced an inconsistent result"):
//! a planned value must respect every declared attribute, and an apply result must agree with
//! its plan. Either failure is a defect of the provider, reported as an error naming the
//! resource and the attribute, never applied or recorded silently.

use crate::address::Address;
use crate::diag::Diagnostic;
use serde_json::Value;

/// One attribute where a provider's answer differs from what it had to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// JSON pointer of the attribute.
    pub pointer: String,
    /// The value it had to keep.
    pub expected: Value,
    /// What the provider answered.
    pub found: Value,
}

/// Every attribute of `expected` that `actual` contradicts. Objects are compared key by key:
/// `actual` may hold more (computed attributes, merged tags) and may leave an attribute out
/// (inputs that are not part of a kind's state, such as a timeout), but a value it carries must
/// be the expected one; anything else must be equal. A null in `expected` declares nothing.
/// Pointers in `skip`, and everything under them, are not compared (values unknown until
/// apply, secrets).
pub fn mismatches(expected: &Value, actual: &Value, skip: &[String]) -> Vec<Mismatch> {
    let mut out = Vec::new();
    walk(expected, actual, &mut String::new(), skip, &mut out);
    out
}

fn skipped(pointer: &str, skip: &[String]) -> bool {
    skip.iter().any(|s| {
        pointer == s || (pointer.starts_with(s.as_str()) && pointer[s.len()..].starts_with('/'))
    })
}

fn walk(
    expected: &Value,
    actual: &Value,
    pointer: &mut String,
    skip: &[String],
    out: &mut Vec<Mismatch>,
) {
    if expected.is_null() || skipped(pointer, skip) {
        return;
    }
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                let Some(found) = a.get(k) else { continue };
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                walk(v, found, pointer, skip, out);
                pointer.truncate(len);
            }
        }
        (e, a) if a == e => {}
        (e, a) => out.push(Mismatch {
            pointer: pointer.clone(),
            expected: e.clone(),
            found: a.clone(),
        }),
    }
}

fn describe(m: &Mismatch) -> String {
    let at = if m.pointer.is_empty() {
        "/"
    } else {
        &m.pointer
    };
    format!("{at} is {}, not {}", m.found, m.expected)
}

fn defect(code: &'static str, address: &Address, what: &str, found: &[Mismatch]) -> Diagnostic {
    let list: Vec<String> = found.iter().map(describe).collect();
    Diagnostic::error(code, format!("{what} for {address}: {}", list.join("; ")))
        .with_address(address.to_string())
        .with_hint(format!(
            "this is a defect of the provider of {}, not of the configuration: nothing was changed for this resource by the engine on its account; report it with this message",
            address.rtype
        ))
}

/// The planned state must not contradict any declared attribute (known, not secret).
pub fn check_plan(
    address: &Address,
    desired: &Value,
    after: &Value,
    skip: &[String],
) -> Result<(), Diagnostic> {
    let found = mismatches(desired, after, skip);
    if found.is_empty() {
        Ok(())
    } else {
        Err(defect(
            "inconsistent-plan",
            address,
            "the provider planned values that differ from the configuration",
            &found,
        ))
    }
}

/// The state an apply returns must not contradict what the plan promised about the declared
/// attributes (known, not secret): the planned value of every attribute of `desired`. Computed
/// attributes the plan carried over from the prior state (timestamps, server-side status) may
/// change with any write and are not compared.
pub fn check_apply(
    address: &Address,
    desired: &Value,
    planned: &Value,
    state: &Value,
    skip: &[String],
) -> Result<(), Diagnostic> {
    let found = mismatches(&declared_part(planned, desired), state, skip);
    if found.is_empty() {
        Ok(())
    } else {
        Err(defect(
            "inconsistent-result",
            address,
            "the provider produced a result that differs from its plan",
            &found,
        ))
    }
}

/// The part of `planned` at the attributes `desired` declares (objects key by key; anything
/// else whole). An attribute not declared is null: nothing to compare.
fn declared_part(planned: &Value, desired: &Value) -> Value {
    match (planned, desired) {
        (Value::Object(p), Value::Object(d)) => Value::Object(
            p.iter()
                .filter_map(|(k, v)| Some((k.clone(), declared_part(v, d.get(k)?))))
                .collect(),
        ),
        (_, Value::Null) => Value::Null,
        (p, _) => p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::ResourceType;
    use serde_json::json;

    fn addr() -> Address {
        Address::new(ResourceType::of("test.thing"), "a")
    }

    #[test]
    fn extra_computed_attributes_and_merged_tags_are_fine() {
        let desired = json!({"location": "westeurope", "tags": {"env": "dev"}, "unset": null});
        let after =
            json!({"location": "westeurope", "id": "/x", "tags": {"env": "dev", "stack": "s"}});
        assert!(check_plan(&addr(), &desired, &after, &[]).is_ok());
    }

    #[test]
    fn a_changed_attribute_is_named_and_a_left_out_one_is_not() {
        let desired =
            json!({"location": "westeurope", "timeout": 300, "tags": {"env": "dev", "a/b": 1}});
        let after = json!({"location": "eastus", "tags": {"env": "dev", "a/b": 2}});
        let found = mismatches(&desired, &after, &[]);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].pointer, "/location");
        assert_eq!(found[1].pointer, "/tags/a~1b");
        assert_eq!(found[1].found, json!(2));
        let d = check_plan(&addr(), &desired, &after, &[]).unwrap_err();
        assert_eq!(d.code, "inconsistent-plan");
        assert!(
            d.message
                .contains("/location is \"eastus\", not \"westeurope\""),
            "{}",
            d.message
        );
        assert!(
            d.message.contains("/tags/a~1b is 2, not 1"),
            "{}",
            d.message
        );
        // An object where a scalar was declared (or the reverse) contradicts it.
        assert_eq!(
            mismatches(&json!({"t": {"a": 1}}), &json!({"t": "x"}), &[]).len(),
            1
        );
        assert_eq!(d.address.as_deref(), Some("test.thing.a"));
    }

    #[test]
    fn unknown_and_secret_paths_are_not_compared() {
        let desired = json!({"id": {"$ref": "x"}, "key": "secret", "nested": {"k": 1}});
        let after = json!({"key": "(sensitive)"});
        let skip = ["/id".to_owned(), "/key".to_owned(), "/nested".to_owned()];
        assert!(mismatches(&desired, &after, &skip).is_empty());
        // A pointer that only shares a prefix is still compared.
        let desired = json!({"idx": 1});
        assert_eq!(
            mismatches(&desired, &json!({"idx": 2}), &["/id".to_owned()]).len(),
            1
        );
    }

    #[test]
    fn arrays_and_scalars_compare_whole() {
        let desired = json!({"list": [1, 2]});
        assert!(mismatches(&desired, &json!({"list": [1, 2]}), &[]).is_empty());
        assert_eq!(mismatches(&desired, &json!({"list": [2, 1]}), &[]).len(), 1);
        let d = check_apply(
            &addr(),
            &json!({"v": "1.2"}),
            &json!({"v": "1.2"}),
            &json!({"v": "1.3"}),
            &[],
        )
        .unwrap_err();
        assert_eq!(d.code, "inconsistent-result");
    }

    #[test]
    fn an_apply_may_change_computed_attributes_but_not_declared_ones() {
        let desired = json!({"tags": {"env": "dev"}, "agentVersion": "1.2"});
        let planned =
            json!({"tags": {"env": "dev", "stack": "s"}, "agentVersion": "1.2", "lastSeen": "t1"});
        let state =
            json!({"tags": {"env": "dev", "stack": "s"}, "agentVersion": "1.2", "lastSeen": "t2"});
        assert!(check_apply(&addr(), &desired, &planned, &state, &[]).is_ok());
        let state = json!({"tags": {"env": "prod"}, "agentVersion": "1.2", "lastSeen": "t2"});
        let d = check_apply(&addr(), &desired, &planned, &state, &[]).unwrap_err();
        assert!(d.message.contains("/tags/env"), "{}", d.message);
    }
}
