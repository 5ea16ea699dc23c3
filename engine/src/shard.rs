//! Sharding a run across processes (`--shard K/N`): each address has one owning shard, chosen
//! by rendezvous hashing of a key the caller derives from the address (the CLI gives every
//! resource of a cluster its cluster's key, so a cluster lives in one shard). Adding a key
//! moves only that key, and the choice is the same in every process and on every machine
//! (SHA-256, not the standard library's randomly seeded hasher).
//!
//! A shard plans what it owns and what that depends on. A dependency it does not own is only
//! read: when it needs a change, the change is its owner's ([`crate::plan::Owner`]), shown as
//! such, and during apply this shard waits for the owner to converge it
//! ([`crate::executor`]). Prune deletes only what the shard owns. So the union of the shards'
//! own changes is the unsharded plan, and concurrent shard applies never write the same
//! resource.

use crate::address::Address;
use crate::plan::{Change, CheckResult, CheckStatus, Plan};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// The key an address is sharded by.
pub type KeyFn = Arc<dyn Fn(&Address) -> String + Send + Sync>;

/// One shard of a run: `index` of `count` (1-based), and how addresses are keyed; or the
/// slice of one key (an in-cluster run owns its own cluster, and what the clusters share is the
/// fleet's central run's).
#[derive(Clone)]
pub struct Shard {
    index: u32,
    count: u32,
    key: KeyFn,
    only: Option<String>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shard({})", self.name())
    }
}

impl Shard {
    /// Shard `index` of `count`, keying addresses with `key`.
    pub fn new(index: u32, count: u32, key: KeyFn) -> Result<Self, String> {
        if count == 0 || index == 0 || index > count {
            return Err(format!(
                "shard {index}/{count} does not exist: K/N needs 1 <= K <= N"
            ));
        }
        Ok(Self {
            index,
            count,
            key,
            only: None,
        })
    }

    /// The run that owns exactly the addresses keyed `only` (everything else is another run's).
    pub fn only(only: String, key: KeyFn) -> Self {
        Self {
            index: 1,
            count: 1,
            key,
            only: Some(only),
        }
    }

    /// Parses `K/N`.
    pub fn parse(text: &str) -> Result<(u32, u32), String> {
        let bad = || format!("`{text}` is not a shard: write K/N, like 2/4 (the 2nd of 4 shards)");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let k = k.trim().parse::<u32>().map_err(|_| bad())?;
        let n = n.trim().parse::<u32>().map_err(|_| bad())?;
        if n == 0 || k == 0 || k > n {
            return Err(format!(
                "shard {k}/{n} does not exist: K/N needs 1 <= K <= N"
            ));
        }
        Ok((k, n))
    }

    /// This shard's number, 1-based.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// How many shards there are.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// `K/N` (`None` for a one-key slice, which is not one of N shards).
    pub fn label(&self) -> Option<String> {
        self.only
            .is_none()
            .then(|| format!("{}/{}", self.index, self.count))
    }

    /// How messages name this run: `shard K/N`, or `this run`.
    pub fn name(&self) -> String {
        match &self.only {
            None => format!("shard {}/{}", self.index, self.count),
            Some(_) => "this run".into(),
        }
    }

    /// The shard that owns an address, 1-based (for a one-key slice: 1 for its own, 0 else).
    pub fn owner_of(&self, address: &Address) -> u32 {
        match &self.only {
            None => rendezvous(&(self.key)(address), self.count),
            Some(k) => u32::from((self.key)(address) == *k),
        }
    }

    /// Whether this shard owns an address.
    pub fn owns(&self, address: &Address) -> bool {
        self.owner_of(address) == self.index
    }

    /// How messages name the owner of an address: `shard K/N`, or (for a one-key slice) the run
    /// that manages the rest.
    pub fn owner_name(&self, address: &Address) -> String {
        match &self.only {
            None => format!("shard {}/{}", self.owner_of(address), self.count),
            Some(_) if self.owns(address) => "this run".into(),
            Some(_) => "the fleet's run (which manages what the clusters share)".into(),
        }
    }
}

/// The shard (1-based, of `count`) whose score for `key` is highest.
pub fn rendezvous(key: &str, count: u32) -> u32 {
    (1..=count.max(1))
        .max_by_key(|k| {
            let h = Sha256::digest(format!("{key}\u{0}{k}").as_bytes());
            u64::from_be_bytes(h[..8].try_into().unwrap_or([0; 8]))
        })
        .unwrap_or(1)
}

/// One plan from the saved plans of every shard of a run (`arcplan show --merge`): each change
/// from the shard that owns it, each check once with its worst result. The plans (each named,
/// for messages) must come from the same file, stack and mode, and be shards 1..N of one N,
/// each once.
pub fn merge(plans: Vec<(String, Plan)>) -> Result<Plan, String> {
    let Some((first_name, first)) = plans.first() else {
        return Err("no plan to merge".into());
    };
    let mut count = None;
    let mut seen: Vec<(u32, &str)> = Vec::new();
    for (name, p) in &plans {
        if p.config_digest != first.config_digest || p.stack != first.stack {
            return Err(format!(
                "{name} was made from another file than {first_name} (a different configuration digest or stack): merge the shards of one run"
            ));
        }
        if p.mode != first.mode {
            return Err(format!(
                "{name} is a {:?} plan, {first_name} a {:?} plan",
                p.mode, first.mode
            ));
        }
        let Some(label) = &p.shard else {
            return Err(format!(
                "{name} is not a shard's plan (it was made without --shard)"
            ));
        };
        let (k, n) = Shard::parse(label)?;
        if *count.get_or_insert(n) != n {
            return Err(format!(
                "{name} is shard {label}, but {first_name} is of {} shards",
                count.unwrap_or(n)
            ));
        }
        if let Some((_, other)) = seen.iter().find(|(s, _)| *s == k) {
            return Err(format!("{name} and {other} are both shard {label}"));
        }
        seen.push((k, name));
    }
    let n = count.unwrap_or(1);
    let missing: Vec<String> = (1..=n)
        .filter(|k| !seen.iter().any(|(s, _)| s == k))
        .map(|k| format!("{k}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the plan of shard {} is missing: merge every shard's plan",
            missing.join(", ")
        ));
    }
    // A change by its rank: the owner's change, then what a shard only read, then another
    // shard's change seen from outside.
    let rank = |c: &Change| match (&c.owner, c.action.is_change()) {
        (None, true) => 0,
        (None, false) => 1,
        (Some(_), _) => 2,
    };
    let mut changes: Vec<Change> = Vec::new();
    let mut at: HashMap<Address, usize> = HashMap::new();
    let mut checks: Vec<CheckResult> = Vec::new();
    let mut check_at: HashMap<Address, usize> = HashMap::new();
    let severity = |s: CheckStatus| match s {
        CheckStatus::Fail => 2,
        CheckStatus::Pending => 1,
        CheckStatus::Pass => 0,
    };
    let mut base = first.clone();
    for (_, p) in plans {
        for c in p.changes {
            match at.get(&c.address) {
                Some(&i) if rank(&c) < rank(&changes[i]) => changes[i] = c,
                Some(_) => {}
                None => {
                    at.insert(c.address.clone(), changes.len());
                    changes.push(c);
                }
            }
        }
        for c in p.checks {
            match check_at.get(&c.address) {
                Some(&i) if severity(c.status) > severity(checks[i].status) => checks[i] = c,
                Some(_) => {}
                None => {
                    check_at.insert(c.address.clone(), checks.len());
                    checks.push(c);
                }
            }
        }
    }
    base.changes = changes;
    base.checks = checks;
    base.shard = None;
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_one_owner_and_the_split_is_even_enough() {
        let mut per = [0usize; 4];
        for i in 0..4000 {
            per[rendezvous(&format!("cluster-{i}"), 4) as usize - 1] += 1;
        }
        for n in per {
            assert!((800..1200).contains(&n), "{per:?}");
        }
    }

    #[test]
    fn adding_a_shard_moves_only_keys_to_the_new_shard() {
        for i in 0..2000 {
            let key = format!("cluster-{i}");
            let (before, after) = (rendezvous(&key, 4), rendezvous(&key, 5));
            assert!(after == before || after == 5, "{key}: {before} -> {after}");
        }
    }

    #[test]
    fn shards_parse_and_refuse_nonsense() {
        assert_eq!(Shard::parse("2/4"), Ok((2, 4)));
        for bad in ["0/4", "5/4", "2", "a/b", "1/0"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let key: KeyFn = Arc::new(|a: &Address| a.to_string());
        let s = Shard::new(1, 1, key).unwrap();
        assert!(s.owns(&"x.y.z".parse().unwrap()));
    }
}
