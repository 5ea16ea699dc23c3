//! Which subscription each resource is in. A file works in `azure.subscription` unless a
//! resource group, cluster or custom location names another: a group's own `subscription`, and
//! for a cluster or custom location its own, else that of the one group of its `resourceGroup`'s
//! name (a name declared in several subscriptions needs the resource's `subscription`, which
//! validation asks for).

use crate::{Cluster, Config, CustomLocation, ResourceGroup};

impl Config {
    /// The subscription a declared group is in.
    pub fn group_subscription<'a>(&'a self, g: &'a ResourceGroup) -> &'a str {
        g.subscription
            .as_deref()
            .unwrap_or(&self.azure.subscription)
    }

    /// The declared groups named `rg`, in any subscription.
    pub fn groups_named<'a>(&'a self, rg: &'a str) -> impl Iterator<Item = &'a ResourceGroup> + 'a {
        self.resource_groups
            .iter()
            .filter(move |g| g.name.eq_ignore_ascii_case(rg))
    }

    /// The declared group a resource in group `rg` belongs to: the one in `subscription` when
    /// the resource names it, else the one group of that name (none when several subscriptions
    /// declare it and the resource names none).
    pub fn group_of(&self, subscription: Option<&str>, rg: &str) -> Option<&ResourceGroup> {
        let mut named = (self.resource_groups.iter()).filter(|g| g.name.eq_ignore_ascii_case(rg));
        match subscription {
            Some(s) => named.find(|g| self.group_subscription(g).eq_ignore_ascii_case(s)),
            None => match (named.next(), named.next()) {
                (Some(g), None) => Some(g),
                _ => None,
            },
        }
    }

    /// The subscription of a resource in group `rg` that names `subscription` (or none).
    pub fn subscription_in<'a>(&'a self, subscription: Option<&'a str>, rg: &str) -> &'a str {
        subscription
            .or_else(|| {
                self.group_of(None, rg)
                    .and_then(|g| g.subscription.as_deref())
            })
            .unwrap_or(&self.azure.subscription)
    }

    /// A cluster's subscription.
    pub fn cluster_subscription<'a>(&'a self, c: &'a Cluster) -> &'a str {
        self.subscription_in(c.subscription.as_deref(), &c.resource_group)
    }

    /// A custom location's subscription.
    pub fn custom_location_subscription<'a>(&'a self, l: &'a CustomLocation) -> &'a str {
        self.subscription_in(l.subscription.as_deref(), &l.resource_group)
    }

    /// Every subscription the file works in: `azure.subscription` first, then the others in
    /// the order the file first names them (compared without case, as Azure does).
    pub fn subscriptions(&self) -> Vec<&str> {
        let mut out: Vec<&str> = vec![&self.azure.subscription];
        let named = (self
            .resource_groups
            .iter()
            .map(|g| self.group_subscription(g)))
        .chain(self.clusters.iter().map(|c| self.cluster_subscription(c)))
        .chain((self.custom_locations.iter()).map(|l| self.custom_location_subscription(l)));
        for s in named {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(s)) {
                out.push(s);
            }
        }
        out
    }

    /// Whether `s` is `azure.subscription`.
    pub fn is_default_subscription(&self, s: &str) -> bool {
        self.azure.subscription.eq_ignore_ascii_case(s)
    }
}

/// The checks of subscriptions and of the group references that depend on them.
pub(crate) mod check {
    use crate::loaded::Loaded;
    use crate::validate::is_guid;
    use crate::yaml::Path;
    use arcplan_engine::diag::{Diagnostic, Diagnostics, did_you_mean};

    fn err(loaded: &Loaded, code: &'static str, msg: String, path: &Path) -> Diagnostic {
        Diagnostic::error(code, msg)
            .with_location(loaded.location(path))
            .with_key(path.to_string())
    }

    /// A resource's own `subscription` (at `base.subscription`), when it names one: a GUID.
    pub(crate) fn subscription_field(
        out: &mut Diagnostics,
        loaded: &Loaded,
        value: Option<&str>,
        base: &Path,
    ) {
        let Some(v) = value.filter(|v| !is_guid(v)) else {
            return;
        };
        let at = base.key("subscription");
        out.push(
            err(
                loaded,
                "invalid-guid",
                format!("`{at}` is `{v}`, which is not a GUID"),
                &at,
            )
            .with_hint("a subscription id has the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (`az account list --query [].id` lists yours)"),
        );
    }

    /// That `what` (at `base`), in group `rg` of `subscription` (or none named), refers to a
    /// declared group, and to one only.
    pub(crate) fn group_reference(
        out: &mut Diagnostics,
        loaded: &Loaded,
        what: &str,
        subscription: Option<&str>,
        rg: &str,
        base: &Path,
    ) {
        let cfg = &loaded.config;
        if cfg.group_of(subscription, rg).is_some() {
            return;
        }
        let at = base.key("resourceGroup");
        let named: Vec<&str> = cfg
            .groups_named(rg)
            .map(|g| cfg.group_subscription(g))
            .collect();
        if subscription.is_none() && named.len() > 1 {
            out.push(
                err(
                    loaded,
                    "ambiguous-resource-group",
                    format!(
                        "{what} is in resource group `{rg}`, which is declared in {} subscriptions ({})",
                        named.len(),
                        named.join(", ")
                    ),
                    &at,
                )
                .with_hint(format!("name the subscription: `subscription: {}`", named[0])),
            );
            return;
        }
        let in_sub = subscription
            .map(|s| format!(" in subscription {s}"))
            .unwrap_or_default();
        let d = err(
            loaded,
            "undeclared-resource-group",
            format!("{what} refers to resource group `{rg}`{in_sub}, which is not declared"),
            &at,
        );
        let names = cfg.resource_groups.iter().map(|g| g.name.as_str());
        out.push(match (named.first(), did_you_mean(rg, names)) {
            (Some(other), _) => d.with_hint(format!(
                "`{rg}` is declared in subscription {other}; set that `subscription`, or declare the group with `subscription: {}`",
                subscription.unwrap_or_default()
            )),
            (None, Some(s)) => d.with_hint(format!("did you mean `{s}`?")),
            (None, None) => d.with_hint(format!(
                "declare it under `resourceGroups` (with `existing: true` if it exists already): - {{ name: {rg}, location: eastus{} }}",
                subscription.map(|s| format!(", subscription: {s}")).unwrap_or_default()
            )),
        });
    }
}
