//! The Entra emulator against azure_identity's real credentials, and ARM's 401 answers.

mod common;

use std::sync::Arc;
use std::time::Duration;

use arcplan_sandbox::{FederatedCredential, SandboxOptions, TokenClaims};
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;

fn client_options(env: &Env) -> ClientOptions {
    let mut custom = CustomConfiguration::default();
    custom.authority_host = env.sandbox.authority_host();
    ClientOptions {
        transport: Some(Transport::new(Arc::new(env.http.clone()))),
        cloud: Some(Arc::new(CloudConfiguration::Custom(custom))),
        ..Default::default()
    }
}

#[tokio::test]
async fn azure_identity_client_secret_credential_gets_a_token_arm_accepts() {
    let env = Env::start(quick()).await;
    let credential = ClientSecretCredential::new(
        env.sandbox.tenant_id(),
        env.sandbox.client_id().to_string(),
        Secret::new(env.sandbox.client_secret().to_string()),
        Some(ClientSecretCredentialOptions {
            client_options: client_options(&env),
        }),
    )
    .expect("credential");
    let token = credential
        .get_token(&["https://management.azure.com/.default"], None)
        .await
        .expect("token from the sandbox");
    let remaining = token.expires_on - time::OffsetDateTime::now_utc();
    assert!(remaining > time::Duration::seconds(3000), "{remaining}");
    // Cached: no second request to Entra.
    let before = env.sandbox.request_counts().entra;
    credential
        .get_token(&["https://management.azure.com/.default"], None)
        .await
        .expect("cached token");
    assert_eq!(env.sandbox.request_counts().entra, before);

    let (s, _, body) = env
        .call_with_token(
            Method::GET,
            &env.url(&format!("/subscriptions/{}", env.sub()), Some(SUB_API)),
            None,
            Some(token.token.secret()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");

    // A wrong secret: azure_identity surfaces Entra's AADSTS error.
    let bad = ClientSecretCredential::new(
        env.sandbox.tenant_id(),
        env.sandbox.client_id().to_string(),
        Secret::new("wrong".to_string()),
        Some(ClientSecretCredentialOptions {
            client_options: client_options(&env),
        }),
    )
    .expect("credential");
    let err = bad
        .get_token(&["https://management.azure.com/.default"], None)
        .await
        .expect_err("wrong secret fails");
    assert!(err.to_string().contains("AADSTS7000215"), "{err}");
    env.shutdown().await;
}

async fn token_request(env: &Env, tenant: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let resp = env
        .http
        .post(format!(
            "{}/{tenant}/oauth2/v2.0/token",
            env.sandbox.authority_host()
        ))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn token_endpoint_speaks_entra() {
    let issuer = "https://oidc.sandbox.invalid/cluster";
    let subject = "system:serviceaccount:azure-arc:arcplan";
    let env = Env::start(SandboxOptions {
        federated_credentials: vec![FederatedCredential {
            issuer: issuer.into(),
            subject: subject.into(),
        }],
        ..quick()
    })
    .await;
    let tenant = env.sandbox.tenant_id().to_string();
    let client = env.sandbox.client_id().to_string();
    let scope = "https://management.azure.com/.default";

    let (s, body) = token_request(
        &env,
        &tenant,
        &[
            ("client_id", &client),
            ("client_secret", env.sandbox.client_secret()),
            ("grant_type", "client_credentials"),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);

    let (s, body) = token_request(
        &env,
        &tenant,
        &[
            ("client_id", &client),
            ("client_secret", "nope"),
            ("grant_type", "client_credentials"),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"][0], 7000215);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215: ")
    );
    for k in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(body[k].is_string(), "{k}");
    }

    let (s, body) = token_request(
        &env,
        "00000000-0000-0000-0000-000000000bad",
        &[
            ("client_id", &client),
            ("client_secret", "x"),
            ("grant_type", "client_credentials"),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_codes"][0], 90002);

    let (_, body) = token_request(
        &env,
        &tenant,
        &[
            ("client_id", "someone-else"),
            ("client_secret", "x"),
            ("grant_type", "client_credentials"),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(body["error_codes"][0], 700016);

    let (_, body) = token_request(
        &env,
        &tenant,
        &[
            ("client_id", &client),
            ("client_secret", env.sandbox.client_secret()),
            ("grant_type", "client_credentials"),
            ("scope", "https://vault.azure.net/.default"),
        ],
    )
    .await;
    assert_eq!(body["error_codes"][0], 500011);

    let (_, body) = token_request(
        &env,
        &tenant,
        &[("client_id", &client), ("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(body["error_codes"][0], 900144);

    // Workload identity: a federated assertion (unsigned here; the sandbox checks iss/sub/aud).
    let assertion = |iss: &str, sub: &str| {
        use base64::Engine as _;
        let e = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 600;
        format!(
            "{}.{}.c2ln",
            e(serde_json::json!({"alg": "RS256"})),
            e(
                serde_json::json!({"iss": iss, "sub": sub, "aud": ["api://AzureADTokenExchange"], "exp": exp})
            )
        )
    };
    let jwt_bearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    let good = assertion(issuer, subject);
    let (s, body) = token_request(
        &env,
        &tenant,
        &[
            ("client_id", &client),
            ("client_assertion", &good),
            ("client_assertion_type", jwt_bearer),
            ("grant_type", "client_credentials"),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let bad = assertion(issuer, "system:serviceaccount:default:other");
    let (_, body) = token_request(
        &env,
        &tenant,
        &[
            ("client_id", &client),
            ("client_assertion", &bad),
            ("client_assertion_type", jwt_bearer),
            ("grant_type", "client_credentials"),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(body["error_codes"][0], 70021);
    env.shutdown().await;
}

#[tokio::test]
async fn arm_rejects_bad_tokens_with_arm_codes() {
    let env = Env::start(quick()).await;
    let url = env.url(
        &format!("/subscriptions/{}/resourcegroups", env.sub()),
        Some(RG_API),
    );
    let sb = &env.sandbox;

    let (s, h, body) = env.call_with_token(Method::GET, &url, None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "AuthenticationFailed");
    assert!(
        h["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer authorization_uri=")
    );
    check_arm_headers(&h);

    let (_, _, body) = env
        .call_with_token(Method::GET, &url, None, Some("not.a.token"))
        .await;
    assert_eq!(error_code(&body), "InvalidAuthenticationToken");

    // Signed with another key (another sandbox).
    let other = arcplan_sandbox::entra::TokenIssuer::new(b"another key");
    let forged = other.mint(&sb.default_claims(Duration::from_secs(600)));
    let (_, _, body) = env
        .call_with_token(Method::GET, &url, None, Some(&forged))
        .await;
    assert_eq!(error_code(&body), "InvalidAuthenticationToken");

    let expired = sb.mint_token(&sb.default_claims(Duration::ZERO));
    let (s, _, body) = env
        .call_with_token(Method::GET, &url, None, Some(&expired))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "ExpiredAuthenticationToken");

    let foreign = sb.mint_token(&TokenClaims::new(
        "72f988bf-86f1-41af-91ab-2d7cd011db47",
        sb.client_id(),
        sb.principal_object_id(),
        "https://management.azure.com/",
        Duration::from_secs(600),
    ));
    let (s, _, body) = env
        .call_with_token(Method::GET, &url, None, Some(&foreign))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "InvalidAuthenticationTokenTenant");

    let mut claims = sb.default_claims(Duration::from_secs(600));
    claims.aud = "https://graph.microsoft.com/".into();
    let wrong_aud = sb.mint_token(&claims);
    let (s, _, body) = env
        .call_with_token(Method::GET, &url, None, Some(&wrong_aud))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "InvalidAuthenticationTokenAudience");

    // Short-lived tokens expire for real (2 s, since `exp` has whole seconds: a 1 s token minted
    // late in a second may already be expired when a loaded machine sends the first request).
    let short = sb.mint_token(&sb.default_claims(Duration::from_secs(2)));
    let (s, _, _) = env
        .call_with_token(Method::GET, &url, None, Some(&short))
        .await;
    assert_eq!(s, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (s, _, body) = env
        .call_with_token(Method::GET, &url, None, Some(&short))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "ExpiredAuthenticationToken");
    env.shutdown().await;
}
