//! The in-memory store: the same contract as the SQL store. `rekey-store`'s contract suite runs
//! every test body that only uses the `Store` trait on SQLite, PostgreSQL and this fake, so they
//! cannot drift. Each method runs under one mutex, which makes it atomic the way one statement or
//! one locked transaction is in the database; two handles on one `Arc<MemStore>` are two replicas.
//!
//! What it mirrors of the SQL schema: flow, challenge and outbox ids are unique (a duplicate is a
//! `Database` error); a challenge needs its flow and goes with it; one challenge per flow and
//! purpose; rate events carry ids from one counter, never reused; `hit` and `reserve` prune a key's
//! events like the SQL store.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::account::Guid;
use crate::audit::{self, AuditRecord};
use crate::landing::BoxFuture;
use crate::store::{
    Challenge, Enrollment, FlowRecord, MethodKind, OutboxItem, Store, StoreError, StoreResult,
    UnixTime,
};

/// One rate-limit event (a `hit` or a reservation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateEvent {
    pub id: i64,
    pub key: String,
    pub at: UnixTime,
}

/// The tables. Public so tests can seed or inspect them; writes through [`Store`] keep them
/// consistent, direct writes are the test's responsibility.
#[derive(Default)]
pub struct Mem {
    pub flows: HashMap<String, FlowRecord>,
    pub enrollments: Vec<Enrollment>,
    /// At most one per `(flow_id, purpose)`; ids unique; each one's flow exists.
    pub challenges: Vec<Challenge>,
    pub rate_events: Vec<RateEvent>,
    /// The last rate event id handed out.
    pub last_rate_event: i64,
    pub locks: HashMap<String, UnixTime>,
    /// In enqueue order ("oldest first" for `claim`); ids unique.
    pub outbox: Vec<OutboxItem>,
    pub audit: Vec<AuditRecord>,
}

#[derive(Default)]
pub struct MemStore(pub Mutex<Mem>);

pub(crate) fn ready<'a, T: Send + 'a>(v: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(v))
}

/// A count as the SQL store reports it (saturating).
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn duplicate(what: &str) -> StoreError {
    StoreError::Database(format!("unique constraint violated: {what}"))
}

impl MemStore {
    /// How long rate-limit events are kept at least: the value of
    /// `rekey_store::RATE_EVENT_RETENTION` (the contract suite checks that they agree).
    pub const RATE_EVENT_RETENTION: i64 = 7 * 24 * 3600;

    /// Run `f` on the tables under the lock (a panicked test does not poison the others).
    pub fn with<T>(&self, f: impl FnOnce(&mut Mem) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Mem {
    /// Events of `key` in `(now - window, now]`.
    fn count_events(&self, key: &str, now: UnixTime, window: i64) -> u32 {
        let since = now.saturating_sub(window);
        count(
            self.rate_events
                .iter()
                .filter(|e| e.key == key && e.at > since && e.at <= now)
                .count(),
        )
    }

    /// What `hit` and `reserve` do before counting: drop the key's events that no window needs.
    fn prune_events(&mut self, key: &str, now: UnixTime, window: i64) {
        let horizon = now.saturating_sub(window.max(MemStore::RATE_EVENT_RETENTION));
        self.rate_events.retain(|e| e.key != key || e.at > horizon);
    }

    fn record_event(&mut self, key: &str, now: UnixTime) -> i64 {
        self.last_rate_event += 1;
        self.rate_events.push(RateEvent {
            id: self.last_rate_event,
            key: key.to_owned(),
            at: now,
        });
        self.last_rate_event
    }

    /// Challenges die with their flow (`ON DELETE CASCADE`).
    fn drop_orphan_challenges(&mut self) {
        let flows = &self.flows;
        self.challenges.retain(|c| flows.contains_key(&c.flow_id));
    }
}

impl Store for MemStore {
    fn insert_flow<'a>(&'a self, flow: &'a FlowRecord) -> BoxFuture<'a, StoreResult<()>> {
        ready(self.with(|m| {
            if m.flows.contains_key(&flow.id) {
                return Err(duplicate("flows.id"));
            }
            m.flows.insert(flow.id.clone(), flow.clone());
            Ok(())
        }))
    }

    fn flow<'a>(
        &'a self,
        id: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, StoreResult<Option<FlowRecord>>> {
        ready(Ok(self.with(|m| {
            m.flows.get(id).filter(|f| now < f.expires_at).cloned()
        })))
    }

    /// Like the SQL `UPDATE`: state and expiry from `flow`, whatever the stored expiry.
    fn update_flow<'a>(&'a self, flow: &'a FlowRecord) -> BoxFuture<'a, StoreResult<bool>> {
        ready(Ok(self.with(|m| match m.flows.get_mut(&flow.id) {
            Some(f) if f.version == flow.version => {
                f.state.clone_from(&flow.state);
                f.expires_at = flow.expires_at;
                f.version += 1;
                true
            }
            _ => false,
        })))
    }

    fn delete_flow<'a>(&'a self, id: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        ready(Ok(self.with(|m| {
            let gone = m.flows.remove(id).is_some();
            m.drop_orphan_challenges();
            gone
        })))
    }

    fn delete_user_flows<'a>(&'a self, user: &'a Guid) -> BoxFuture<'a, StoreResult<u64>> {
        ready(Ok(self.with(|m| {
            let before = m.flows.len();
            m.flows.retain(|_, f| f.user.as_ref() != Some(user));
            m.drop_orphan_challenges();
            u64::try_from(before - m.flows.len()).unwrap_or(u64::MAX)
        })))
    }

    /// Ordered by method, like the SQL store.
    fn enrollments<'a>(&'a self, user: &'a Guid) -> BoxFuture<'a, StoreResult<Vec<Enrollment>>> {
        ready(Ok(self.with(|m| {
            let mut mine: Vec<Enrollment> = m
                .enrollments
                .iter()
                .filter(|e| e.user == *user)
                .cloned()
                .collect();
            mine.sort_by_key(|e| e.method.as_str());
            mine
        })))
    }

    fn upsert_enrollment<'a>(&'a self, e: &'a Enrollment) -> BoxFuture<'a, StoreResult<()>> {
        ready(self.with(|m| {
            let taken = e.lookup.is_some()
                && m.enrollments
                    .iter()
                    .any(|x| x.method == e.method && x.lookup == e.lookup && x.user != e.user);
            if taken {
                return Err(StoreError::Database("lookup key taken".into()));
            }
            match m
                .enrollments
                .iter_mut()
                .find(|x| x.user == e.user && x.method == e.method)
            {
                Some(x) => x.clone_from(e),
                None => m.enrollments.push(e.clone()),
            }
            Ok(())
        }))
    }

    fn enrollment_by_lookup<'a>(
        &'a self,
        method: MethodKind,
        lookup: &'a str,
    ) -> BoxFuture<'a, StoreResult<Option<Enrollment>>> {
        ready(Ok(self.with(|m| {
            m.enrollments
                .iter()
                .find(|x| x.method == method && x.lookup.as_deref() == Some(lookup))
                .cloned()
        })))
    }

    fn touch_enrollment<'a>(
        &'a self,
        user: &'a Guid,
        method: MethodKind,
        at: UnixTime,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        ready(Ok(self.with(|m| {
            m.enrollments
                .iter_mut()
                .find(|x| x.user == *user && x.method == method)
                .map(|x| x.last_used_at = Some(at))
                .is_some()
        })))
    }

    fn all_enrollments(&self) -> BoxFuture<'_, StoreResult<Vec<Enrollment>>> {
        ready(Ok(self.with(|m| {
            let mut all = m.enrollments.clone();
            all.sort_by(|a, b| (a.user, a.method.as_str()).cmp(&(b.user, b.method.as_str())));
            all
        })))
    }

    fn delete_enrollment<'a>(
        &'a self,
        user: &'a Guid,
        method: MethodKind,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        ready(Ok(self.with(|m| {
            let before = m.enrollments.len();
            m.enrollments
                .retain(|x| !(x.user == *user && x.method == method));
            before != m.enrollments.len()
        })))
    }

    /// The flow must exist (expired or not); the challenge's id must not belong to another
    /// flow or purpose.
    fn put_challenge<'a>(&'a self, c: &'a Challenge) -> BoxFuture<'a, StoreResult<()>> {
        ready(self.with(|m| {
            if !m.flows.contains_key(&c.flow_id) {
                return Err(StoreError::Database(
                    "foreign key violated: challenges.flow_id".into(),
                ));
            }
            let slot = |x: &Challenge| x.flow_id == c.flow_id && x.purpose == c.purpose;
            if m.challenges.iter().any(|x| x.id == c.id && !slot(x)) {
                return Err(duplicate("challenges.id"));
            }
            match m.challenges.iter_mut().find(|x| slot(x)) {
                Some(x) => x.clone_from(c),
                None => m.challenges.push(c.clone()),
            }
            Ok(())
        }))
    }

    fn challenge<'a>(
        &'a self,
        flow_id: &'a str,
        purpose: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, StoreResult<Option<Challenge>>> {
        ready(Ok(self.with(|m| {
            m.challenges
                .iter()
                .find(|c| c.flow_id == flow_id && c.purpose == purpose && now < c.expires_at)
                .cloned()
        })))
    }

    /// Counts on an expired challenge too (like the SQL `UPDATE … WHERE id`).
    fn fail_challenge<'a>(&'a self, id: &'a str) -> BoxFuture<'a, StoreResult<Option<u32>>> {
        ready(Ok(self.with(|m| {
            m.challenges.iter_mut().find(|c| c.id == id).map(|c| {
                c.failed_attempts = c.failed_attempts.saturating_add(1);
                c.failed_attempts
            })
        })))
    }

    fn consume_challenge<'a>(&'a self, id: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        ready(Ok(self.with(|m| {
            let before = m.challenges.len();
            m.challenges.retain(|c| c.id != id);
            before != m.challenges.len()
        })))
    }

    fn hit<'a>(
        &'a self,
        key: &'a str,
        now: UnixTime,
        window: i64,
    ) -> BoxFuture<'a, StoreResult<u32>> {
        ready(Ok(self.with(|m| {
            m.prune_events(key, now, window);
            m.record_event(key, now);
            m.count_events(key, now, window)
        })))
    }

    fn hits<'a>(
        &'a self,
        key: &'a str,
        now: UnixTime,
        window: i64,
    ) -> BoxFuture<'a, StoreResult<u32>> {
        ready(Ok(self.with(|m| m.count_events(key, now, window))))
    }

    fn reserve<'a>(
        &'a self,
        key: &'a str,
        now: UnixTime,
        window: i64,
        limit: u32,
    ) -> BoxFuture<'a, StoreResult<Option<i64>>> {
        ready(Ok(self.with(|m| {
            m.prune_events(key, now, window);
            (m.count_events(key, now, window) < limit).then(|| m.record_event(key, now))
        })))
    }

    fn release<'a>(&'a self, key: &'a str, id: i64) -> BoxFuture<'a, StoreResult<bool>> {
        ready(Ok(self.with(|m| {
            let before = m.rate_events.len();
            m.rate_events.retain(|e| !(e.id == id && e.key == key));
            before != m.rate_events.len()
        })))
    }

    fn lock<'a>(&'a self, key: &'a str, until: UnixTime) -> BoxFuture<'a, StoreResult<()>> {
        ready(Ok(self.with(|m| {
            let e = m.locks.entry(key.to_owned()).or_insert(until);
            *e = (*e).max(until);
        })))
    }

    fn locked_until<'a>(
        &'a self,
        key: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, StoreResult<Option<UnixTime>>> {
        ready(Ok(
            self.with(|m| m.locks.get(key).copied().filter(|u| now < *u))
        ))
    }

    fn append_audit<'a>(
        &'a self,
        event: &'a audit::AuditEvent,
    ) -> BoxFuture<'a, StoreResult<AuditRecord>> {
        ready(Ok(self.with(|m| {
            let (seq, prev) = m
                .audit
                .last()
                .map_or((1, audit::GENESIS), |r| (r.seq + 1, r.hash));
            let body = event.canonical();
            let r = AuditRecord {
                seq,
                hash: audit::chain_hash(&prev, seq, &body),
                body,
                prev_hash: prev,
            };
            m.audit.push(r.clone());
            r
        })))
    }

    fn enqueue<'a>(&'a self, item: &'a OutboxItem) -> BoxFuture<'a, StoreResult<()>> {
        ready(self.with(|m| {
            if m.outbox.iter().any(|i| i.id == item.id) {
                return Err(duplicate("outbox.id"));
            }
            m.outbox.push(item.clone());
            Ok(())
        }))
    }

    /// Oldest = enqueued first, like the SQL store's `ORDER BY seq`.
    fn claim<'a>(
        &'a self,
        now: UnixTime,
        lease: i64,
        limit: u32,
    ) -> BoxFuture<'a, StoreResult<Vec<OutboxItem>>> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        ready(Ok(self.with(|m| {
            m.outbox
                .iter_mut()
                .filter(|i| i.not_before <= now)
                .take(limit)
                .map(|i| {
                    i.not_before = now.saturating_add(lease);
                    i.attempts = i.attempts.saturating_add(1);
                    i.clone()
                })
                .collect()
        })))
    }

    fn finish<'a>(&'a self, id: &'a str, attempts: u32) -> BoxFuture<'a, StoreResult<bool>> {
        ready(Ok(self.with(|m| {
            let before = m.outbox.len();
            m.outbox.retain(|i| i.id != id || i.attempts != attempts);
            before != m.outbox.len()
        })))
    }

    fn retry<'a>(
        &'a self,
        id: &'a str,
        attempts: u32,
        at: UnixTime,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        ready(Ok(self.with(|m| {
            m.outbox
                .iter_mut()
                .find(|i| i.id == id && i.attempts == attempts)
                .map(|i| i.not_before = at)
                .is_some()
        })))
    }

    fn audit_after<'a>(
        &'a self,
        after: i64,
        limit: u32,
    ) -> BoxFuture<'a, StoreResult<Vec<AuditRecord>>> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        ready(Ok(self.with(|m| {
            m.audit
                .iter()
                .filter(|r| r.seq > after)
                .take(limit)
                .cloned()
                .collect()
        })))
    }
}
