use super::write::{patch_body, put_body, removes_kustomization};
use super::*;
use arcplan_engine::graph::GraphBuilder;

fn attrs() -> Attributes {
    Attributes {
        subscription_id: "s".into(),
        resource_group: "rg".into(),
        cluster: "c1".into(),
        name: "cluster-config".into(),
        scope: "cluster".into(),
        namespace: "cluster-config".into(),
        source_kind: "GitRepository".into(),
        suspend: false,
        bucket: None,
        oci_repository: None,
        git_repository: Some(GitRepository {
            url: "https://example.com/apps.git".into(),
            repository_ref: BTreeMap::from([("branch".to_owned(), "main".to_owned())]),
            sync_interval_in_seconds: Some(300),
            timeout_in_seconds: None,
            https_user: Some("bot".into()),
            ssh_known_hosts: None,
        }),
        kustomizations: BTreeMap::from([
            (
                "infra".to_owned(),
                Kustomization {
                    path: "./infra".into(),
                    depends_on: vec![],
                    prune: true,
                    force: false,
                    wait: true,
                    sync_interval_in_seconds: None,
                    timeout_in_seconds: None,
                    retry_interval_in_seconds: None,
                },
            ),
            (
                "apps".to_owned(),
                Kustomization {
                    path: "./apps".into(),
                    depends_on: vec!["infra".into()],
                    prune: true,
                    force: false,
                    wait: true,
                    sync_interval_in_seconds: Some(120),
                    timeout_in_seconds: None,
                    retry_interval_in_seconds: Some(60),
                },
            ),
        ]),
        configuration_protected_settings: BTreeMap::from([(
            "httpsKey".to_owned(),
            SecretRef::Env("K".into()),
        )]),
    }
}

/// What the service returns for the body of `put_body(d)` (its defaults filled in).
fn served(d: &Attributes) -> Value {
    let mut b = put_body(d, None);
    let p = &mut b["properties"];
    for source in ["gitRepository", "bucket", "ociRepository"] {
        if let Some(s) = p.get_mut(source) {
            for f in ["syncIntervalInSeconds", "timeoutInSeconds"] {
                if s.get(f).is_none() {
                    s[f] = json!(600);
                }
            }
        }
    }
    for k in p["kustomizations"].as_object_mut().unwrap().values_mut() {
        for f in ["syncIntervalInSeconds", "timeoutInSeconds"] {
            if k.get(f).is_none() {
                k[f] = json!(600);
            }
        }
    }
    p["provisioningState"] = json!("Succeeded");
    p["complianceState"] = json!("Compliant");
    b["id"] = json!("/x/fluxConfigurations/cluster-config");
    b["name"] = json!("cluster-config");
    b
}

#[test]
fn the_planned_state_is_what_a_read_gives_back() {
    let d = attrs();
    let created = planned(&d, None, Some("digest"), "s1");
    assert_eq!(
        created["protectedSettingsDigest"], "digest",
        "shown on create"
    );
    let read = flux_state(&served(&d), Some("s1"));
    let again = planned(&d, Some(&read), Some("digest"), "s1");
    assert_eq!(again, read, "re-planning the applied state changes nothing");
    let mut changed = d.clone();
    changed.kustomizations.get_mut("apps").unwrap().prune = false;
    assert_ne!(planned(&changed, Some(&read), None, "s1"), read);
}

#[test]
fn scope_namespace_and_source_kind_replace_everything_else_updates() {
    let d = attrs();
    let prior = flux_state(&served(&d), Some("s1"));
    assert!(replacements(&d, &prior).0.is_empty());
    let mut ns = d.clone();
    ns.namespace = "other".into();
    assert_eq!(replacements(&ns, &prior).0, vec!["/namespace"]);
    let mut scope = d.clone();
    scope.scope = "namespace".into();
    assert_eq!(replacements(&scope, &prior).0, vec!["/scope"]);
    let mut kind = d.clone();
    kind.source_kind = "Bucket".into();
    assert_eq!(replacements(&kind, &prior).0, vec!["/sourceKind"]);
    let mut url = d.clone();
    url.git_repository.as_mut().unwrap().url = "https://example.com/other.git".into();
    url.suspend = true;
    assert!(replacements(&url, &prior).0.is_empty(), "patched in place");
}

#[test]
fn bodies_follow_the_put_and_patch_models() {
    let d = attrs();
    let secret = BTreeMap::from([("httpsKey".to_owned(), "czNjcmV0".to_owned())]);
    let put = put_body(&d, Some(&secret));
    let p = &put["properties"];
    assert_eq!(p["scope"], "cluster");
    assert_eq!(p["namespace"], "cluster-config");
    assert_eq!(
        p["gitRepository"]["repositoryRef"],
        json!({"branch": "main"})
    );
    assert!(
        p["gitRepository"].get("timeoutInSeconds").is_none(),
        "the service's default"
    );
    assert_eq!(p["kustomizations"]["apps"]["dependsOn"], json!(["infra"]));
    assert_eq!(p["configurationProtectedSettings"]["httpsKey"], "czNjcmV0");
    let patch = patch_body(&d, None);
    let p = &patch["properties"];
    for k in [
        "scope",
        "namespace",
        "sourceKind",
        "configurationProtectedSettings",
    ] {
        assert!(p.get(k).is_none(), "{k} is not patched");
    }
    assert!(
        p["gitRepository"]["timeoutInSeconds"].is_null(),
        "cleared explicitly"
    );
    assert!(p["kustomizations"]["infra"]["retryIntervalInSeconds"].is_null());
    let prior = flux_state(&served(&d), Some("s1"));
    assert!(!removes_kustomization(&d, Some(&prior)));
    let mut fewer = d.clone();
    fewer.kustomizations.remove("apps");
    assert!(
        removes_kustomization(&fewer, Some(&prior)),
        "a PUT, not a PATCH"
    );
}

#[test]
fn a_bucket_source_has_its_own_body_and_state() {
    let mut d = attrs();
    d.source_kind = "Bucket".into();
    d.git_repository = None;
    d.bucket = Some(BucketSource {
        url: "https://minio.example.com".into(),
        bucket_name: "manifests".into(),
        insecure: false,
        access_key: Some("AKIA0000".into()),
        sync_interval_in_seconds: None,
        timeout_in_seconds: Some(120),
    });
    let put = put_body(&d, None);
    let p = &put["properties"];
    assert_eq!(p["sourceKind"], "Bucket");
    assert!(p.get("gitRepository").is_none());
    assert_eq!(p["bucket"]["bucketName"], "manifests");
    assert_eq!(p["bucket"]["insecure"], false, "always sent");
    let read = flux_state(&served(&d), Some("s1"));
    assert_eq!(planned(&d, Some(&read), None, "s1"), read, "idempotent");
    assert!(read["gitRepository"].is_null());
    let git = attrs();
    assert_eq!(replacements(&git, &read).0, vec!["/sourceKind"]);
    let patch = patch_body(&d, None);
    assert!(patch["properties"]["bucket"]["syncIntervalInSeconds"].is_null());
}

#[test]
fn an_oci_source_has_its_own_body_and_state() {
    let mut d = attrs();
    d.source_kind = "OCIRepository".into();
    d.git_repository = None;
    d.oci_repository = Some(OciSource {
        url: "oci://ghcr.io/org/manifests".into(),
        repository_ref: BTreeMap::from([("tag".to_owned(), "v1.2.0".to_owned())]),
        insecure: false,
        sync_interval_in_seconds: Some(60),
        timeout_in_seconds: None,
    });
    let put = put_body(&d, None);
    let p = &put["properties"];
    assert_eq!(p["sourceKind"], "OCIRepository");
    assert_eq!(
        p["ociRepository"]["repositoryRef"],
        json!({"tag": "v1.2.0"})
    );
    assert!(p.get("gitRepository").is_none() && p.get("bucket").is_none());
    let read = flux_state(&served(&d), Some("s1"));
    assert_eq!(planned(&d, Some(&read), None, "s1"), read, "idempotent");
    assert_eq!(replacements(&attrs(), &read).0, vec!["/sourceKind"]);
}

#[test]
fn a_cluster_without_a_flux_extension_gets_one_implicitly() {
    let text = include_str!("../../../../../examples/flux.yaml");
    let cfg = arcplan_config::load_str(text, "flux.yaml")
        .unwrap_or_else(|d| panic!("{d}"))
        .config;
    let mut b = GraphBuilder::new();
    for (_, lower) in crate::kinds::LOWERINGS {
        lower(&cfg, &mut b);
    }
    let c = &cfg.clusters[0];
    let ext = extension::address(&c.name, "flux");
    assert!(b.has(&ext), "the implicit microsoft.flux extension");
    assert_eq!(implicit_extension(c), Some(ext.clone()));
    let flux = address(&c.name, &c.flux_configurations[0].name);
    assert!(b.has(&flux));
    let g = b.finish().unwrap_or_else(|d| panic!("{d}"));
    let node = g.node(&ext).unwrap();
    assert!(
        node.source.as_deref().unwrap().contains("added implicitly"),
        "{:?}",
        node.source
    );
    assert_eq!(node.desired["extensionType"], "microsoft.flux");
    assert!(
        g.dependencies(&flux).contains(&&ext),
        "the configuration comes after its extension"
    );
    let mut declared = cfg.clone();
    declared.clusters[0]
        .extensions
        .push(arcplan_config::Extension {
            name: "gitops".into(),
            extension_type: "microsoft.flux".into(),
            release_train: None,
            version: None,
            auto_upgrade_minor_version: true,
            scope: Default::default(),
            release_namespace: None,
            target_namespace: None,
            configuration_settings: BTreeMap::new(),
            configuration_protected_settings: BTreeMap::new(),
        });
    assert_eq!(implicit_extension(&declared.clusters[0]), None);
}

#[test]
fn the_address_names_cluster_and_configuration() {
    let a = address("c1", "cluster-config");
    assert_eq!(a.to_string(), "arc.fluxConfiguration.c1/cluster-config");
    let parsed: Address = a.to_string().parse().unwrap();
    assert_eq!(parsed, a);
}
