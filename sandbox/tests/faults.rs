//! Fault injection: throttling with Retry-After, 5xx, dropped connections, latency, failing and slow
//! long-running operations, and their repeatability under one seed.

mod common;

use std::time::{Duration, Instant};

use arcplan_sandbox::{BucketSpec, SandboxOptions, ThrottleOptions};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn throttling_answers_429_with_retry_after_and_refills() {
    let env = Env::start(SandboxOptions {
        throttle: ThrottleOptions {
            enabled: true,
            reads: BucketSpec {
                capacity: 3,
                refill_per_sec: 2,
            },
            writes: BucketSpec {
                capacity: 2,
                refill_per_sec: 1,
            },
            deletes: BucketSpec {
                capacity: 2,
                refill_per_sec: 1,
            },
        },
        ..quick()
    })
    .await;
    let url = env.url(
        &format!("/subscriptions/{}/resourcegroups", env.sub()),
        Some(RG_API),
    );
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let (s, h, _) = env.call(Method::GET, &url, None).await;
        assert_eq!(s, StatusCode::OK);
        remaining.push(
            h["x-ms-ratelimit-remaining-subscription-reads"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let (s, h, body) = env.call(Method::GET, &url, None).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_code(&body), "SubscriptionRequestsThrottled");
    assert_eq!(h["retry-after"], "1");
    check_arm_headers(&h);
    // Writes have their own bucket.
    let (s, h, _) = env
        .put(
            &format!("/subscriptions/{}/resourcegroups/rg", env.sub()),
            RG_API,
            &json!({"location": "eastus"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(h["x-ms-ratelimit-remaining-subscription-writes"], "1");
    // After Retry-After, reads are served again.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (s, _, _) = env.call(Method::GET, &url, None).await;
    assert_eq!(s, StatusCode::OK);

    // The test switch: the next k requests are throttled.
    env.sandbox.faults().throttle_next(2, 7);
    for _ in 0..2 {
        let (s, h, _) = env.call(Method::GET, &url, None).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(h["retry-after"], "7");
    }
    env.sandbox
        .faults()
        .set_throttle(ThrottleOptions::default());
    let (s, h, _) = env.call(Method::GET, &url, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["x-ms-ratelimit-remaining-subscription-reads"], "250");
    env.shutdown().await;
}

/// Status codes (or "drop") of `n` identical GETs against a sandbox with faults.
async fn fault_pattern(seed: u64) -> Vec<String> {
    let env = Env::start(SandboxOptions { seed, ..quick() }).await;
    env.sandbox.faults().set_error_rate(0.3);
    env.sandbox.faults().set_drop_rate(0.1);
    let url = env.url(&format!("/subscriptions/{}", env.sub()), Some(SUB_API));
    let mut out = Vec::new();
    for _ in 0..30 {
        let resp = env.http.get(&url).bearer_auth(&env.token).send().await;
        out.push(match resp {
            Ok(r) => {
                let s = r.status();
                if s.is_server_error() {
                    let body: serde_json::Value = r.json().await.unwrap();
                    error_code(&body);
                }
                s.as_u16().to_string()
            }
            Err(_) => "drop".to_string(),
        });
    }
    env.shutdown().await;
    out
}

#[tokio::test]
async fn faults_are_seeded_and_repeatable() {
    let a = fault_pattern(42).await;
    let b = fault_pattern(42).await;
    assert_eq!(a, b);
    for kind in ["200", "500", "503", "drop"] {
        assert!(
            a.iter().any(|x| x == kind),
            "{kind} never happened in {a:?}"
        );
    }
    assert_ne!(a, fault_pattern(43).await);
}

#[tokio::test]
async fn latency_is_added() {
    let env = Env::start(quick()).await;
    env.sandbox
        .faults()
        .set_latency(Duration::from_millis(120), Duration::ZERO);
    let url = env.url(&format!("/subscriptions/{}", env.sub()), Some(SUB_API));
    let t = Instant::now();
    let (s, _, _) = env.call(Method::GET, &url, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(t.elapsed() >= Duration::from_millis(120));
    env.shutdown().await;
}

#[tokio::test]
async fn long_running_operations_can_fail_or_be_slow() {
    let env = Env::start(SandboxOptions {
        fail_lro_for: vec!["doomed".into()],
        ..quick()
    })
    .await;
    env.prepare("arc").await;
    let sub = env.sub();
    let (_, public) = key_pair("a");
    let cc = |name: &str| {
        format!(
            "/subscriptions/{sub}/resourceGroups/arc/providers/Microsoft.Kubernetes/connectedClusters/{name}"
        )
    };

    let (s, h, _) = env.put(&cc("doomed"), CC_API, &cluster_body(&public)).await;
    assert_eq!(s, StatusCode::CREATED);
    let status = env
        .poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;
    check("common3", "OperationStatusResult", &status);
    assert_eq!(status["status"], "Failed");
    assert_eq!(status["error"]["code"], "ResourceOperationFailure");
    let (_, _, body) = env.get(&cc("doomed"), CC_API).await;
    assert_eq!(body["properties"]["provisioningState"], "Failed");

    // While an operation runs the resource reports a non-terminal state, and writes conflict.
    env.sandbox
        .arm()
        .set_delays(Duration::from_millis(400), Duration::from_millis(30));
    let (s, h, _) = env.put(&cc("slow"), CC_API, &cluster_body(&public)).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, _, body) = env.get(&cc("slow"), CC_API).await;
    assert!(
        ["Accepted", "Provisioning"]
            .contains(&body["properties"]["provisioningState"].as_str().unwrap())
    );
    let (s, _, body) = env.put(&cc("slow"), CC_API, &cluster_body(&public)).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "AnotherOperationInProgress");
    let (_, _, status) = env
        .call(
            Method::GET,
            h["azure-asyncoperation"].to_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(status["status"], "InProgress");
    let status = env
        .poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;
    assert_eq!(status["status"], "Succeeded");

    // Location polling of a delete: 202 while running, then 200.
    let (s, h, _) = env
        .call(Method::DELETE, &env.url(&cc("slow"), Some(CC_API)), None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let location = h["location"].to_str().unwrap().to_string();
    let (s, h2, _) = env.call(Method::GET, &location, None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert!(h2.contains_key("retry-after"));
    let mut last = s;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (s, _, _) = env.call(Method::GET, &location, None).await;
        last = s;
        if s != StatusCode::ACCEPTED {
            break;
        }
    }
    assert_eq!(last, StatusCode::OK);

    // Deleting the resource group deletes what it contains.
    let (s, _, _) = env
        .call(
            Method::DELETE,
            &env.url(
                &format!("/subscriptions/{sub}/resourceGroups/arc"),
                Some(RG_API),
            ),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(env.sandbox.arm().connected_clusters().is_empty());
    env.shutdown().await;
}

#[tokio::test]
async fn faults_reach_entra_and_kube_in_their_own_error_shapes() {
    let env = Env::start(quick()).await;
    env.sandbox.faults().set_error_rate(1.0);
    let resp = env
        .http
        .get(format!("{}/api/v1/namespaces", env.sandbox.kube_server()))
        .bearer_auth(env.sandbox.kube_token())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_server_error());
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["status"], "Failure");

    let resp = env
        .http
        .post(env.sandbox.token_url())
        .form(&[
            ("client_id", env.sandbox.client_id()),
            ("client_secret", env.sandbox.client_secret()),
            ("grant_type", "client_credentials"),
            ("scope", "https://management.azure.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_server_error());
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error_codes"][0], 90033);
    env.shutdown().await;
}

#[tokio::test]
async fn slow_operations_take_the_slow_delay() {
    let env = Env::start(SandboxOptions {
        slow_lro_rate: 1.0,
        slow_lro_delay: Duration::from_millis(300),
        ..quick()
    })
    .await;
    env.prepare("arc").await;
    let (_, public) = key_pair("a");
    let path = format!(
        "/subscriptions/{}/resourceGroups/arc/providers/Microsoft.Kubernetes/connectedClusters/c",
        env.sub()
    );
    let started = Instant::now();
    let (s, h, _) = env.put(&path, CC_API, &cluster_body(&public)).await;
    assert_eq!(s, StatusCode::CREATED);
    let status = env
        .poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;
    assert_eq!(status["status"], "Succeeded");
    assert!(started.elapsed() >= Duration::from_millis(300));
    env.shutdown().await;
}
