//! [`Json`]: a JSON value kept as its compact text.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt;

/// A JSON value kept as its compact text, parsed where it is looked at.
///
/// A plan keeps the live state of every resource it read, and a fleet's plan is mostly no-ops
/// whose state nobody looks at. As a parsed `serde_json::Value` that state costs about ten times
/// its text (every object is a B-tree whose first node is some 600 bytes, however few keys it
/// holds): 78 KB per cluster for the agents' 7 KB of projected manifests. Kept as text it costs
/// its length; a diff, a view or a provider's apply parses it with [`Json::value`].
#[derive(Clone)]
pub struct Json(Box<RawValue>);

impl Json {
    /// The compact text of `v`.
    pub fn new(v: &Value) -> Self {
        // A `Value` always serialises (its map keys are strings).
        Json(serde_json::value::to_raw_value(v).unwrap_or_else(|_| Self::null()))
    }

    fn null() -> Box<RawValue> {
        RawValue::from_string("null".to_owned()).unwrap_or_else(|_| unreachable!("null is JSON"))
    }

    /// The value, parsed.
    pub fn value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }

    /// The compact text.
    pub fn text(&self) -> &str {
        self.0.get()
    }
}

impl From<Value> for Json {
    fn from(v: Value) -> Self {
        Json::new(&v)
    }
}

impl PartialEq for Json {
    /// Texts made by [`Json::new`] are canonical (keys sorted, no spaces), so equal values have
    /// equal texts.
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl fmt::Debug for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.get())
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Json {
    /// Through a `Value`, so any deserializer will do and the text is canonical.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Json::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_text_round_trips_and_is_canonical() {
        let v = json!({"b": [1, 2.5, "x"], "a": {"z": null, "y": true}, "n": u64::MAX});
        let j = Json::new(&v);
        assert_eq!(j.value(), v);
        assert_eq!(
            j.text(),
            r#"{"a":{"y":true,"z":null},"b":[1,2.5,"x"],"n":18446744073709551615}"#
        );
        let back: Json = serde_json::from_str(
            "{ \"n\" : 18446744073709551615, \"b\":[1,2.5,\"x\"], \"a\":{\"z\":null,\"y\":true} }",
        )
        .unwrap();
        assert_eq!(back, j);
        assert_eq!(serde_json::to_value(&j).unwrap(), v);
        assert_eq!(serde_json::to_string(&j).unwrap(), j.text());
    }
}
