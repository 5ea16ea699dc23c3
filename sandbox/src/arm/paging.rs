//! Paging of the ARM emulator's lists: `$top`, `$skipToken` and `nextLink`, at the configured page
//! size.

use serde_json::{Value, json};

use super::state::ArmState;
use super::{ArmError, Ctx};

impl ArmState {
    /// One page of `items` plus `nextLink`, honouring `$skipToken` and `$top`.
    pub fn page(&self, ctx: &Ctx, items: Vec<Value>) -> Result<Value, ArmError> {
        let offset = match ctx.q("$skipToken") {
            None => 0,
            Some(t) => decode_skip_token(t).ok_or_else(|| {
                ArmError::bad_request(
                    "InvalidSkipToken",
                    format!("The skip token '{t}' is invalid."),
                )
            })?,
        };
        let top = match ctx.q("$top") {
            None => None,
            Some(t) => Some(t.parse::<usize>().map_err(|_| {
                ArmError::bad_request(
                    "InvalidTopQueryParameter",
                    format!("The value '{t}' of the $top query parameter is invalid; it must be a positive integer."),
                )
            })?),
        };
        let total = top.map_or(items.len(), |t| t.min(items.len()));
        let page_size = self.cfg.page_size.max(1);
        let end = (offset + page_size).min(total);
        let page: Vec<Value> = items
            .into_iter()
            .skip(offset)
            .take(end.saturating_sub(offset))
            .collect();
        let mut out = json!({ "value": page });
        if end < total {
            let kept: Vec<String> = ctx
                .raw_query
                .split('&')
                .filter(|p| !p.is_empty())
                .filter(|p| {
                    let name = p.split('=').next().unwrap_or("");
                    let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
                    !name.eq_ignore_ascii_case("$skipToken")
                })
                .map(str::to_string)
                .collect();
            let mut q = kept.join("&");
            if !q.is_empty() {
                q.push('&');
            }
            q.push_str(&format!("%24skipToken={}", encode_skip_token(end)));
            out["nextLink"] = json!(format!("{}{}?{q}", ctx.base, ctx.path));
        }
        Ok(out)
    }
}

fn encode_skip_token(offset: usize) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("sandbox-offset:{offset}"))
}

fn decode_skip_token(token: &str) -> Option<usize> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("sandbox-offset:")?
        .parse()
        .ok()
}
