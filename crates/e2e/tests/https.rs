//! `rekey serve` speaking HTTPS itself (`[server] tls_cert_file` / `tls_key_file`), served by the
//! same code (`rekey::tls::serve_portal`): a real headless Chromium that trusts the dev CA (an NSS
//! database, never `--ignore-certificate-errors`) resets a password over it, and the certificate
//! is replaced without a restart, after a file change and after SIGHUP, while a bad file keeps
//! the old one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rekey::config::ops::TlsFiles;
use rekey_core::store::Store;
use rekey_directory::{ActiveDirectory, AdConfig};
use rekey_e2e::dev::{Dev, dev};
use rekey_e2e::{Browser, Options};
use rekey_notify::testing::SmtpSink;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(10);

/// The dev domain's CA and the server certificate it issued (SAN localhost, 127.0.0.1).
fn dev_ca(d: &Dev) -> PathBuf {
    PathBuf::from(d.get("REKEY_DEV_CA_FILE"))
}

fn dev_pair(d: &Dev) -> TlsFiles {
    let ca = dev_ca(d);
    TlsFiles {
        cert: ca.with_file_name("server.pem"),
        key: ca.with_file_name("server.key"),
    }
}

/// A temp dir removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("rekey-https-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies of the dev certificate and key in `dir` (the tests overwrite them).
fn copy_dev_pair(d: &Dev, dir: &Dir) -> TlsFiles {
    let dev = dev_pair(d);
    let files = TlsFiles {
        cert: dir.0.join("fullchain.pem"),
        key: dir.0.join("privkey.pem"),
    };
    std::fs::copy(&dev.cert, &files.cert).unwrap();
    std::fs::copy(&dev.key, &files.key).unwrap();
    files
}

fn der(pem_file: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(pem_file).unwrap()
}

/// A throwaway CA (PEM) and a certificate it issued for localhost / 127.0.0.1 with its key.
struct Issued {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn throwaway_ca() -> Issued {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Rekey test CA (throwaway)");
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "localhost (renewed)");
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    Issued {
        ca_pem: issuer.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// One HTTPS request on a new connection, verified against `roots` for the name `localhost`:
/// the certificate the server presented and the answer's head.
async fn fetch(port: u16, roots: &[&str], path: &str) -> (CertificateDer<'static>, String) {
    let mut store = rustls::RootCertStore::empty();
    for pem in roots {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            store.add(cert.unwrap()).unwrap();
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await?;
        let cert = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n");
        tls.write_all(request.as_bytes()).await?;
        let mut out = Vec::new();
        // A missing close_notify after the whole answer is no concern here.
        let _ = tls.read_to_end(&mut out).await;
        Ok::<_, std::io::Error>((cert, out))
    };
    let (cert, out) = tokio::time::timeout(WAIT, exchange)
        .await
        .expect("no answer in time")
        .expect("TLS exchange");
    let text = String::from_utf8_lossy(&out);
    let head = text.split("\r\n\r\n").next().unwrap_or_default().to_owned();
    (cert, head)
}

/// Fetch until the server presents `want` (or fail after `within`).
async fn wait_for_cert(port: u16, roots: &[&str], want: &CertificateDer<'_>, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let (cert, head) = fetch(port, roots, "/healthz").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        if cert == *want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still the old certificate after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_browser_that_trusts_the_dev_ca_resets_a_password_over_https() {
    let d = dev();
    let sink = SmtpSink::start();
    let portal = rekey_e2e::portal::start_tls(&d, &sink.mailer_config(), dev_pair(&d), WAIT, |c| {
        if let Some(s) = c.server.as_mut() {
            s.identify_deadline_ms = 150;
            s.answer_deadline_ms = 150;
            s.password_deadline_ms = 300;
        }
    })
    .await
    .unwrap();
    assert!(
        portal.url.starts_with("https://localhost:"),
        "{}",
        portal.url
    );
    let mut cfg = AdConfig::new(d.urls(), d.get("REKEY_DEV_SVC_DN"));
    cfg.ca_file = Some(d.get("REKEY_DEV_CA_FILE").into());
    cfg.bind_password_file = Some(d.get("REKEY_DEV_SVC_PASSWORD_FILE").into());
    let ad = ActiveDirectory::connect(&cfg).await.unwrap();
    let u = d.staff_user("https").await;
    let address = rekey_e2e::portal::enroll(&portal, &ad, &u).await;

    // Without the dev CA the browser refuses the site (Chromium's interstitial, no portal):
    // nothing below passes by accident.
    let untrusting = Browser::start().await;
    untrusting.goto(&format!("{}/", portal.url)).await.unwrap();
    let text = untrusting
        .client()
        .execute(
            "return document.body ? document.body.innerText : ''",
            vec![],
        )
        .await
        .unwrap();
    let text = text.as_str().unwrap_or_default();
    assert!(text.contains("ERR_CERT_AUTHORITY_INVALID"), "{text}");
    assert!(!untrusting.exists("ul.menu").await.unwrap());
    untrusting.screenshot("https-00-untrusted").await.unwrap();
    drop(untrusting);

    let b = Browser::start_with(Options {
        trust_ca: Some(dev_ca(&d)),
        ..Options::default()
    })
    .await;
    b.goto(&format!("{}/", portal.url)).await.unwrap();
    b.wait_for("ul.menu", WAIT).await.unwrap();
    let url = b.current_url().await.unwrap();
    assert_eq!(url.scheme(), "https");
    let secure = b
        .client()
        .execute("return [location.protocol, window.isSecureContext]", vec![])
        .await
        .unwrap();
    assert_eq!(secure, serde_json::json!(["https:", true]));
    b.screenshot("https-01-start").await.unwrap();

    // Forgot password over HTTPS: identify, the code from the real SMTP server, a new password.
    b.click("a[href='/reset']").await.unwrap();
    b.wait_for("#username", WAIT).await.unwrap();
    b.fill("#username", &u.sam).await.unwrap();
    b.submit("button[type=submit]").await.unwrap();
    b.wait_for("#code", WAIT).await.unwrap();
    b.screenshot("https-02-reset-code").await.unwrap();
    let mail = sink.wait_for(&address, WAIT).await;
    let code = mail
        .body
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no code in {:?}", mail.body))
        .to_owned();
    b.fill("#code", &code).await.unwrap();
    b.submit("button[type=submit]").await.unwrap();
    b.wait_for("#new_password", WAIT).await.unwrap();
    let new = format!("Quiet-Lantern-{}-Ok", std::process::id());
    b.fill("#new_password", &new).await.unwrap();
    b.fill("#confirm_password", &new).await.unwrap();
    b.submit("button[type=submit]").await.unwrap();
    b.wait_for("#result", WAIT).await.unwrap();
    assert_eq!(
        b.text("#result").await.unwrap(),
        "Your password was reset. Sign in with the new password."
    );
    b.screenshot("https-03-reset-done").await.unwrap();
    assert_eq!(b.current_url().await.unwrap().scheme(), "https");
    let cookies = b.cookies().await.unwrap();
    assert!(cookies.iter().any(|c| c.name.starts_with("__Host-")));
    for c in cookies.iter().filter(|c| c.name.starts_with("__Host-")) {
        assert!(c.secure && c.http_only && c.path == "/", "{c:?}");
    }
    assert_eq!(d.bind(&u.dn, &new).await.0, 0, "the new password landed");
    // The "was reset" notice links to the https:// portal (public_base_url).
    let notice = sink.wait_for(&address, WAIT).await;
    assert!(notice.body.contains(&portal.url), "{}", notice.body);

    // The client address reached the handlers through TLS (per-IP limits, audit).
    let records = portal.store.audit_after(0, 10_000).await.unwrap();
    let ours: Vec<_> = records
        .iter()
        .filter(|r| r.body.contains(&format!("\"target_sam\":\"{}\"", u.sam)))
        .collect();
    assert!(!ours.is_empty(), "no audit record for {}", u.sam);
    for r in ours {
        assert!(r.body.contains("\"client_ip\":\"127.0.0.1\""), "{}", r.body);
    }
}

#[tokio::test]
async fn a_changed_certificate_file_is_served_without_a_restart_and_a_bad_one_is_not() {
    let d = dev();
    let sink = SmtpSink::start();
    let dir = Dir::new("files");
    let files = copy_dev_pair(&d, &dir);
    let poll = Duration::from_millis(200);
    let portal =
        rekey_e2e::portal::start_tls(&d, &sink.mailer_config(), files.clone(), poll, |_| {})
            .await
            .unwrap();
    let dev_ca_pem = std::fs::read_to_string(dev_ca(&d)).unwrap();
    let next = throwaway_ca();
    let roots = [dev_ca_pem.as_str(), next.ca_pem.as_str()];
    let first = der(&dev_pair(&d).cert);

    let (cert, head) = fetch(portal.port, &roots, "/").await;
    assert_eq!(cert, first);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("strict-transport-security: max-age=63072000"),
        "{head}"
    );

    // A broken key (a renewal gone wrong): logged, the old certificate stays, nothing stops.
    std::fs::write(&files.key, "-----BEGIN PRIVATE KEY-----\nnot base64\n").unwrap();
    tokio::time::sleep(poll * 5).await;
    let (cert, head) = fetch(portal.port, &roots, "/healthz").await;
    assert_eq!(cert, first, "a bad key replaced the certificate");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // The new certificate with the old key: does not belong together, refused the same way.
    std::fs::write(&files.cert, &next.cert_pem).unwrap();
    std::fs::copy(dev_pair(&d).key, &files.key).unwrap();
    tokio::time::sleep(poll * 5).await;
    assert_eq!(fetch(portal.port, &roots, "/healthz").await.0, first);

    // The renewal completes: new connections get the new certificate, same listener.
    std::fs::write(&files.key, &next.key_pem).unwrap();
    let want = CertificateDer::from_pem_slice(next.cert_pem.as_bytes()).unwrap();
    wait_for_cert(portal.port, &roots, &want, WAIT).await;
    assert_eq!(portal.tls.as_ref().unwrap().certificate(), Some(want));
}

#[tokio::test]
async fn sighup_reloads_the_certificate() {
    let d = dev();
    let sink = SmtpSink::start();
    let dir = Dir::new("sighup");
    let files = copy_dev_pair(&d, &dir);
    // No polling within the test: only the signal can reload.
    let portal = rekey_e2e::portal::start_tls(
        &d,
        &sink.mailer_config(),
        files.clone(),
        Duration::from_secs(3600),
        |_| {},
    )
    .await
    .unwrap();
    let dev_ca_pem = std::fs::read_to_string(dev_ca(&d)).unwrap();
    let next = throwaway_ca();
    let roots = [dev_ca_pem.as_str(), next.ca_pem.as_str()];
    let first = der(&dev_pair(&d).cert);
    // Answered: the server runs, so its SIGHUP handler is installed (SIGHUP would end the
    // test process otherwise).
    assert_eq!(fetch(portal.port, &roots, "/healthz").await.0, first);

    std::fs::write(&files.cert, &next.cert_pem).unwrap();
    std::fs::write(&files.key, &next.key_pem).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fetch(portal.port, &roots, "/healthz").await.0, first);

    nix::sys::signal::raise(nix::sys::signal::Signal::SIGHUP).unwrap();
    let want = CertificateDer::from_pem_slice(next.cert_pem.as_bytes()).unwrap();
    wait_for_cert(portal.port, &roots, &want, Duration::from_secs(5)).await;
}
