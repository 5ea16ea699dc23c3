//! Onboarding keys generated ahead of apply (AWS-LC, on the key pool): the plan starts the key,
//! the apply uses that one key and no other, and the key passes the sandbox agents' key check
//! (Connected only when the Secret's private key matches `agentPublicKeyCertificate`).

mod k8s_common;

use arcplan_engine::plan::{Action, PlanMode};
use arcplan_providers::kubernetes::key::{self, RSA_4096_PUBLIC_KEY_PREFIX};
use arcplan_sandbox::RegistrationState;
use arcplan_sandbox::agents::{AgentOptions, Heartbeat, heartbeat, public_key_of_pem};
use k8s_common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const KEY: &str = "k8s.onboardingKey.c1";

/// PUTs the connected cluster `rg1/c1` into the sandbox's ARM with `public_key`, as Azure gets it.
async fn put_connected_cluster(env: &Env, public_key: &str) {
    let arm = env.sandbox.arm();
    for namespace in ["Microsoft.Kubernetes", "Microsoft.ExtendedLocation"] {
        arm.set_provider_state(SUB, namespace, RegistrationState::Registered);
    }
    arm.put_resource_group(SUB, "rg1", "eastus", Default::default());
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(env.sandbox.tls().client_config().unwrap())
        .build()
        .unwrap();
    let token = env
        .sandbox
        .mint_token(&env.sandbox.default_claims(Duration::from_secs(600)));
    let url = format!(
        "{}subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Kubernetes/connectedClusters/c1?api-version=2026-05-01",
        env.sandbox.resource_manager()
    );
    let body = json!({"location": "eastus", "identity": {"type": "SystemAssigned"},
        "properties": {"agentPublicKeyCertificate": public_key, "distribution": "generic", "infrastructure": "generic"}});
    let resp = http
        .put(url)
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .expect("PUT");
    let status = resp.status();
    assert!(
        status.is_success(),
        "PUT: {status} {}",
        resp.text().await.unwrap_or_default()
    );
}

/// Heartbeats until the agents conclude something other than "not provisioned yet".
async fn judged(env: &Env) -> Heartbeat {
    let started = Instant::now();
    loop {
        let h = heartbeat(
            env.sandbox.arm(),
            env.sandbox.kube(),
            &AgentOptions::default(),
        );
        if !matches!(h, Heartbeat::ResourceMissing | Heartbeat::AgentsNotReady)
            || started.elapsed() > Duration::from_secs(60)
        {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_started_by_the_plan_is_used_once_and_passes_the_agents_key_check() {
    let mut env = start("keypool", MANIFESTS).await;
    env.graph = graph_of(&config_text(MANIFESTS), 4096);
    let keys = env.provider.keys();
    keys.set_prefetch(true);

    // The plan decides "create" and starts generating the key right away.
    let plan = env.plan(PlanMode::Normal).await.expect("plan");
    assert_eq!(plan.change(&addr(KEY)).unwrap().action, Action::Create);
    assert_eq!(keys.pending(), 1, "the plan started the key");
    assert_eq!(keys.generations_started(), 1);
    let plan_text = serde_json::to_string(&plan).unwrap();
    assert!(!plan_text.contains("PRIVATE KEY"));

    // The apply takes that key: no second generation, nothing left in the cache.
    env.apply(&plan).await;
    assert_eq!(keys.pending(), 0);
    assert_eq!(
        keys.generations_started(),
        1,
        "the apply used the prefetched key"
    );
    let events = env.events.json();
    assert!(
        events.contains("using the RSA-4096 key generated during the plan")
            || events.contains("waiting for the RSA-4096 key generated since the plan"),
        "the apply says it uses the plan's key"
    );

    // The format is today's: a PKCS#1 PEM in the Secret, a PKCS#1 DER public key sent to ARM.
    let pem = env.secret_pem().expect("the Secret holds a PEM");
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
    let public = public_key_of_pem(&pem).expect("the sandbox reads the key");
    assert!(
        public.starts_with(RSA_4096_PUBLIC_KEY_PREFIX),
        "{public:.16}"
    );
    let sent = env.azure.puts.lock().unwrap()[0].1.clone();
    assert_eq!(sent, Value::String(public.clone()));
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!events.contains(line), "a private key line is in an event");
    }

    // Through the sandbox's key check: the resource with this public key goes Connected ...
    put_connected_cluster(&env, &public).await;
    assert_eq!(judged(&env).await, Heartbeat::Connected);
    // ... and with any other key it does not.
    let (_, other) = key::generate(4096).expect("another key");
    assert_ne!(other.public_key, public);
    env.sandbox
        .arm()
        .update_connected_cluster(SUB, "rg1", "c1", |c| {
            c["properties"]["agentPublicKeyCertificate"] = json!(other.public_key);
        });
    assert_eq!(judged(&env).await, Heartbeat::KeyMismatch);

    // A second plan finds the key: nothing to generate.
    let again = env.plan(PlanMode::Normal).await.expect("second plan");
    assert_eq!(again.change(&addr(KEY)).unwrap().action, Action::NoOp);
    assert_eq!(keys.generations_started(), 1);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_prefetching_the_apply_generates_the_key_itself() {
    let env = start("keynopre", MANIFESTS).await;
    let keys = env.provider.keys();
    let plan = env.plan(PlanMode::Normal).await.expect("plan");
    assert_eq!(plan.change(&addr(KEY)).unwrap().action, Action::Create);
    assert_eq!(
        keys.generations_started(),
        0,
        "a plan alone spends no CPU on keys"
    );
    env.apply(&plan).await;
    assert_eq!(keys.generations_started(), 1);
    let pem = env.secret_pem().expect("the Secret holds a PEM");
    let public = public_key_of_pem(&pem).expect("the sandbox reads the key");
    assert_eq!(env.azure.puts.lock().unwrap()[0].1, json!(public));
    assert!(env.events.json().contains("generating an RSA-2048 key"));
    env.stop().await;
}
