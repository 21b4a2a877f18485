//! `SmtpMailer`: `rekey_core::notify::Mailer` over SMTP with lettre's client (tokio, rustls + ring).
//!
//! lettre 0.11.23's pooled transport never sets `TCP_NODELAY`, which cost every message ~40 ms
//! (a delayed ACK; fixed upstream in lettre PR #1159, not released yet), and it takes no socket of
//! ours. So the socket, the TLS wrapper for SMTPS and a small pool of idle connections are ours
//! ([`relay`]); lettre's `AsyncSmtpConnection` speaks SMTP, STARTTLS and AUTH over them.
//!
//! Every send runs to completion in its own task under the deadline `smtp.timeout_ms`: a caller
//! that gives up (a dropped request) does not cut a connection off mid-command. A clean send parks
//! its connection for the next mail; a failed one closes it. A send that misses the deadline
//! retires the whole pool: the next send connects afresh.

mod relay;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue, MIME_VERSION_1_0};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use rekey_core::BoxFuture;
use rekey_core::notify::{Email, Mailer, NotifyError};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::runtime::Handle;
use tracing::{debug, warn};

use self::relay::{Pool, Relay, Security};
use crate::config::{SmtpConfig, TlsMode};
use crate::{SetupError, mask_email};

/// Sends plain-text UTF-8 mail through one configured relay.
///
/// Build it once (at start) and share it: connections to the relay are pooled and reused. Sends
/// must run inside a Tokio runtime.
pub struct SmtpMailer {
    from: Mailbox,
    /// Right-hand side of Message-IDs: the sender's domain.
    id_domain: String,
    timeout: Duration,
    /// `host:port`, for messages.
    name: String,
    relay: Arc<Relay>,
}

impl SmtpMailer {
    /// Check the settings, load the password and the trusted CA. Opens no connection: the relay
    /// may be down at start; sends then fail with `NotifyError::Unavailable`.
    ///
    /// # Errors
    /// `SetupError::Config` naming the offending `smtp.*` key, or `SetupError::Tls`.
    pub fn new(config: &SmtpConfig) -> Result<Self, SetupError> {
        let checked = config.check()?;
        let host = config
            .host
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let security = match config.tls {
            TlsMode::None => {
                if !config.host_is_loopback() {
                    warn!(
                        host,
                        "smtp.tls = \"none\": mail (one-time codes included) travels unencrypted \
                         to a relay that is not on this host"
                    );
                }
                if config.ca_file.is_some() {
                    warn!("smtp.ca_file is ignored: smtp.tls is \"none\"");
                }
                Security::None
            }
            TlsMode::Starttls => Security::Starttls(tls_parameters(&host, config)?),
            TlsMode::Tls => Security::Implicit(tls_parameters(&host, config)?),
        };
        let id_domain = checked.from.email.domain().to_owned();
        debug!(host, port = checked.port, tls = ?config.tls, "mail relay configured");
        Ok(Self {
            from: checked.from,
            id_domain,
            timeout: checked.timeout,
            name: format!("{host}:{}", checked.port),
            relay: Arc::new(Relay {
                host,
                port: checked.port,
                security,
                credentials: checked
                    .credentials
                    .map(|(user, password)| Credentials::new(user, password)),
                hello: ClientId::default(),
                timeout: checked.timeout,
                idle: Pool::for_relay(),
            }),
        })
    }

    /// Reach the relay without sending mail (for `rekey doctor`): connect, EHLO, STARTTLS or
    /// TLS as configured, AUTH when credentials are set, then NOOP and QUIT, on a connection of
    /// its own (the pool is not touched). Bounded by `smtp.timeout_ms`.
    ///
    /// # Errors
    /// `Unavailable` (connect, TLS, timeout, a 4xx answer) or `Refused` (a 5xx answer, e.g. a
    /// rejected login).
    pub async fn probe(&self) -> Result<(), NotifyError> {
        let check = async {
            let mut conn = self.relay.open().await?;
            let answered = conn.test_connected().await;
            // Politeness only: the answer to QUIT changes nothing.
            let _ = conn.quit().await;
            Ok(answered)
        };
        match tokio::time::timeout(self.timeout, check).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(NotifyError::Unavailable(format!(
                "{}: the relay did not answer NOOP",
                self.name
            ))),
            Ok(Err(NotifyError::Refused(t))) => {
                Err(NotifyError::Refused(format!("{}: {t}", self.name)))
            }
            Ok(Err(NotifyError::Unavailable(t) | NotifyError::Address(t))) => {
                Err(NotifyError::Unavailable(format!("{}: {t}", self.name)))
            }
            Err(_) => Err(NotifyError::Unavailable(format!(
                "{}: no answer within {} ms",
                self.name,
                self.timeout.as_millis()
            ))),
        }
    }
    /// The message as it goes on the wire: From, To, Subject, Date, Message-ID, `MIME-Version`,
    /// `Content-Type: text/plain; charset=utf-8` (lettre picks the transfer encoding),
    /// `Auto-Submitted: auto-generated`, `X-Auto-Response-Suppress: All`.
    fn message(&self, mail: &Email) -> Result<(Message, String), NotifyError> {
        let to: Mailbox = mail.to.trim().parse().map_err(|e| {
            NotifyError::Address(format!(
                "{} is not a mail address: {e}",
                mask_email(&mail.to)
            ))
        })?;
        let domain = to.email.domain().to_owned();
        let message_id = format!(
            "<{:016x}{:016x}.rekey@{}>",
            fastrand::u64(..),
            fastrand::u64(..),
            self.id_domain
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(one_line(&mail.subject))
            .message_id(Some(message_id))
            .header(AutoSubmitted)
            .header(AutoResponseSuppress)
            .header(MIME_VERSION_1_0)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| NotifyError::Address(format!("{}: {e}", mask_email(&mail.to))))?;
        Ok((message, domain))
    }
}

impl Mailer for SmtpMailer {
    fn send<'a>(&'a self, mail: &'a Email) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(async move {
            let (message, domain) = self.message(mail)?;
            if Handle::try_current().is_err() {
                return Err(NotifyError::Unavailable(
                    "the mailer must be used inside a Tokio runtime".into(),
                ));
            }
            let relay = Arc::clone(&self.relay);
            let deadline = self.timeout;
            let started = Instant::now();
            debug!(domain, "sending mail");
            // Its own task: a caller that gives up must not cut a connection off mid-command.
            let task = tokio::spawn(async move {
                let generation = relay.idle.generation();
                match tokio::time::timeout(deadline, deliver(&relay, generation, &message)).await {
                    Ok(result) => result,
                    Err(_) => {
                        // The connection in use is dropped with the send; the idle ones go too.
                        relay.idle.retire(generation);
                        Err(NotifyError::Unavailable(format!(
                            "the mail relay did not answer within {} ms",
                            deadline.as_millis()
                        )))
                    }
                }
            });
            let outcome = task.await.unwrap_or_else(|e| {
                Err(NotifyError::Unavailable(format!(
                    "the mail task failed: {e}"
                )))
            });
            let elapsed_ms = started.elapsed().as_millis();
            match &outcome {
                Ok(()) => debug!(domain, elapsed_ms, "mail accepted by the relay"),
                Err(error) => debug!(domain, elapsed_ms, %error, "mail not sent"),
            }
            outcome
        })
    }
}

/// One message over a pooled (or new) connection; the connection is parked again only after the
/// relay accepted the message.
async fn deliver(relay: &Relay, generation: u64, message: &Message) -> Result<(), NotifyError> {
    let mut conn = relay.connection().await?;
    match conn.send(message.envelope(), &message.formatted()).await {
        Ok(_) => {
            if let Some(mut extra) = relay.idle.put(generation, conn) {
                let _ = extra.quit().await;
            }
            Ok(())
        }
        Err(e) => {
            // lettre already sent QUIT and closed it after an SMTP error; not after its own checks.
            if !conn.has_broken() {
                conn.abort().await;
            }
            Err(classify(&e))
        }
    }
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("relay", &self.name)
            .field("from", &self.from.to_string())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// 5xx → refused for good; everything else (connect, TLS, timeouts, 4xx, broken answers) →
/// the relay is unavailable and nothing certain was delivered.
fn classify(error: &SmtpError) -> NotifyError {
    if error.is_permanent() {
        NotifyError::Refused(error.to_string())
    } else {
        NotifyError::Unavailable(error.to_string())
    }
}

/// A subject is one header line: control characters (CR, LF, tabs) become spaces.
fn one_line(subject: &str) -> String {
    subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn tls_parameters(host: &str, config: &SmtpConfig) -> Result<TlsParameters, SetupError> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(path) = &config.ca_file {
        let bad = |why: String| SetupError::Config {
            key: "smtp.ca_file",
            why: format!("{}: {why}", path.display()),
        };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no PEM certificate in it".into()));
        }
        for cert in certs {
            let cert = Certificate::from_der(cert.to_vec()).map_err(|e| bad(e.to_string()))?;
            builder = builder.add_root_certificate(cert);
        }
        // Only the configured CA, like the LDAPS side.
        builder = builder.certificate_store(CertificateStore::None);
    }
    builder
        .build_rustls()
        .map_err(|e| SetupError::Tls(e.to_string()))
}

/// `Auto-Submitted: auto-generated` (RFC 3834): no vacation replies, no bounces to it.
#[derive(Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

/// `X-Auto-Response-Suppress: All`: the same request in Exchange's dialect.
#[derive(Clone)]
struct AutoResponseSuppress;

impl Header for AutoResponseSuppress {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Auto-Response-Suppress")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "All".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailer() -> SmtpMailer {
        let mut config = SmtpConfig::new("127.0.0.1", "Rekey <rekey@corp.example.com>");
        config.tls = TlsMode::None;
        config.port = Some(1);
        SmtpMailer::new(&config).unwrap()
    }

    fn email(to: &str, subject: &str) -> Email {
        Email {
            to: to.into(),
            subject: subject.into(),
            body: "Your code: 123456".into(),
        }
    }

    #[test]
    fn message_has_the_headers() {
        let (message, domain) = mailer()
            .message(&email("alice@corp.example.com", "Your code"))
            .unwrap();
        assert_eq!(domain, "corp.example.com");
        let wire = String::from_utf8(message.formatted()).unwrap();
        for header in [
            "From: Rekey <rekey@corp.example.com>\r\n",
            "To: alice@corp.example.com\r\n",
            "Subject: Your code\r\n",
            "Date: ",
            "Auto-Submitted: auto-generated\r\n",
            "X-Auto-Response-Suppress: All\r\n",
            "Content-Type: text/plain; charset=utf-8\r\n",
            "MIME-Version: 1.0\r\n",
        ] {
            assert!(wire.contains(header), "{header:?} missing in\n{wire}");
        }
        assert!(wire.contains(".rekey@corp.example.com>\r\n"), "{wire}");
    }

    #[test]
    fn subject_cannot_inject_headers() {
        let (message, _) = mailer()
            .message(&email(
                "alice@corp.example.com",
                "Hi\r\nBcc: eve@evil.example",
            ))
            .unwrap();
        let wire = String::from_utf8(message.formatted()).unwrap();
        assert!(!wire.contains("\r\nBcc:"), "{wire}");
    }

    #[test]
    fn bad_recipients_are_address_errors_and_masked() {
        for to in [
            "",
            "alice",
            "alice@corp.example.com\r\nBcc: eve@evil.example",
            "a@x.com, b@y.com",
        ] {
            match mailer().message(&email(to, "x")) {
                Err(NotifyError::Address(why)) => {
                    assert!(!why.contains("alice@corp"), "unmasked: {why}");
                }
                other => panic!("{to:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn debug_shows_no_secrets() {
        let shown = format!("{:?}", mailer());
        assert!(shown.contains("127.0.0.1:1"), "{shown}");
    }
}

/// `probe` against a real SMTP server (aiosmtpd): plain, STARTTLS and SMTPS, no mail sent.
#[cfg(all(test, feature = "test-support"))]
mod probe_tests {
    use super::*;
    use crate::testing::SmtpSink;

    #[tokio::test]
    async fn probe_reaches_the_relay_in_every_tls_mode_and_sends_nothing() {
        for sink in [
            SmtpSink::start(),
            SmtpSink::start_starttls(),
            SmtpSink::start_smtps(),
        ] {
            let config = sink.mailer_config();
            let mailer = SmtpMailer::new(&config).unwrap();
            mailer
                .probe()
                .await
                .unwrap_or_else(|e| panic!("{:?}: {e}", config.tls));
            assert!(sink.messages().is_empty());
        }
    }

    #[tokio::test]
    async fn probe_fails_without_a_relay_or_with_the_wrong_tls() {
        let mut config = SmtpConfig::new("127.0.0.1", "Rekey <rekey@corp.example.com>");
        config.tls = TlsMode::None;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        config.port = Some(port);
        let err = SmtpMailer::new(&config).unwrap().probe().await.unwrap_err();
        assert!(matches!(err, NotifyError::Unavailable(_)), "{err}");
        // STARTTLS required, but the relay offers none.
        let sink = SmtpSink::start();
        let mut config = sink.mailer_config();
        config.tls = TlsMode::Starttls;
        config.host = "localhost".into();
        assert!(SmtpMailer::new(&config).unwrap().probe().await.is_err());
    }
}
