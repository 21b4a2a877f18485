//! Mail leaves through an outbox in the store, never inside the request (invariant 9): a slow
//! or failing relay gives every account class the same answer at the same time, and nothing is
//! lost when the relay or the process stops. A worker (`Engine::deliver_outbox`) sends what is
//! due, with retries and backoff; every replica may run one (claims are atomic).
//!
//! Bodies carry one-time codes, so the payload is sealed (AES-256-GCM, a key derived from the
//! server secret that never enters the database): a database reader learns no code.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::trail::Trail;
use super::{Engine, EngineError, EngineResult, RequestContext};
use crate::account::Guid;
use crate::audit::{Actor, Operation};
use crate::notify::{Email, NotifyError, Sms, SmsError};
use crate::store::{OutboxItem, OutboxKind};

/// How long a claimed item is left to its worker before another may retry it (seconds).
const LEASE: i64 = 60;
/// Items claimed per round.
const BATCH: u32 = 20;

#[derive(Serialize, Deserialize)]
struct Sealed {
    to: String,
    subject: String,
    body: String,
    /// A text message to the number `to` (the subject is unused), not a mail.
    #[serde(default)]
    sms: bool,
}

/// What an outbox "mail" item carries: a mail or a text message.
enum Message {
    Email(Email),
    Sms(Sms),
}

impl Message {
    /// The metric's channel label.
    fn channel(&self) -> &'static str {
        match self {
            Self::Email(_) => "email",
            Self::Sms(_) => "sms",
        }
    }
}

/// Seconds before attempt `n + 1` after `n` failed attempts: 5, 10, 20, … at most 300.
pub(crate) fn backoff(attempts: u32) -> i64 {
    (5_i64 << attempts.saturating_sub(1).min(6)).min(300)
}

impl Engine {
    /// The key queued items were sealed with before envelopes (derived from the one-time-code
    /// key); still read so that an upgrade delivers what was queued before it.
    fn legacy_outbox_cipher(&self) -> Aes256Gcm {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.inner.otp_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(b"rekey outbox seal v1");
        Aes256Gcm::new(&mac.finalize().into_bytes())
    }

    fn seal(&self, id: &str, sealed: &Sealed) -> Vec<u8> {
        let plain = Zeroizing::new(serde_json::to_vec(sealed).unwrap_or_default());
        self.seal_bytes(id, &plain)
    }

    /// Seal `plain` for the outbox item `id` (an envelope under the current key, bound to the
    /// item id as associated data).
    pub(crate) fn seal_bytes(&self, id: &str, plain: &[u8]) -> Vec<u8> {
        crate::keyring::seal(
            &self.inner.keys.current(),
            self.inner.random.as_ref(),
            id.as_bytes(),
            plain,
        )
    }

    /// The item's payload, if it unseals under this server's keys.
    pub(crate) fn unseal_bytes(&self, item: &OutboxItem) -> Option<Zeroizing<Vec<u8>>> {
        if crate::keyring::envelope_key_id(&item.payload).is_some() {
            match crate::keyring::open(
                self.inner.keys.as_ref(),
                "",
                item.id.as_bytes(),
                &item.payload,
            ) {
                Ok(plain) => return Some(plain),
                Err(crate::keyring::SealError::MissingKey(_)) => return None,
                Err(crate::keyring::SealError::Damaged) => {}
            }
        }
        let (nonce, sealed) = item.payload.split_at_checked(12)?;
        self.legacy_outbox_cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: item.id.as_bytes(),
                },
            )
            .ok()
            .map(Zeroizing::new)
    }

    /// The item is an envelope under a key this server does not have.
    fn key_missing(&self, item: &OutboxItem) -> bool {
        crate::keyring::envelope_key_id(&item.payload)
            .is_some_and(|id| self.inner.keys.get(id).is_none())
    }

    fn unseal(&self, item: &OutboxItem) -> Option<Message> {
        let plain = self.unseal_bytes(item)?;
        let s: Sealed = serde_json::from_slice(&plain).ok()?;
        Some(if s.sms {
            Message::Sms(Sms {
                to: s.to,
                body: s.body,
            })
        } else {
            Message::Email(Email {
                to: s.to,
                subject: s.subject,
                body: s.body,
            })
        })
    }

    /// Queue a text message (its budgets were reserved by the caller), valid for `ttl` seconds.
    pub(crate) async fn queue_sms(&self, user: &Guid, sms: &Sms, ttl: i64) -> EngineResult<()> {
        let sealed = Sealed {
            to: sms.to.clone(),
            subject: String::new(),
            body: sms.body.clone(),
            sms: true,
        };
        self.enqueue_message(user, &sealed, ttl).await
    }

    async fn enqueue_message(&self, user: &Guid, sealed: &Sealed, ttl: i64) -> EngineResult<()> {
        let now = self.now();
        let id = crate::clock::token(self.inner.random.as_ref(), 16);
        let item = OutboxItem {
            payload: self.seal(&id, sealed),
            id,
            kind: OutboxKind::Mail,
            user: Some(*user),
            not_before: now,
            expires_at: now + ttl,
            attempts: 0,
        };
        self.inner.store.enqueue(&item).await?;
        Ok(())
    }

    async fn send(&self, message: &Message) -> Result<(), NotifyError> {
        match message {
            Message::Email(mail) => self.inner.mailer.send(mail).await,
            Message::Sms(sms) => match &self.inner.sms {
                None => Err(NotifyError::Refused("SMS is not configured".into())),
                Some(gateway) => gateway.send(sms).await.map_err(|e| match e {
                    SmsError::Unavailable(why) | SmsError::Throttled(why) => {
                        NotifyError::Unavailable(why)
                    }
                    SmsError::Refused(why) => NotifyError::Refused(why),
                }),
            },
        }
    }

    /// Queue a mail for `user` within the per-user budget (invariant 27), valid for `ttl`
    /// seconds. Over budget it is silently not queued (the page is the same either way).
    pub(crate) async fn queue_mail(&self, user: &Guid, mail: &Email, ttl: i64) -> EngineResult<()> {
        self.queue_mail_in(user, mail, ttl, "mail").await
    }

    /// A notice ("your password was reset", "your methods changed"): its own per-user budget,
    /// so anonymous identify requests spending the code budget cannot silence it.
    pub(crate) async fn queue_notice(&self, user: &Guid, mail: &Email) -> EngineResult<()> {
        self.queue_mail_in(user, mail, super::reset::NOTICE_TTL, "notice")
            .await
    }

    async fn queue_mail_in(
        &self,
        user: &Guid,
        mail: &Email,
        ttl: i64,
        budget: &str,
    ) -> EngineResult<()> {
        let now = self.now();
        let sent = self
            .inner
            .store
            .hit(&format!("{budget}:{user}"), now, 3600)
            .await?;
        if sent > self.inner.config.emails_per_user_per_hour {
            return Ok(());
        }
        let sealed = Sealed {
            to: mail.to.clone(),
            subject: mail.subject.clone(),
            body: mail.body.clone(),
            sms: false,
        };
        self.enqueue_message(user, &sealed, ttl).await
    }

    /// Start delivering what was queued: after the answer when the engine has a spawner,
    /// else now (tests). Failures stay queued for the next round.
    pub(crate) async fn kick_outbox(&self) {
        match self.background.clone() {
            Some(spawn) => {
                let engine = self.clone();
                spawn.spawn(Box::pin(async move {
                    let _ = engine.deliver_outbox().await;
                }));
            }
            None => {
                let _ = self.deliver_outbox().await;
            }
        }
    }

    /// Work every due item once (mail, and zone work: see `jobs`); returns how many mails were
    /// delivered. `rekey serve` runs this every
    /// few seconds besides the kick after each request. A relay that is down (4xx, no answer)
    /// gets the item again later with backoff until it expires; a permanent refusal (5xx, bad
    /// address), an expiry or a payload that does not unseal ends the item with an audit record.
    pub async fn deliver_outbox(&self) -> EngineResult<usize> {
        let now = self.now();
        let items = self.inner.store.claim(now, LEASE, BATCH).await?;
        let mut sent = 0;
        for item in items {
            match item.kind {
                OutboxKind::Mail => {}
                OutboxKind::Landing => {
                    self.continue_landing(&item).await?;
                    continue;
                }
                OutboxKind::Proof => {
                    self.continue_proof(&item).await?;
                    continue;
                }
            }
            let why = if item.expires_at <= now {
                "expired"
            } else if let Some(message) = self.unseal(&item) {
                let channel = message.channel();
                let outcome = self.send(&message).await;
                crate::telemetry::message(channel, outcome.is_ok());
                match outcome {
                    Ok(()) => {
                        self.inner.store.finish(&item.id, item.attempts).await?;
                        sent += 1;
                        continue;
                    }
                    Err(NotifyError::Unavailable(_)) => {
                        let at = now + backoff(item.attempts);
                        if at < item.expires_at {
                            self.inner.store.retry(&item.id, item.attempts, at).await?;
                            continue;
                        }
                        "relay_unavailable"
                    }
                    Err(NotifyError::Refused(_) | NotifyError::Address(_)) => "refused",
                }
            } else if self.key_missing(&item) {
                // Sealed under a key this replica does not have (yet): another replica, or
                // this one after its key file is restored, delivers it; never given up early.
                let at = now + backoff(item.attempts);
                if at < item.expires_at {
                    self.inner.store.retry(&item.id, item.attempts, at).await?;
                    continue;
                }
                "key_missing"
            } else {
                "unsealable"
            };
            if self.inner.store.finish(&item.id, item.attempts).await? {
                self.mail_given_up(&item, why).await?;
            }
        }
        Ok(sent)
    }

    async fn mail_given_up(&self, item: &OutboxItem, why: &str) -> EngineResult<()> {
        let ctx = RequestContext {
            support_id: self.support_id(),
            actor: Actor::System,
            ..RequestContext::default()
        };
        let mut trail = Trail::new(Operation::Notify);
        trail.target_guid(item.user.as_ref());
        trail.note(why);
        match self.record::<()>(&ctx, trail, Err(EngineError::Mail)).await {
            // The record says the mail failed; only a failed append is an error here.
            Ok(()) | Err(EngineError::Mail) => Ok(()),
            Err(other) => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_grows_and_caps() {
        let b: Vec<i64> = (1..=9).map(super::backoff).collect();
        assert_eq!(b, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(super::backoff(0), 5);
    }
}
