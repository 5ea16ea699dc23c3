//! Config loading: diagnostics with positions, semantic validation, hostile inputs, and the
//! committed schema.

use arcplan_config::{load_bytes, load_str, schema};
use arcplan_engine::diag::{Diagnostic, Diagnostics};

const GOOD: &str = include_str!("../../examples/quickstart.yaml");

fn errors(text: &str) -> Diagnostics {
    load_str(text, "f.yaml").expect_err("the document should be rejected")
}

fn find<'a>(d: &'a Diagnostics, code: &str) -> &'a Diagnostic {
    d.iter()
        .find(|x| x.code == code)
        .unwrap_or_else(|| panic!("no `{code}` diagnostic in:\n{d}"))
}

fn at(d: &Diagnostic) -> (u64, u64) {
    let l = d.location.as_ref().expect("diagnostic has a location");
    assert_eq!(l.file, "f.yaml");
    (l.line, l.column)
}

#[test]
fn the_quickstart_loads_without_warnings() {
    let loaded = load_str(GOOD, "q.yaml").unwrap();
    assert!(loaded.warnings.is_empty(), "{}", loaded.warnings);
    assert_eq!(loaded.config.clusters[0].name, "mynewcluster");
    assert_eq!(loaded.digest.len(), 64);
}

#[test]
fn misspelt_key_points_at_the_key_and_suggests() {
    let text = "apiVersion: arcplan/v1\nstack: s\nazure:\n  subscription: 3000e2af-0000-46d9-0000-4bdb12000000\n  subscripton: x\n";
    let d = errors(text);
    let e = find(&d, "unknown-key");
    assert_eq!(at(e), (5, 3));
    assert_eq!(e.key.as_deref(), Some("azure.subscripton"));
    assert_eq!(e.hint.as_deref(), Some("did you mean `subscription`?"));
    assert_eq!(
        e.to_string(),
        "f.yaml:5:3: error[unknown-key]: unknown key `subscripton` (at `azure.subscripton`); did you mean `subscription`?"
    );
}

#[test]
fn several_errors_are_reported_at_once_in_file_order() {
    let text = GOOD
        .replace("    resourceGroup: my", "    resourceGrop: my")
        .replace(
            "    location: eastus\nclusters",
            "    locaton: eastus\nclusters",
        )
        .replace("timeout: 20m", "timeout: 20 minutes")
        .replace("cloud: AzureCloud", "cloud: AzureClod");
    let d = errors(&text);
    let codes: Vec<&str> = d.iter().map(|x| x.code).collect();
    assert_eq!(
        codes,
        [
            "invalid-value",
            "unknown-key",
            "missing-key",
            "unknown-key",
            "invalid-format"
        ],
        "{d}"
    );
    assert_eq!(
        d.iter().next().unwrap().hint.as_deref(),
        Some("did you mean `AzureCloud`?")
    );
    let lines: Vec<u64> = d.iter().map(|x| at(x).0).collect();
    assert!(
        lines.windows(2).all(|w| w[0] <= w[1]),
        "sorted by line: {lines:?}"
    );
}

#[test]
fn semantic_errors_name_the_key_and_the_fix() {
    let text = GOOD
        .replace(
            "3000e2af-0000-46d9-0000-4bdb12000000",
            "3000e2af-000-46d9-0000-4bdb12000000",
        )
        .replace(
            "resourceGroup: myAzureResourceGroup",
            "resourceGroup: myAzureResourceGrup",
        )
        .replace("  - name: mynewcluster", "  - name: -bad-name-");
    let d = errors(&text);
    let guid = find(&d, "invalid-guid");
    assert_eq!(at(guid), (8, 17));
    assert!(guid.message.contains("3000e2af-000-46d9"), "{guid}");
    let rg = find(&d, "undeclared-resource-group");
    assert_eq!(
        rg.hint.as_deref(),
        Some("did you mean `myAzureResourceGroup`?")
    );
    assert_eq!(rg.key.as_deref(), Some("clusters[0].resourceGroup"));
    let name = find(&d, "invalid-name");
    assert!(
        name.message
            .contains("must start and end with a letter or digit"),
        "{name}"
    );
}

#[test]
fn locations_duplicates_and_existing_groups() {
    let text = GOOD.replace(
        "resourceGroups:\n  - name: myAzureResourceGroup\n    location: eastus\n",
        "resourceGroups:\n  - name: myAzureResourceGroup\n  - name: MYAZURERESOURCEGROUP\n    location: East US\n",
    )
    .replace("    location: eastus\n    tags:", "    tags:");
    let d = errors(&text);
    assert!(
        find(&d, "missing-location")
            .message
            .contains("myAzureResourceGroup")
    );
    assert!(
        find(&d, "duplicate-name")
            .message
            .contains("case-insensitive")
    );
    assert_eq!(
        find(&d, "invalid-location").hint.as_deref(),
        Some("regions are written lowercase without spaces: did you mean `eastus`?")
    );

    // An existing group needs no location, and the cluster then needs its own.
    let ok = GOOD.replace(
        "    location: eastus\nclusters",
        "    existing: true\nclusters",
    );
    assert!(load_str(&ok, "f.yaml").is_ok());
    let no_loc = ok.replace("    location: eastus\n    tags:", "    tags:");
    assert!(
        find(&errors(&no_loc), "missing-location")
            .message
            .contains("mynewcluster")
    );
}

#[test]
fn two_clusters_on_one_context_and_reserved_tags() {
    let second = "  - name: second\n    resourceGroup: myAzureResourceGroup\n    context: mynewcluster-admin\n    tags: { arcplan-stack: x }\n";
    let text = format!("{GOOD}{second}");
    let d = errors(&text);
    assert!(
        find(&d, "duplicate-cluster-target")
            .message
            .contains("clusters[0]")
    );
    assert!(find(&d, "invalid-tags").message.contains("arcplan-stack"));
}

#[test]
fn inline_secrets_are_rejected_without_echoing_them() {
    let text = GOOD.replace(
        "credential: default",
        "credential:\n    kind: servicePrincipal\n    clientSecret: hunter2-very-secret",
    );
    let d = errors(&text);
    let e = find(&d, "inline-secret");
    assert_eq!(at(e), (13, 19));
    assert!(e.hint.as_deref().unwrap().contains("{ env: VARIABLE }"));
    assert_eq!(
        d.len(),
        1,
        "one precise error, not a second schema error: {d}"
    );
    let rendered = format!("{d}\n{}", serde_json::to_string(&d).unwrap());
    assert!(
        !rendered.contains("hunter2"),
        "the secret leaked: {rendered}"
    );

    let proxy = GOOD.replace(
        "      timeout: 20m",
        "      timeout: 20m\n      proxy: { httpsProxy: 'http://user:hunter2@proxy:3128' }",
    );
    let d = errors(&proxy);
    assert_eq!(
        find(&d, "inline-secret").key.as_deref(),
        Some("clusters[0].agents.proxy.httpsProxy")
    );
    assert!(!format!("{d}").contains("hunter2"));

    // A credential kind that is itself a pasted secret is not echoed either.
    let d = errors(&GOOD.replace("credential: default", "credential: Zm9vYmFyc2VjcmV0"));
    assert!(!format!("{d}").contains("Zm9vYmFyc2VjcmV0"), "{d}");

    // References are fine.
    let ok = GOOD.replace(
        "credential: default",
        "credential:\n    kind: servicePrincipal\n    clientSecret: { env: AZURE_CLIENT_SECRET }",
    );
    assert!(load_str(&ok, "f.yaml").is_ok());
}

#[test]
fn hostile_inputs_give_clear_errors() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", b"".to_vec(), "empty-file"),
        ("comments only", b"# nothing\n---\n".to_vec(), "empty-file"),
        ("binary", vec![0x7f, b'E', b'L', b'F', 0, 1, 2], "not-text"),
        ("latin-1", b"stack: caf\xe9\n".to_vec(), "not-text"),
        ("huge", vec![b'#'; 10 * 1024 * 1024], "file-too-large"),
        (
            "deep",
            format!("a: {}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
            "yaml-limits",
        ),
        (
            "deep maps",
            (1..200)
                .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
                .collect::<String>()
                .into_bytes(),
            "yaml-limits",
        ),
        ("syntax", b"a: [1, 2\n".to_vec(), "yaml-syntax"),
        ("scalar", b"just a string\n".to_vec(), "invalid-type"),
        (
            "two documents",
            b"a: 1\n---\nb: 2\n".to_vec(),
            "yaml-limits",
        ),
        (
            "duplicate key",
            b"stack: a\nstack: b\n".to_vec(),
            "yaml-syntax",
        ),
    ];
    for (name, bytes, code) in cases {
        let d = load_bytes(&bytes, "f.yaml").expect_err(name);
        assert_eq!(d.iter().next().unwrap().code, code, "{name}: {d}");
        assert!(!d.iter().next().unwrap().message.is_empty());
    }
}

#[test]
fn alias_bombs_are_refused_quickly() {
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (i, c) in "bcdefghij".chars().enumerate() {
        let prev = (b'a' + i as u8) as char;
        bomb.push_str(&format!(
            "{c}: &{c} [{}]\n",
            vec![format!("*{prev}"); 10].join(", ")
        ));
    }
    let started = std::time::Instant::now();
    let d = load_str(&bomb, "f.yaml").unwrap_err();
    assert_eq!(d.iter().next().unwrap().code, "yaml-limits", "{d}");
    // A loose bound: expansion would be 10^10 nodes; refusal is immediate.
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn committed_schema_matches_the_types() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/arcplan.schema.json"
    );
    let generated = schema::json_schema_text();
    if std::env::var_os("ARCPLAN_UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/arcplan.schema.json is out of date; regenerate it with `ARCPLAN_UPDATE_SCHEMA=1 cargo test -p arcplan-config --test config`"
    );
}

#[test]
fn every_example_validates_against_parser_and_schema() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
    let validator = jsonschema::validator_for(&schema::json_schema()).unwrap();
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        seen += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let loaded = load_str(&text, &path.display().to_string())
            .unwrap_or_else(|d| panic!("{}:\n{d}", path.display()));
        let value: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        assert!(
            loaded.warnings.is_empty(),
            "{}: {}",
            path.display(),
            loaded.warnings
        );
    }
    assert!(seen >= 1);
}

#[test]
fn structural_and_semantic_errors_are_reported_in_one_run() {
    let text = GOOD
        .replace("cloud: AzureCloud", "cloud: AzureClod")
        .replace("installer: manifests", "installr: manifests")
        .replace(
            "subscription: 3000e2af-0000-46d9-0000-4bdb12000000",
            "subscription: 3000e2af",
        )
        .replace(
            "tenant: 72f988bf-0000-0000-0000-000000000000",
            "tenant: contoso",
        )
        .replace(
            "    resourceGroup: myAzureResourceGroup",
            "    resourceGroup: myAzureResourceGrop",
        );
    let d = errors(&text);
    let codes: Vec<&str> = d.iter().map(|x| x.code).collect();
    assert_eq!(
        codes,
        [
            "invalid-guid",
            "invalid-guid",
            "invalid-value",
            "undeclared-resource-group",
            "unknown-key"
        ],
        "{d}"
    );
    assert_eq!(
        find(&d, "undeclared-resource-group").hint.as_deref(),
        Some("did you mean `myAzureResourceGroup`?")
    );
}

#[test]
fn findings_about_rejected_keys_are_not_repeated_as_placeholders() {
    // A cluster whose `resourceGroup` and `location` are wrong types: the schema says so, and
    // no semantic finding about the placeholders (undeclared group, missing location) follows.
    let text = GOOD
        .replace(
            "    resourceGroup: myAzureResourceGroup",
            "    resourceGroup: [x]",
        )
        .replace(
            "    location: eastus\n    tags",
            "    location: 5\n    tags",
        );
    let d = errors(&text);
    let codes: Vec<&str> = d.iter().map(|x| x.code).collect();
    assert_eq!(codes, ["invalid-type", "invalid-type"], "{d}");
}

#[test]
fn unknown_distribution_infrastructure_and_location_warn_with_suggestions() {
    let text = GOOD
        .replace("distribution: aks_workload", "distribution: aks_workloadd")
        .replace(
            "infrastructure: azure_stack_hci",
            "infrastructure: azure_stack_hcl",
        )
        .replace(
            "    location: eastus\n    tags",
            "    location: mars\n    tags",
        )
        .replace(
            "    location: eastus\nclusters",
            "    location: eastuss\nclusters",
        );
    let loaded = load_str(&text, "f.yaml").expect("unknown values are warnings, not errors");
    let w = &loaded.warnings;
    assert!(!w.has_errors());
    let by_key = |k: &str| {
        w.iter()
            .find(|d| d.key.as_deref() == Some(k))
            .unwrap_or_else(|| panic!("no warning at {k}:\n{w}"))
    };
    let dist = by_key("clusters[0].distribution");
    assert_eq!(dist.code, "unknown-value");
    assert!(dist.message.contains("aks_workloadd"), "{dist}");
    let hint = dist.hint.as_deref().unwrap();
    assert!(hint.starts_with("did you mean `aks_workload`?"), "{hint}");
    assert!(hint.contains("openshift") && hint.contains("k3s"), "{hint}");
    let infra = by_key("clusters[0].infrastructure")
        .hint
        .as_deref()
        .unwrap();
    assert!(
        infra.starts_with("did you mean `azure_stack_hci`?"),
        "{infra}"
    );
    let mars = by_key("clusters[0].location");
    assert!(mars.message.contains("mars"), "{mars}");
    assert!(
        mars.hint.as_deref().unwrap().contains("westeurope"),
        "{mars}"
    );
    let rg = by_key("resourceGroups[0].location")
        .hint
        .as_deref()
        .unwrap();
    assert!(rg.starts_with("did you mean `eastus`?"), "{rg}");

    // A custom cloud names its own regions.
    let custom = text.replace(
        "cloud: AzureCloud",
        "cloud:\n    resourceManager: https://management.local.azurestack.external\n    authorityHost: https://login.local",
    );
    let loaded = load_str(&custom, "f.yaml").unwrap();
    assert!(
        !loaded
            .warnings
            .iter()
            .any(|d| d.key.as_deref() == Some("clusters[0].location")),
        "{}",
        loaded.warnings
    );
}

#[test]
fn inline_secret_diagnostics_mark_the_secret_for_masking() {
    use arcplan_engine::diag::masked_source;
    let text = GOOD.replace(
        "credential: default",
        "credential:\n    kind: servicePrincipal\n    clientSecret: \"SuperSecretValue123!\"",
    );
    let d = errors(&text);
    assert!(!find(&d, "inline-secret").secret_spans.is_empty());
    let masked = masked_source(&text, &d);
    assert!(!masked.contains("SuperSecretValue123!"), "{masked}");
    assert_eq!(masked.lines().count(), text.lines().count());
    assert!(masked.contains("clientSecret: "));

    let proxy = GOOD.replace(
        "      timeout: 20m",
        "      timeout: 20m\n      proxy: { httpsProxy: http://user:hunter2@proxy.corp:3128 }",
    );
    let d = errors(&proxy);
    let masked = masked_source(&proxy, &d);
    assert!(!masked.contains("hunter2"), "{masked}");
    assert!(
        masked.contains("http://user:*******@proxy.corp:3128"),
        "{masked}"
    );
}

#[cfg(unix)]
#[test]
fn non_regular_files_are_refused_before_reading() {
    use arcplan_config::{load_file, read_source};
    use std::path::Path;
    let dir = std::env::temp_dir().join(format!("arcplan-cfg-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("pipe.yaml");
    let _ = std::fs::remove_file(&fifo);
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // Run in a thread, so a blocking open fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    let f = fifo.clone();
    std::thread::spawn(move || {
        let r = load_file(&f).map(|_| ()).unwrap_err();
        let zero = load_file(Path::new("/dev/zero")).map(|_| ()).unwrap_err();
        let src = read_source(&f).is_none() && read_source(Path::new("/dev/zero")).is_none();
        let _ = tx.send((r, zero, src));
    });
    let (fifo_err, zero_err, src) = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("reading a FIFO or /dev/zero must not block");
    let e = fifo_err.iter().next().unwrap();
    assert_eq!(e.code, "not-a-file", "{e}");
    assert!(e.message.contains("FIFO"), "{e}");
    let e = zero_err.iter().next().unwrap();
    assert_eq!(e.code, "not-a-file", "{e}");
    assert!(e.message.contains("character device"), "{e}");
    assert!(src);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_day2_example_loads_without_warnings() {
    let loaded = load_str(include_str!("../../examples/day2.yaml"), "d.yaml").unwrap();
    assert!(loaded.warnings.is_empty(), "{}", loaded.warnings);
    let ext = &loaded.config.clusters[0].extensions;
    assert_eq!(ext.len(), 2);
    assert!(ext[0].auto_upgrade_minor_version, "the default");
    assert!(!ext[1].auto_upgrade_minor_version);
}

#[test]
fn extension_rules_point_at_the_key() {
    let base = GOOD.split("clusters:").next().unwrap();
    let text = format!(
        "{base}clusters:
  - name: c1
    resourceGroup: myAzureResourceGroup
    extensions:
      - name: mon
        extensionType: microsoft.azuremonitor.containerz
        version: 1.0.0
      - name: mon
        extensionType: microsoft.flux
        autoUpgradeMinorVersion: false
        releaseTrain: Stable
        targetNamespace: flux-system
        configurationSettings:
          arcplan.stack: other
          k: v
        configurationProtectedSettings:
          k: {{ env: K }}
      - name: Bad_Name
        extensionType: microsoft.flux
"
    );
    let d = errors(&text);
    let line_of = |needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i as u64 + 1)
            .unwrap()
    };
    let conflicts: Vec<&Diagnostic> = d
        .iter()
        .filter(|x| x.code == "conflicting-settings")
        .collect();
    let keys: Vec<&str> = conflicts.iter().filter_map(|x| x.key.as_deref()).collect();
    for k in [
        "clusters[0].extensions[0].version",
        "clusters[0].extensions[1].releaseTrain",
        "clusters[0].extensions[1].targetNamespace",
        "clusters[0].extensions[1].configurationProtectedSettings.k",
    ] {
        assert!(keys.contains(&k), "{k} in {keys:?}\n{d}");
    }
    let version = conflicts
        .iter()
        .find(|x| x.key.as_deref() == Some("clusters[0].extensions[0].version"))
        .unwrap();
    assert_eq!(at(version).0, line_of("version: 1.0.0"));
    assert!(
        version
            .hint
            .as_deref()
            .unwrap()
            .contains("autoUpgradeMinorVersion: false")
    );
    let dup = find(&d, "duplicate-name");
    assert_eq!(at(dup).0, line_of("- name: mon") + 3);
    assert_eq!(
        find(&d, "reserved-key").key.as_deref(),
        Some("clusters[0].extensions[1].configurationSettings.arcplan.stack")
    );
    assert!(find(&d, "invalid-name").message.contains("Bad_Name"));
    let typo = find(&d, "unknown-value");
    assert!(
        typo.hint
            .as_deref()
            .unwrap()
            .contains("microsoft.azuremonitor.containers"),
        "{typo:?}"
    );
}

#[test]
fn cluster_features_are_checked() {
    let base = GOOD.split("clusters:").next().unwrap();
    let text = format!(
        "{base}clusters:
  - name: c1
    resourceGroup: myAzureResourceGroup
    agents:
      autoUpgrade: false
    features:
      workloadIdentity: true
      azureRbac:
        adminGroupObjectIds: [not-a-guid]
      azureHybridBenefit: Maybe
"
    );
    let d = errors(&text);
    let line_of = |needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i as u64 + 1)
            .unwrap()
    };
    // The schema names the bad enum value; semantic checks still run.
    assert!(
        d.iter()
            .any(|x| x.key.as_deref() == Some("clusters[0].features.azureHybridBenefit")),
        "{d}"
    );
    let text = text.replace("      azureHybridBenefit: Maybe\n", "");
    let d = errors(&text);
    let wi = find(&d, "conflicting-settings");
    assert_eq!(
        wi.key.as_deref(),
        Some("clusters[0].features.workloadIdentity")
    );
    assert_eq!(at(wi).0, line_of("workloadIdentity: true"));
    assert!(wi.hint.as_deref().unwrap().contains("oidcIssuer: true"));
    let guid = find(&d, "invalid-format");
    assert_eq!(
        guid.key.as_deref(),
        Some("clusters[0].features.azureRbac.adminGroupObjectIds[0]")
    );
    let text = text
        .replace(
            "      workloadIdentity: true\n",
            "      oidcIssuer: true\n      workloadIdentity: true\n",
        )
        .replace("[not-a-guid]", "[00000000-0000-0000-0000-000000000001]");
    let loaded = load_str(&text, "f.yaml").unwrap();
    let w: Vec<_> = loaded.warnings.iter().map(|w| w.code).collect();
    assert_eq!(
        w,
        vec!["unpinned-agents"],
        "auto-upgrade off without a version is worth a word"
    );
}

#[test]
fn custom_locations_name_what_is_missing() {
    let day2 = include_str!("../../examples/day2.yaml");
    let text = day2
        .replace("  - Microsoft.ExtendedLocation\n", "")
        .replace(
            "extensions: [azuremonitor-containers]",
            "extensions: [azuremonitor-containers, keda]",
        )
        .replace(
            "cluster: mynewcluster\n",
            "cluster: mynewcluster\n    location: eastus\n",
        );
    let d = errors(&text);
    let reg = find(&d, "missing-registration");
    assert_eq!(reg.key.as_deref(), Some("customLocations[0]"));
    assert!(
        reg.hint
            .as_deref()
            .unwrap()
            .contains("Microsoft.ExtendedLocation")
    );
    let ext = find(&d, "undeclared-extension");
    assert_eq!(ext.key.as_deref(), Some("customLocations[0].extensions[1]"));
    assert!(ext.message.contains("keda"));
    let host = errors(&day2.replace("cluster: mynewcluster\n", "cluster: other\n"));
    assert_eq!(
        find(&host, "undeclared-cluster").key.as_deref(),
        Some("customLocations[0].cluster")
    );
    // The host's agents without the custom-locations feature.
    let start = day2.find("      clusterConnect: true").unwrap();
    let end = day2.find("    fluxConfigurations:").unwrap();
    let without = format!("{}{}", &day2[..start], &day2[end..]);
    let d = errors(&without);
    let f = find(&d, "missing-feature");
    assert_eq!(f.key.as_deref(), Some("customLocations[0].cluster"));
    assert!(
        f.message.contains("custom-locations feature"),
        "{}",
        f.message
    );
    assert!(
        f.hint
            .as_deref()
            .unwrap()
            .contains("customLocations: { oid")
    );
    // custom-locations needs cluster-connect, and private link offers no cluster connect.
    let d = errors(&day2.replace("clusterConnect: true", "clusterConnect: false"));
    assert_eq!(
        find(&d, "conflicting-settings").key.as_deref(),
        Some("clusters[0].features.customLocations")
    );
    let d = errors(&day2.replace(
        "      clusterConnect: true",
        "      privateLink: { scope: /subscriptions/s/resourceGroups/g/providers/Microsoft.HybridCompute/privateLinkScopes/pls }\n      clusterConnect: true",
    ));
    assert_eq!(
        find(&d, "conflicting-settings").key.as_deref(),
        Some("clusters[0].features.clusterConnect")
    );
    let d = errors(&day2.replace(
        "oid: 51dfe1e8-70c6-4de5-a08e-e18aff23d815",
        "oid: custom-locations-rp",
    ));
    assert_eq!(
        find(&d, "invalid-format").key.as_deref(),
        Some("clusters[0].features.customLocations.oid")
    );
}

#[test]
fn a_version_with_auto_upgrade_on_is_only_the_first_install() {
    let day2 = include_str!("../../examples/day2.yaml");
    let loaded = load_str(
        &day2.replace("autoUpgrade: false", "autoUpgrade: true"),
        "f.yaml",
    )
    .unwrap();
    let w = loaded
        .warnings
        .iter()
        .find(|w| w.code == "unpinned-agents")
        .expect("a warning");
    assert_eq!(w.key.as_deref(), Some("clusters[0].agents.version"));
    assert!(w.message.contains("first install only"), "{}", w.message);
    let loaded = load_str(day2, "f.yaml").unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn flux_rules_point_at_the_key() {
    let base = GOOD.split("clusters:").next().unwrap();
    let text = format!(
        "{base}clusters:
  - name: c1
    resourceGroup: myAzureResourceGroup
    extensions:
      - name: flux
        extensionType: microsoft.azuremonitor.containers
    fluxConfigurations:
      - name: apps
        gitRepository:
          url: https://example.com/apps.git
          branch: main
          tag: v1
          syncInterval: soon
          httpsUser: bot
        kustomizations:
          infra:
            path: ./infra
            dependsOn: [apps, infra]
          apps:
            dependsOn: [infra]
        configurationProtectedSettings:
          httpsPassword: {{ env: K }}
      - name: apps
        namespace: Not_A_Namespace
        gitRepository:
          url: example.com/x
"
    );
    let d = errors(&text);
    let line_of = |needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i as u64 + 1)
            .unwrap()
    };
    let keyed = |code: &str, key: &str| {
        d.iter()
            .find(|x| x.code == code && x.key.as_deref() == Some(key))
            .unwrap_or_else(|| panic!("no `{code}` at {key} in:\n{d}"))
    };
    let two_refs = keyed(
        "conflicting-settings",
        "clusters[0].fluxConfigurations[0].gitRepository.tag",
    );
    assert_eq!(at(two_refs).0, line_of("tag: v1"));
    assert!(two_refs.hint.as_deref().unwrap().contains("branch"));
    let unknown = keyed(
        "unknown-reference",
        "clusters[0].fluxConfigurations[0].kustomizations.infra.dependsOn[1]",
    );
    assert!(unknown.message.contains("depends on itself"), "{unknown:?}");
    assert_eq!(at(unknown).0, line_of("dependsOn: [apps, infra]"));
    let cycle = find(&d, "dependency-cycle");
    assert!(cycle.message.contains("apps -> infra -> apps"), "{cycle:?}");
    let duration = keyed(
        "invalid-duration",
        "clusters[0].fluxConfigurations[0].gitRepository.syncInterval",
    );
    assert_eq!(at(duration).0, line_of("syncInterval: soon"));
    keyed(
        "missing-field",
        "clusters[0].fluxConfigurations[0].gitRepository.httpsUser",
    );
    let secret = keyed(
        "unknown-value",
        "clusters[0].fluxConfigurations[0].configurationProtectedSettings.httpsPassword",
    );
    assert!(secret.hint.as_deref().unwrap().contains("httpsKey"));
    let dup = keyed("duplicate-name", "clusters[0].fluxConfigurations[1].name");
    let second = text
        .lines()
        .collect::<Vec<_>>()
        .iter()
        .rposition(|l| l.contains("- name: apps"))
        .unwrap() as u64
        + 1;
    assert_eq!(at(dup).0, second);
    keyed(
        "invalid-name",
        "clusters[0].fluxConfigurations[1].namespace",
    );
    keyed(
        "invalid-format",
        "clusters[0].fluxConfigurations[1].gitRepository.url",
    );
    let none = d
        .iter()
        .find(|x| x.code == "missing-field" && x.message.contains("no kustomizations"))
        .unwrap_or_else(|| panic!("{d}"));
    assert_eq!(
        none.key.as_deref(),
        Some("clusters[0].fluxConfigurations[1].name")
    );
    let taken = keyed("conflicting-settings", "clusters[0].extensions[0].name");
    assert!(taken.message.contains("microsoft.flux"), "{taken:?}");
}

#[test]
fn a_flux_configuration_takes_the_services_defaults() {
    let base = GOOD.split("clusters:").next().unwrap();
    let text = format!(
        "{base}clusters:
  - name: c1
    resourceGroup: myAzureResourceGroup
    fluxConfigurations:
      - name: apps
        gitRepository:
          url: https://example.com/apps.git
        kustomizations:
          apps: {{}}
"
    );
    let loaded = load_str(&text, "f.yaml").unwrap_or_else(|d| panic!("{d}"));
    let f = &loaded.config.clusters[0].flux_configurations[0];
    assert_eq!(f.namespace, "default");
    assert_eq!(f.scope, arcplan_config::FluxScope::Cluster);
    assert!(!f.suspend);
    let k = &f.kustomizations["apps"];
    assert!(k.wait && !k.prune && !k.force);
}

#[test]
fn bucket_and_oci_sources_are_checked_too() {
    let base = GOOD.split("clusters:").next().unwrap();
    let text = format!(
        "{base}clusters:
  - name: c1
    resourceGroup: myAzureResourceGroup
    fluxConfigurations:
      - name: from-bucket
        sourceKind: Bucket
        gitRepository:
          url: https://example.com/apps.git
        bucket:
          url: http://minio.example.com
          bucketName: manifests
          accessKey: AKIA0000
        kustomizations:
          apps: {{}}
        configurationProtectedSettings:
          httpsKey: {{ env: K }}
      - name: no-bucket
        sourceKind: Bucket
        kustomizations:
          apps: {{}}
      - name: from-oci
        sourceKind: OCIRepository
        ociRepository:
          url: https://ghcr.io/x
          tag: v1
          digest: sha256:abc
        kustomizations:
          apps: {{}}
"
    );
    let d = errors(&text);
    let keyed = |code: &str, key: &str| {
        d.iter()
            .find(|x| x.code == code && x.key.as_deref() == Some(key))
            .unwrap_or_else(|| panic!("no `{code}` at {key} in:\n{d}"))
    };
    keyed(
        "conflicting-settings",
        "clusters[0].fluxConfigurations[0].gitRepository",
    );
    let plain = keyed(
        "conflicting-settings",
        "clusters[0].fluxConfigurations[0].bucket.url",
    );
    assert!(plain.hint.as_deref().unwrap().contains("insecure: true"));
    let key = keyed(
        "missing-field",
        "clusters[0].fluxConfigurations[0].bucket.url",
    );
    assert!(key.message.contains("bucketSecretKey"), "{key:?}");
    let wrong = keyed(
        "unknown-value",
        "clusters[0].fluxConfigurations[0].configurationProtectedSettings.httpsKey",
    );
    assert!(wrong.hint.as_deref().unwrap().contains("bucketSecretKey"));
    keyed(
        "missing-field",
        "clusters[0].fluxConfigurations[1].sourceKind",
    );
    keyed(
        "invalid-format",
        "clusters[0].fluxConfigurations[2].ociRepository.url",
    );
    keyed(
        "conflicting-settings",
        "clusters[0].fluxConfigurations[2].ociRepository.digest",
    );
}
