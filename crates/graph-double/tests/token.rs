//! The token endpoint: secrets, certificate assertions (PS256 and RS256) and their refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use rekey_graph_double::{AppSpec, Double, GRAPH_DEFAULT_SCOPE};
use support::*;

#[tokio::test]
async fn secret_ok_and_wrong_secret_refused() {
    let d = Double::start().await.unwrap();
    d.add_app(AppSpec::new("app").secret("s3cret")).unwrap();
    let ok = token_by_secret(&d, "app", "s3cret").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let j = ok.json();
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["expires_in"], 3599);
    assert!(j["access_token"].as_str().unwrap().len() >= 32);

    let bad = token_by_secret(&d, "app", "nope").await;
    assert_eq!(bad.status, 401);
    let j = bad.json();
    assert_eq!(j["error"], "invalid_client");
    assert_eq!(j["error_codes"][0], 7_000_215);
    assert!(
        j["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215: ")
    );
    for k in ["timestamp", "trace_id", "correlation_id"] {
        assert!(j[k].is_string(), "{k}");
    }

    let unknown = token_by_secret(&d, "other", "s3cret").await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json()["error"], "unauthorized_client");
}

#[tokio::test]
async fn secret_by_http_basic_and_configurable_lifetime() {
    let d = Double::start().await.unwrap();
    d.add_app(AppSpec::new("app").secret("s3cret")).unwrap();
    d.set_token_lifetime(5);
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("scope", GRAPH_DEFAULT_SCOPE),
    ]);
    let r = http(
        d.addr(),
        "POST",
        &format!("/{TENANT}/oauth2/v2.0/token"),
        &[("Authorization", "Basic YXBwOnMzY3JldA==")],
        Some(("application/x-www-form-urlencoded", &body)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["expires_in"], 5);
}

#[tokio::test]
async fn missing_grant_type_is_invalid_request() {
    let d = Double::start().await.unwrap();
    let r = post_form(&d, &[("client_id", "app")]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_request");
    assert_eq!(r.json()["error_codes"][0], 900_144);
}

#[tokio::test]
async fn ps256_and_rs256_assertions_ok() {
    let cert = make_cert();
    let d = Double::start().await.unwrap();
    d.add_app(AppSpec::new("app").certificate(&cert.pem))
        .unwrap();
    for (alg, jti) in [("PS256", "jti-1"), ("RS256", "jti-2")] {
        let jwt = assertion(&cert, alg, claims(&d, "app", jti));
        let r = token_by_assertion(&d, "app", &jwt).await;
        assert_eq!(r.status, 200, "{alg}: {}", r.body);
        assert_eq!(r.json()["token_type"], "Bearer");
    }
}

#[tokio::test]
async fn bad_assertions_refused() {
    let cert = make_cert();
    let other = make_cert();
    let d = Double::start().await.unwrap();
    d.add_app(AppSpec::new("app").certificate(&cert.pem))
        .unwrap();

    // Wrong signature: the header names the registered cert, the key is another one.
    let forged = support::TestCert {
        pem: cert.pem.clone(),
        der: cert.der.clone(),
        key: other.key.clone(),
    };
    let r = token_by_assertion(
        &d,
        "app",
        &assertion(&forged, "PS256", claims(&d, "app", "a")),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error_codes"][0].as_u64()),
        (401, Some(700_027)),
        "{}",
        r.body
    );

    // A certificate that is not registered.
    let r = token_by_assertion(
        &d,
        "app",
        &assertion(&other, "PS256", claims(&d, "app", "b")),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.json()["error"], "invalid_client");

    // Wrong audience (another tenant's endpoint).
    let mut c = claims(&d, "app", "c");
    c["aud"] = format!("{}/other/oauth2/v2.0/token", d.base_url()).into();
    let r = token_by_assertion(&d, "app", &assertion(&cert, "PS256", c)).await;
    assert_eq!(
        (r.status, r.json()["error_codes"][0].as_u64()),
        (401, Some(700_023)),
        "{}",
        r.body
    );

    // Expired an hour ago.
    let mut c = claims(&d, "app", "d");
    c["nbf"] = (now() - 4000).into();
    c["exp"] = (now() - 3600).into();
    let r = token_by_assertion(&d, "app", &assertion(&cert, "PS256", c)).await;
    assert_eq!(
        (r.status, r.json()["error_codes"][0].as_u64()),
        (401, Some(700_024)),
        "{}",
        r.body
    );

    // iss/sub not the client id.
    let mut c = claims(&d, "app", "e");
    c["iss"] = "someone-else".into();
    let r = token_by_assertion(&d, "app", &assertion(&cert, "RS256", c)).await;
    assert_eq!(
        (r.status, r.json()["error_codes"][0].as_u64()),
        (401, Some(700_021)),
        "{}",
        r.body
    );

    // Replayed jti: first use ok, second refused.
    let jwt = assertion(&cert, "RS256", claims(&d, "app", "f"));
    assert_eq!(token_by_assertion(&d, "app", &jwt).await.status, 200);
    let r = token_by_assertion(&d, "app", &jwt).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.json()["error"], "invalid_client");
}

#[tokio::test]
async fn bad_certificate_pem_is_refused_at_registration() {
    let d = Double::start().await.unwrap();
    assert!(
        d.add_app(AppSpec::new("app").certificate("not a pem"))
            .is_err()
    );
}
