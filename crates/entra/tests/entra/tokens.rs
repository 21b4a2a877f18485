//! Tokens: client secret, PS256 and RS256 assertions, reuse, refusals; configuration checks.

use rekey_core::{LandingError, LandingZone};
use rekey_entra::{AssertionAlg, Credential, EntraError, EntraId, TokenKind};
use rekey_graph_double::{AppSpec, UserSpec};
use zeroize::Zeroizing;

use crate::support::*;

fn certificate(alg: AssertionAlg) -> Credential {
    Credential::Certificate {
        cert_pem: cert().pem.clone(),
        key_pem: Zeroizing::new(cert().key.clone()),
        alg,
    }
}

#[tokio::test]
async fn secret_token_is_fetched_once_and_reused() {
    let (d, _) = with_app().await;
    d.add_user(UserSpec::cloud(
        "c0000000-0000-4000-8000-000000000001",
        "ann@contoso.example",
        "Old-Passw0rd",
    ));
    let z = zone(config(&d));
    let report = z.check().await.unwrap();
    assert_eq!(report.token, TokenKind::Secret);
    assert_eq!(report.token_url, d.token_url(TENANT));
    assert!(report.to_string().contains("client secret"), "{report}");
    z.check().await.unwrap();
    let ann = account(1, "ann", Some("ann@contoso.example"));
    z.plan(&ann).await.unwrap();
    assert_eq!(token_requests(&d), 1, "{:?}", d.requests());
    assert!(count(&d, "GET", "/v1.0/users") >= 3);
}

#[tokio::test]
async fn ps256_and_rs256_assertions_get_tokens() {
    let (d, _) = with_app().await;
    for (alg, kind) in [
        (AssertionAlg::Ps256, TokenKind::CertificatePs256),
        (AssertionAlg::Rs256, TokenKind::CertificateRs256),
    ] {
        let z = zone(config_at(d.base_url(), certificate(alg)));
        let report = z.check().await.unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(report.token, kind);
        // Cached: a second check signs no second assertion.
        z.check().await.unwrap();
    }
    assert_eq!(token_requests(&d), 2);
    // Every token request succeeded (the double refuses a reused jti).
    assert!(
        d.requests()
            .iter()
            .filter(|r| r.path.ends_with("/token"))
            .all(|r| r.status == 200)
    );
}

#[tokio::test]
async fn wrong_secret_is_refused_clearly_and_never_echoed() {
    let (d, _) = with_app().await;
    let wrong = "Wr0ng-secret-value-42";
    let z = zone(config_at(
        d.base_url(),
        Credential::Secret(Zeroizing::new(wrong.into())),
    ));
    let e = z.check().await.unwrap_err();
    let EntraError::TokenRefused(detail) = &e else {
        panic!("{e:?}");
    };
    assert!(detail.contains("invalid_client"), "{detail}");
    assert!(detail.contains("7000215"), "{detail}");
    assert!(e.to_string().starts_with("RK-ENTRA-004"), "{e}");
    assert!(!format!("{e} {e:?}").contains(wrong));

    let err = z.plan(&account(1, "ann", None)).await.unwrap_err();
    let LandingError::Unavailable { diagnostic } = &err else {
        panic!("{err:?}");
    };
    assert!(diagnostic.detail.contains("AADSTS7000215"), "{diagnostic}");
    assert!(!format!("{err} {err:?}").contains(wrong));
    // Nothing reached Graph without a token.
    assert_eq!(count(&d, "GET", "/v1.0/users"), 0);
}

#[tokio::test]
async fn an_unregistered_certificate_is_refused() {
    let (d, _) = double().await;
    d.add_app(
        AppSpec::new(APP)
            .certificate(&other_cert().pem)
            .permissions(PERMS),
    )
    .unwrap();
    let z = zone(config_at(d.base_url(), certificate(AssertionAlg::Ps256)));
    match z.check().await {
        Err(EntraError::TokenRefused(detail)) => assert!(detail.contains("700027"), "{detail}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn configuration_is_checked_before_anything_is_sent() {
    let base = || config_at("https://login.example", secret());
    // Plain http only for loopback.
    for (login, graph) in [
        (
            "http://login.microsoftonline.com",
            "https://graph.microsoft.com",
        ),
        (
            "https://login.microsoftonline.com",
            "http://graph.microsoft.com",
        ),
        (
            "https://login.microsoftonline.com",
            "http://192.168.1.10:8080",
        ),
    ] {
        let mut cfg = base();
        cfg.login_base_url = login.into();
        cfg.graph_base_url = graph.into();
        match EntraId::new(cfg) {
            Err(e @ EntraError::Config { .. }) => assert!(e.to_string().contains("http")),
            other => panic!("{login} {graph}: {:?}", other.err()),
        }
    }
    for ok in ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"] {
        assert!(EntraId::new(config_at(ok, secret())).is_ok(), "{ok}");
    }
    assert!(EntraId::new(base()).is_ok());

    let mut cfg = base();
    cfg.tenant = "../common".into();
    assert!(matches!(EntraId::new(cfg), Err(EntraError::Config { .. })));

    let cfg = config_at(
        "https://login.example",
        Credential::Secret(Zeroizing::new(String::new())),
    );
    assert!(matches!(EntraId::new(cfg), Err(EntraError::Credential(_))));

    // A key that is not the certificate's.
    let cfg = config_at(
        "https://login.example",
        Credential::Certificate {
            cert_pem: cert().pem.clone(),
            key_pem: Zeroizing::new(other_cert().key.clone()),
            alg: AssertionAlg::Ps256,
        },
    );
    match EntraId::new(cfg) {
        Err(e @ EntraError::Credential(_)) => {
            assert!(e.to_string().contains("does not belong"), "{e}");
            assert!(!e.to_string().contains("PRIVATE KEY-----\n"), "{e}");
        }
        other => panic!("{:?}", other.err()),
    }
}
