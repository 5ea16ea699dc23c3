//! ARM's `$filter` on resource and resource group lists (the subset arcplan and az use).

use serde_json::{Map, Value};

use super::{ArmError, eq};

/// One clause of a `$filter`.
#[derive(Debug, PartialEq)]
pub(crate) enum Clause {
    Eq(String, String, bool),
    StartsWithTagName(String),
    SubstringOf(String, String),
}

fn bad_filter(filter: &str) -> ArmError {
    ArmError::bad_request(
        "InvalidFilterInQueryString",
        format!(
            "The $filter '{filter}' is invalid or not supported by the sandbox. Supported: tagName/tagValue/resourceType/resourceGroup/location/name eq|ne '…', startswith(tagName, '…'), substringof('…', name|resourceGroup), joined with 'and'."
        ),
    )
}

/// Parses an ARM `$filter` (the subset arcplan and az use).
pub(crate) fn parse_filter(filter: &str) -> Result<Vec<Clause>, ArmError> {
    // Split on ` and ` outside quotes.
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let chars: Vec<char> = filter.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            in_quote = !in_quote;
        }
        if !in_quote && c == ' ' {
            let rest: String = chars[i..chars.len().min(i + 5)].iter().collect();
            if rest.eq_ignore_ascii_case(" and ") {
                parts.push(std::mem::take(&mut cur));
                i += 5;
                continue;
            }
        }
        cur.push(c);
        i += 1;
    }
    parts.push(cur);
    let unquote = |s: &str| -> Option<String> {
        let s = s.trim();
        let inner = s.strip_prefix('\'')?.strip_suffix('\'')?;
        Some(inner.replace("''", "'"))
    };
    let mut out = Vec::new();
    for p in parts {
        let p = p.trim();
        let lower = p.to_ascii_lowercase();
        if let Some(args) = lower
            .strip_prefix("startswith(")
            .and_then(|_| p.get("startswith(".len()..p.len().saturating_sub(1)))
        {
            let (field, value) = args.split_once(',').ok_or_else(|| bad_filter(filter))?;
            if !eq(field.trim(), "tagName") {
                return Err(bad_filter(filter));
            }
            out.push(Clause::StartsWithTagName(
                unquote(value).ok_or_else(|| bad_filter(filter))?,
            ));
            continue;
        }
        if let Some(args) = lower
            .strip_prefix("substringof(")
            .and_then(|_| p.get("substringof(".len()..p.len().saturating_sub(1)))
        {
            let (value, field) = args.rsplit_once(',').ok_or_else(|| bad_filter(filter))?;
            let field = field.trim();
            if !(eq(field, "name") || eq(field, "resourceGroup")) {
                return Err(bad_filter(filter));
            }
            out.push(Clause::SubstringOf(
                unquote(value).ok_or_else(|| bad_filter(filter))?,
                field.to_ascii_lowercase(),
            ));
            continue;
        }
        let mut it = p.splitn(3, ' ');
        let (Some(field), Some(op), Some(value)) = (it.next(), it.next(), it.next()) else {
            return Err(bad_filter(filter));
        };
        let negate = if eq(op, "eq") {
            false
        } else if eq(op, "ne") {
            true
        } else {
            return Err(bad_filter(filter));
        };
        let known = [
            "tagname",
            "tagvalue",
            "resourcetype",
            "resourcegroup",
            "location",
            "name",
        ];
        let f = field.to_ascii_lowercase();
        if !known.contains(&f.as_str()) {
            return Err(bad_filter(filter));
        }
        out.push(Clause::Eq(
            f,
            unquote(value).ok_or_else(|| bad_filter(filter))?,
            negate,
        ));
    }
    let has = |n: &str| {
        out.iter()
            .any(|c| matches!(c, Clause::Eq(f, _, _) if f == n))
    };
    if has("tagvalue") && !has("tagname") {
        return Err(bad_filter(filter));
    }
    Ok(out)
}

pub(crate) fn tags_match(tags: &Map<String, Value>, clauses: &[Clause]) -> bool {
    let name = clauses.iter().find_map(|c| match c {
        Clause::Eq(f, v, false) if f == "tagname" => Some(v),
        _ => None,
    });
    let value = clauses.iter().find_map(|c| match c {
        Clause::Eq(f, v, false) if f == "tagvalue" => Some(v),
        _ => None,
    });
    let prefix = clauses.iter().find_map(|c| match c {
        Clause::StartsWithTagName(p) => Some(p),
        _ => None,
    });
    if let Some(n) = name {
        // Tag names are case-insensitive, values case-sensitive.
        let Some((_, v)) = tags.iter().find(|(k, _)| eq(k, n)) else {
            return false;
        };
        if let Some(want) = value
            && v.as_str() != Some(want.as_str())
        {
            return false;
        }
    }
    if let Some(p) = prefix
        && !tags
            .keys()
            .any(|k| k.to_ascii_lowercase().starts_with(&p.to_ascii_lowercase()))
    {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        assert_eq!(
            parse_filter("tagName eq 'arcplan-stack' and tagValue eq 'it''s'").unwrap(),
            vec![
                Clause::Eq("tagname".into(), "arcplan-stack".into(), false),
                Clause::Eq("tagvalue".into(), "it's".into(), false),
            ]
        );
        assert_eq!(
            parse_filter("resourceType eq 'Microsoft.Kubernetes/connectedClusters'").unwrap(),
            vec![Clause::Eq(
                "resourcetype".into(),
                "Microsoft.Kubernetes/connectedClusters".into(),
                false
            )]
        );
        assert!(parse_filter("tagValue eq 'x'").is_err());
        assert!(parse_filter("foo gt 3").is_err());
        assert_eq!(
            parse_filter("startswith(tagName, 'arc')").unwrap(),
            vec![Clause::StartsWithTagName("arc".into())]
        );
    }
}
