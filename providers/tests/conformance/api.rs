//! The API behaviours the provider relies on (Status bodies, SSA conflicts and managedFields,
//! resourceVersion conflicts, selectors and pages, defaults, discovery, secrecy of the no-rights
//! user's errors), against the same target as the rest of the suite.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_version_conflicts_and_status_bodies() {
    let t = Target::start("rv").await;
    let ns = t.namespace("rv").await;
    let cms: Api<ConfigMap> = Api::namespaced(t.admin.clone(), &ns);
    let c1 = cms
        .create(
            &PostParams::default(),
            &cm("c", json!({}), json!({"k": "1"})),
        )
        .await
        .unwrap();
    let mut c2 = c1.clone();
    c2.data = Some([("k".to_owned(), "2".to_owned())].into());
    let c2 = cms.replace("c", &PostParams::default(), &c2).await.unwrap();
    assert_ne!(c1.metadata.resource_version, c2.metadata.resource_version);

    // An update carrying the old resourceVersion.
    let mut stale = c1.clone();
    stale.data = Some([("k".to_owned(), "3".to_owned())].into());
    let s = status_of(cms.replace("c", &PostParams::default(), &stale).await);
    assert_eq!(s.code, 409);
    assert_eq!(s.reason, "Conflict");
    assert_eq!(
        s.message,
        "Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(
        to_value(s.details.as_ref().unwrap()),
        json!({"name": "c", "kind": "configmaps"})
    );
    // A merge patch with a stale resourceVersion too.
    let s = status_of(
        cms.patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": c1.metadata.resource_version}, "data": {"k": "4"}})),
        )
        .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    // A delete whose precondition is stale.
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            resource_version: c1.metadata.resource_version.clone(),
            uid: None,
        }),
        ..Default::default()
    };
    let s = status_of(cms.delete("c", &dp).await);
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        s.message,
        format!(
            "Operation cannot be fulfilled on ConfigMap \"c\": the ResourceVersion in the precondition ({}) does not match the ResourceVersion in record ({}). The object might have been modified",
            c1.metadata.resource_version.as_deref().unwrap(),
            c2.metadata.resource_version.as_deref().unwrap()
        )
    );
    assert_eq!(
        to_value(s.details.as_ref().unwrap()),
        json!({"name": "c", "kind": "ConfigMap"})
    );
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            resource_version: None,
            uid: Some("00000000-0000-0000-0000-000000000000".into()),
        }),
        ..Default::default()
    };
    let s = status_of(cms.delete("c", &dp).await);
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        s.message,
        format!(
            "Operation cannot be fulfilled on ConfigMap \"c\": the UID in the precondition (00000000-0000-0000-0000-000000000000) does not match the UID in record ({}). The object might have been deleted and then recreated",
            c1.metadata.uid.as_deref().unwrap()
        )
    );
    // An update without a resourceVersion is unconditional.
    let mut blind = c2.clone();
    blind.metadata.resource_version = None;
    cms.replace("c", &PostParams::default(), &blind)
        .await
        .expect("unconditional update");

    // Create twice, read and delete what is not there.
    let s = status_of(
        cms.create(&PostParams::default(), &cm("c", json!({}), json!({})))
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(s.message, "configmaps \"c\" already exists");
    assert_eq!(
        to_value(s.details.as_ref().unwrap()),
        json!({"name": "c", "kind": "configmaps"})
    );
    let s = status_of(cms.get("nope").await);
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(s.message, "configmaps \"nope\" not found");
    assert_eq!(
        to_value(s.details.as_ref().unwrap()),
        json!({"name": "nope", "kind": "configmaps"})
    );
    let s = status_of(cms.delete("nope", &DeleteParams::default()).await);
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    let deployments: Api<Deployment> = Api::namespaced(t.admin.clone(), &ns);
    let s = status_of(deployments.get("nope").await);
    assert_eq!(s.message, "deployments.apps \"nope\" not found");
    assert_eq!(
        to_value(s.details.as_ref().unwrap()),
        json!({"name": "nope", "group": "apps", "kind": "deployments"})
    );

    // An invalid name is 422 Invalid with one cause per field.
    let s = status_of(
        cms.create(
            &PostParams::default(),
            &cm("Bad_Name", json!({}), json!({})),
        )
        .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert!(
        s.message.starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of"),
        "{}",
        s.message
    );
    let details = to_value(s.details.as_ref().unwrap());
    assert_eq!(details["name"], "Bad_Name");
    assert_eq!(details["kind"], "ConfigMap");
    assert_eq!(details["causes"][0]["reason"], "FieldValueInvalid");
    assert_eq!(details["causes"][0]["field"], "metadata.name");

    // A namespace that does not exist.
    let gone: Api<ConfigMap> = Api::namespaced(t.admin.clone(), "no-such-namespace");
    let s = status_of(
        gone.create(&PostParams::default(), &cm("x", json!({}), json!({})))
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(s.message, "namespaces \"no-such-namespace\" not found");
    let _ = Api::<Namespace>::all(t.admin.clone())
        .delete(&ns, &DeleteParams::default())
        .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_conflicts_force_and_managed_fields() {
    let t = Target::start("ssa").await;
    let ns = t.namespace("ssa").await;
    let cms: Api<ConfigMap> = Api::namespaced(t.admin.clone(), &ns);
    let apply = |manager: &str, force: bool| {
        let mut pp = PatchParams::apply(manager);
        pp.force = force;
        pp
    };
    let body = |data: Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "shared", "labels": {"team": "a"}}, "data": data})
    };
    let a = cms
        .patch(
            "shared",
            &apply("alpha", false),
            &Patch::Apply(body(json!({"a": "1", "b": "1"}))),
        )
        .await
        .unwrap();
    let av = to_value(&a);
    let mf = av["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0]["manager"], "alpha");
    assert_eq!(mf[0]["operation"], "Apply");
    assert_eq!(mf[0]["apiVersion"], "v1");
    assert_eq!(mf[0]["fieldsType"], "FieldsV1");
    assert!(mf[0]["time"].is_string());
    assert_eq!(
        mf[0]["fieldsV1"],
        json!({"f:data": {"f:a": {}, "f:b": {}},
               "f:metadata": {"f:labels": {"f:team": {}}}})
    );

    // The same apply again changes nothing, not even the resourceVersion.
    let again = cms
        .patch(
            "shared",
            &apply("alpha", false),
            &Patch::Apply(body(json!({"a": "1", "b": "1"}))),
        )
        .await
        .unwrap();
    assert_eq!(again.metadata.resource_version, a.metadata.resource_version);

    // Another manager setting alpha's field to another value conflicts.
    let s = status_of(
        cms.patch(
            "shared",
            &apply("beta", false),
            &Patch::Apply(body(json!({"a": "2"}))),
        )
        .await,
    );
    assert_eq!(s.code, 409);
    assert_eq!(s.reason, "Conflict");
    assert_eq!(
        s.message,
        "Apply failed with 1 conflict: conflict with \"alpha\": .data.a"
    );
    assert_eq!(
        to_value(s.details.as_ref().unwrap()),
        json!({"causes": [{"reason": "FieldManagerConflict",
                           "message": "conflict with \"alpha\"", "field": ".data.a"}]})
    );
    // Setting the same value is shared ownership, not a conflict.
    let shared = cms
        .patch(
            "shared",
            &apply("gamma", false),
            &Patch::Apply(body(json!({"b": "1"}))),
        )
        .await
        .expect("same value, no conflict");
    assert_eq!(
        fields_of(&to_value(&shared), "gamma", "Apply").unwrap(),
        json!({"f:data": {"f:b": {}}, "f:metadata": {"f:labels": {"f:team": {}}}})
    );

    // Forced, beta takes the field from alpha.
    let forced = cms
        .patch(
            "shared",
            &apply("beta", true),
            &Patch::Apply(body(json!({"a": "2"}))),
        )
        .await
        .unwrap();
    let fv = to_value(&forced);
    assert_eq!(fv["data"], json!({"a": "2", "b": "1"}));
    assert_eq!(
        fields_of(&fv, "alpha", "Apply").unwrap(),
        json!({"f:data": {"f:b": {}}, "f:metadata": {"f:labels": {"f:team": {}}}})
    );
    assert_eq!(
        fields_of(&fv, "beta", "Apply").unwrap(),
        json!({"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {"f:team": {}}}})
    );

    // A field an applier stops sending is removed when no one else owns it.
    let dropped = cms
        .patch(
            "shared",
            &apply("beta", false),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "shared"}, "data": {"c": "3"}})),
        )
        .await
        .unwrap();
    let dv = to_value(&dropped);
    assert_eq!(dv["data"], json!({"b": "1", "c": "3"}), "a is removed");
    assert_eq!(
        dv["metadata"]["labels"],
        json!({"team": "a"}),
        "alpha and gamma keep the label"
    );

    // An update (PUT) by another manager records an Update entry and takes the changed field.
    let mut cur = dropped.clone();
    cur.data.as_mut().unwrap().insert("b".into(), "9".into());
    let pp = PostParams {
        field_manager: Some("editor".into()),
        ..Default::default()
    };
    let edited = cms.replace("shared", &pp, &cur).await.unwrap();
    let ev = to_value(&edited);
    assert_eq!(
        fields_of(&ev, "editor", "Update").unwrap(),
        json!({"f:data": {"f:b": {}}})
    );
    assert_eq!(
        fields_of(&ev, "alpha", "Apply").unwrap(),
        json!({"f:metadata": {"f:labels": {"f:team": {}}}})
    );
    // A manager without any field left disappears from managedFields.
    assert!(fields_of(&ev, "gamma", "Apply").is_some());

    // Applying a Deployment records only what the applier sent (no defaults).
    let deployments: Api<Deployment> = Api::namespaced(t.admin.clone(), &ns);
    let d = deployments
        .patch(
            "web",
            &apply("alpha", false),
            &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "web", "image": "nginx:1.25",
                            "ports": [{"containerPort": 80}]}]}}}})),
        )
        .await
        .unwrap();
    let dv = to_value(&d);
    assert_eq!(
        fields_of(&dv, "alpha", "Apply").unwrap(),
        json!({"f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                ".": {}, "f:image": {}, "f:name": {},
                "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}})
    );
    let _ = Api::<Namespace>::all(t.admin.clone())
        .delete(&ns, &DeleteParams::default())
        .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_and_field_selectors_and_pages() {
    let t = Target::start("select").await;
    let ns = t.namespace("sel").await;
    let cms: Api<ConfigMap> = Api::namespaced(t.admin.clone(), &ns);
    for (name, labels) in [
        ("l1", json!({"app": "a", "tier": "x"})),
        ("l2", json!({"app": "b"})),
        ("l3", json!({"other": "c"})),
    ] {
        cms.create(&PostParams::default(), &cm(name, labels, json!({})))
            .await
            .unwrap();
    }
    for (selector, want) in [
        ("app=a", vec!["l1"]),
        ("app==a", vec!["l1"]),
        ("app!=a", vec!["l2", "l3"]),
        ("app in (a,b)", vec!["l1", "l2"]),
        ("app notin (a)", vec!["l2", "l3"]),
        ("app", vec!["l1", "l2"]),
        ("!app", vec!["l3"]),
        ("app=a,tier=x", vec!["l1"]),
        ("app=a,tier!=x", vec![]),
        ("app in (a),!other", vec!["l1"]),
    ] {
        let got = cms
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap();
        assert_eq!(names(&got.items), want, "selector {selector}");
    }
    let got = cms
        .list(&ListParams::default().fields("metadata.name=l2"))
        .await
        .unwrap();
    assert_eq!(names(&got.items), ["l2"]);
    let got = cms
        .list(
            &ListParams::default()
                .fields("metadata.name!=l2")
                .labels("app"),
        )
        .await
        .unwrap();
    assert_eq!(names(&got.items), ["l1"]);
    let s = status_of(cms.list(&ListParams::default().labels("app=(")).await);
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
    let s = status_of(cms.list(&ListParams::default().fields("data.k=v")).await);
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
    assert_eq!(
        s.message,
        "\"data.k\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    );

    // Pages: limit and continue, with the remaining count.
    let page = cms.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(names(&page.items), ["l1", "l2"]);
    assert_eq!(page.metadata.remaining_item_count, Some(1));
    let token = page.metadata.continue_.clone().expect("a continue token");
    let rest = cms
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(names(&rest.items), ["l3"]);
    assert!(rest.metadata.continue_.as_deref().unwrap_or("").is_empty());
    assert_eq!(rest.metadata.remaining_item_count, None);
    let _ = Api::<Namespace>::all(t.admin.clone())
        .delete(&ns, &DeleteParams::default())
        .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_objects_get_the_servers_defaults() {
    let t = Target::start("defaults").await;
    let ns = t.namespace("def").await;
    let secrets: Api<Secret> = Api::namespaced(t.admin.clone(), &ns);
    let s = secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}}))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    assert_eq!(to_value(&s)["data"], json!({"k": "dg=="}));
    assert!(to_value(&s).get("stringData").is_none());

    // Raw, to see the body exactly as sent (typed clients drop nulls).
    let body = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}});
    let req = http::Request::post(format!(
        "/apis/apps/v1/namespaces/{ns}/deployments?fieldManager=creator"
    ))
    .header("content-type", "application/json")
    .body(serde_json::to_vec(&body).unwrap())
    .unwrap();
    let (code, d) = raw(&t.admin, req).await;
    assert_eq!(code, 201, "{d}");
    assert_eq!(d["status"], json!({}), "{d}");
    assert_eq!(d["metadata"]["generation"], 1);
    assert_eq!(
        d["spec"],
        json!({"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.25", "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst", "securityContext": {},
                    "schedulerName": "default-scheduler"}},
            "strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600})
    );
    // A create records the creator's fields as an Update (defaults included, status not).
    let mf = d["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(mf.len(), 1, "{mf:?}");
    assert_eq!(mf[0]["manager"], "creator");
    assert_eq!(mf[0]["operation"], "Update");
    let f = &mf[0]["fieldsV1"];
    assert_eq!(f["f:spec"]["f:revisionHistoryLimit"], json!({}), "{f}");
    assert_eq!(
        f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:imagePullPolicy"],
        json!({}),
        "{f}"
    );
    let _ = Api::<Namespace>::all(t.admin.clone())
        .delete(&ns, &DeleteParams::default())
        .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_version() {
    let t = Target::start("discovery").await;
    let v = get_json(&t.admin, "/version").await;
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "buildDate",
            "compiler",
            "gitCommit",
            "gitTreeState",
            "gitVersion",
            "goVersion",
            "major",
            "minor",
            "platform"
        ]
    );
    let git = v["gitVersion"].as_str().unwrap();
    assert!(
        git.starts_with(&format!(
            "v{}.{}.",
            v["major"].as_str().unwrap(),
            v["minor"].as_str().unwrap()
        )),
        "{v}"
    );
    let minor: u32 = v["minor"]
        .as_str()
        .unwrap()
        .trim_end_matches('+')
        .parse()
        .unwrap();
    // The namespace name label arrived in v1.21: present exactly when the server is that new.
    let ns = t.namespace("disc").await;
    let nv = to_value(
        &Api::<Namespace>::all(t.admin.clone())
            .get(&ns)
            .await
            .unwrap(),
    );
    assert_eq!(
        nv["metadata"]
            .get("labels")
            .is_some_and(|l| l["kubernetes.io/metadata.name"] == ns.as_str()),
        minor >= 21,
        "{nv}"
    );

    let api = get_json(&t.admin, "/api").await;
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], json!(["v1"]));
    assert_eq!(
        api["serverAddressByClientCIDRs"][0]["clientCIDR"],
        "0.0.0.0/0"
    );

    let core = get_json(&t.admin, "/api/v1").await;
    assert_eq!(core["kind"], "APIResourceList");
    assert_eq!(core["groupVersion"], "v1");
    let find = |list: &Value, name: &str| -> Value {
        list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} is not in {}", list["groupVersion"]))
    };
    // Every resource the emulator serves is described exactly as the reference v1.20.2 server
    // describes it (verbs, short names, categories, storage version hashes, subresources).
    let reference: Value = serde_json::from_str(include_str!("discovery-v1.20.2.json")).unwrap();
    for (gv, entries) in reference["groupVersions"].as_object().unwrap() {
        let path = if gv == "v1" {
            "/api/v1".to_owned()
        } else {
            format!("/apis/{gv}")
        };
        let list = get_json(&t.admin, &path).await;
        assert_eq!(list["kind"], "APIResourceList");
        assert_eq!(list["groupVersion"], gv.as_str());
        for want in entries.as_array().unwrap() {
            let name = want["name"].as_str().unwrap();
            assert_eq!(find(&list, name), *want, "{gv} {name}");
        }
    }

    let groups = get_json(&t.admin, "/apis").await;
    assert_eq!(groups["kind"], "APIGroupList");
    for (group, version) in [
        ("apps", "v1"),
        ("coordination.k8s.io", "v1"),
        ("rbac.authorization.k8s.io", "v1"),
        ("authorization.k8s.io", "v1"),
    ] {
        let g = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == group)
            .unwrap_or_else(|| panic!("group {group} missing"));
        assert_eq!(
            g["preferredVersion"],
            json!({"groupVersion": format!("{group}/{version}"), "version": version})
        );
    }
    let _ = Api::<Namespace>::all(t.admin.clone())
        .delete(&ns, &DeleteParams::default())
        .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_data_is_never_in_an_error_or_a_list_of_the_no_rights_user() {
    // Tests never print secrets; the 403 body of a Secret read names only the Secret.
    let t = Target::start("secretbody").await;
    let ns = t.namespace("sec").await;
    let admin: Api<Secret> = Api::namespaced(t.admin.clone(), &ns);
    let value = base64::engine::general_purpose::STANDARD.encode("do-not-leak");
    admin
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "s"}, "data": {"k": value}}))
                .unwrap(),
        )
        .await
        .unwrap();
    let nobody: Api<Secret> = Api::namespaced(t.norights.clone(), &ns);
    let s = status_of(nobody.get("s").await);
    assert_eq!(s.code, 403);
    assert!(!s.message.contains(&value) && !s.message.contains("do-not-leak"));
    let _ = Api::<Namespace>::all(t.admin.clone())
        .delete(&ns, &DeleteParams::default())
        .await;
    t.stop().await;
}
