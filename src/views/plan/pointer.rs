//! JSON pointers (RFC 6901) into a change's values: the paths of sensitive, unknown and
//! replace-forcing attributes.

/// A JSON pointer segment for a key.
pub(super) fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

pub(super) fn unescape(seg: &str) -> String {
    seg.replace("~1", "/").replace("~0", "~")
}

/// True when `ptr` is `base` or inside it.
pub(super) fn at_or_under(ptr: &str, base: &str) -> bool {
    ptr == base || (ptr.starts_with(base) && ptr[base.len()..].starts_with('/'))
}
