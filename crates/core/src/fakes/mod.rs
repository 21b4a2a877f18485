//! In-memory fakes of every port and a fixed clock, for tests of the engine and of the web layer
//! (feature `fakes`). Not for production: nothing here persists or talks to anything.

#![allow(
    clippy::unit_arg,
    clippy::cast_possible_truncation,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::missing_panics_doc
)] // terse test doubles

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::account::Account;
use crate::account::{AccountState, Guid, Identifier, Sid};
use crate::audit::{self, AuditRecord};
use crate::clock::{Clock, Random};
use crate::engine::*;
use crate::landing::{BoxFuture, Diagnostic, Landed, Rejection, ResetOptions};
use crate::landing::{Directory, DirectoryError, LandingError, LandingZone, ZoneId};
use crate::notify::NotifyError;
use crate::notify::{Email, Mailer};
use crate::policy::PasswordPolicy;
use crate::policy::PolicySource;
use crate::secret::Password;
use crate::store::Store;
use crate::store::{Challenge, Enrollment, FlowRecord, MethodKind, StoreResult, UnixTime};

/// Drive a future whose fakes never pend.
pub fn run<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[derive(Default)]
pub struct Mem {
    pub flows: HashMap<String, FlowRecord>,
    pub enrollments: Vec<Enrollment>,
    pub challenges: Vec<Challenge>,
    pub hits: Vec<(String, UnixTime)>,
    pub locks: HashMap<String, UnixTime>,
    pub audit: Vec<AuditRecord>,
}

#[derive(Default)]
pub struct MemStore(pub Mutex<Mem>);

fn ready<'a, T: Send + 'a>(v: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(v))
}

impl MemStore {
    pub fn with<T>(&self, f: impl FnOnce(&mut Mem) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }
}

impl Store for MemStore {
    fn insert_flow<'a>(&'a self, flow: &'a FlowRecord) -> BoxFuture<'a, StoreResult<()>> {
        ready(Ok(self.with(|m| {
            m.flows.insert(flow.id.clone(), flow.clone());
        })))
    }
    fn flow<'a>(
        &'a self,
        id: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, StoreResult<Option<FlowRecord>>> {
        ready(Ok(self.with(|m| {
            m.flows.get(id).filter(|f| f.expires_at > now).cloned()
        })))
    }
    fn update_flow<'a>(&'a self, flow: &'a FlowRecord) -> BoxFuture<'a, StoreResult<bool>> {
        ready(Ok(self.with(|m| match m.flows.get_mut(&flow.id) {
            Some(f) if f.version == flow.version => {
                f.state = flow.state.clone();
                f.version += 1;
                true
            }
            _ => false,
        })))
    }
    fn delete_flow<'a>(&'a self, id: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        ready(Ok(self.with(|m| m.flows.remove(id).is_some())))
    }
    fn delete_user_flows<'a>(&'a self, user: &'a Guid) -> BoxFuture<'a, StoreResult<u64>> {
        ready(Ok(self.with(|m| {
            let before = m.flows.len();
            m.flows.retain(|_, f| f.user.as_ref() != Some(user));
            (before - m.flows.len()) as u64
        })))
    }
    fn enrollments<'a>(&'a self, user: &'a Guid) -> BoxFuture<'a, StoreResult<Vec<Enrollment>>> {
        ready(Ok(self.with(|m| {
            m.enrollments
                .iter()
                .filter(|e| e.user == *user)
                .cloned()
                .collect()
        })))
    }
    fn upsert_enrollment<'a>(&'a self, e: &'a Enrollment) -> BoxFuture<'a, StoreResult<()>> {
        ready(Ok(self.with(|m| {
            m.enrollments
                .retain(|x| !(x.user == e.user && x.method == e.method));
            m.enrollments.push(e.clone());
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
    fn put_challenge<'a>(&'a self, c: &'a Challenge) -> BoxFuture<'a, StoreResult<()>> {
        ready(Ok(self.with(|m| {
            m.challenges
                .retain(|x| !(x.flow_id == c.flow_id && x.purpose == c.purpose));
            m.challenges.push(c.clone());
        })))
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
                .find(|c| c.flow_id == flow_id && c.purpose == purpose && c.expires_at > now)
                .cloned()
        })))
    }
    fn fail_challenge<'a>(&'a self, id: &'a str) -> BoxFuture<'a, StoreResult<u32>> {
        ready(Ok(self.with(|m| {
            m.challenges.iter_mut().find(|c| c.id == id).map_or(0, |c| {
                c.failed_attempts += 1;
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
            m.hits.push((key.to_owned(), now));
            m.hits
                .iter()
                .filter(|(k, t)| k == key && *t > now - window)
                .count() as u32
        })))
    }
    fn hits<'a>(
        &'a self,
        key: &'a str,
        now: UnixTime,
        window: i64,
    ) -> BoxFuture<'a, StoreResult<u32>> {
        ready(Ok(self.with(|m| {
            m.hits
                .iter()
                .filter(|(k, t)| k == key && *t > now - window)
                .count() as u32
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
            self.with(|m| m.locks.get(key).copied().filter(|u| *u > now))
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
    fn audit_after<'a>(
        &'a self,
        after: i64,
        limit: u32,
    ) -> BoxFuture<'a, StoreResult<Vec<AuditRecord>>> {
        ready(Ok(self.with(|m| {
            m.audit
                .iter()
                .filter(|r| r.seq > after)
                .take(limit as usize)
                .cloned()
                .collect()
        })))
    }
}

/// Accounts by sAMAccountName; each carries its own policy.
#[derive(Default)]
pub struct FakeDirectory {
    pub accounts: Mutex<Vec<Account>>,
    pub passwords: Mutex<HashMap<String, String>>,
    pub threshold: u32,
    /// While set, every lookup fails as if no DC answered.
    pub down: std::sync::atomic::AtomicBool,
}

impl FakeDirectory {
    pub fn set<T>(&self, sam: &str, f: impl FnOnce(&mut Account) -> T) -> T {
        let mut all = self.accounts.lock().unwrap();
        f(all.iter_mut().find(|a| a.sam_account_name == sam).unwrap())
    }
}

impl Directory for FakeDirectory {
    fn find<'a>(
        &'a self,
        id: &'a Identifier,
    ) -> BoxFuture<'a, Result<Option<Account>, DirectoryError>> {
        if self.down.load(Ordering::Relaxed) {
            return ready(Err(DirectoryError::Unavailable(
                crate::landing::Diagnostic::new(None, "no DC answered"),
            )));
        }
        let Identifier::SamAccountName(sam) = id else {
            return ready(Ok(None));
        };
        ready(Ok(self
            .accounts
            .lock()
            .unwrap()
            .iter()
            .find(|a| &a.sam_account_name == sam)
            .cloned()))
    }
    fn by_guid<'a>(
        &'a self,
        guid: &'a Guid,
    ) -> BoxFuture<'a, Result<Option<Account>, DirectoryError>> {
        ready(Ok(self
            .accounts
            .lock()
            .unwrap()
            .iter()
            .find(|a| a.guid == *guid)
            .cloned()))
    }
    fn authenticate<'a>(
        &'a self,
        account: &'a Account,
        password: &'a Password,
    ) -> BoxFuture<'a, Result<bool, DirectoryError>> {
        let ok = self
            .passwords
            .lock()
            .unwrap()
            .get(&account.sam_account_name)
            .map(String::as_str)
            == Some(password.expose());
        if !ok {
            self.set(&account.sam_account_name, |a| a.state.bad_pwd_count += 1);
        }
        ready(Ok(ok))
    }
    fn effective_policy<'a>(
        &'a self,
        _: &'a Account,
    ) -> BoxFuture<'a, Result<PasswordPolicy, DirectoryError>> {
        ready(Ok(PasswordPolicy {
            source: PolicySource::Domain,
            min_length: 7,
            complexity: true,
            history_length: 24,
            min_age: Duration::ZERO,
            max_age: None,
            lockout_threshold: self.threshold,
            lockout_duration: Duration::from_secs(1800),
            lockout_window: Duration::from_secs(1800),
        }))
    }
}

/// Records what landed; can be told to refuse.
#[derive(Default)]
pub struct FakeZone {
    pub writes: Mutex<Vec<String>>,
    pub refuse: Mutex<Option<Rejection>>,
    pub directory: Option<Arc<FakeDirectory>>,
}

impl LandingZone for FakeZone {
    fn id(&self) -> ZoneId {
        ZoneId::ActiveDirectory
    }
    fn reset<'a>(
        &'a self,
        a: &'a Account,
        new: &'a Password,
        o: ResetOptions,
    ) -> BoxFuture<'a, Result<Landed, LandingError>> {
        ready(self.write(
            a,
            format!(
                "reset {} {} unlock={}",
                a.sam_account_name,
                new.expose(),
                o.unlock
            ),
        ))
    }
    fn change<'a>(
        &'a self,
        a: &'a Account,
        old: &'a Password,
        new: &'a Password,
    ) -> BoxFuture<'a, Result<Landed, LandingError>> {
        let dir = self.directory.as_ref().unwrap();
        let current = dir
            .passwords
            .lock()
            .unwrap()
            .get(&a.sam_account_name)
            .cloned();
        if current.as_deref() != Some(old.expose()) {
            dir.set(&a.sam_account_name, |x| x.state.bad_pwd_count += 1);
            self.writes
                .lock()
                .unwrap()
                .push(format!("wrong-old {}", a.sam_account_name));
            return ready(Err(LandingError::Rejected {
                reason: Rejection::WrongOldPassword,
                diagnostic: Diagnostic::new(None, "00000056"),
            }));
        }
        ready(self.write(a, format!("change {} {}", a.sam_account_name, new.expose())))
    }
    fn unlock<'a>(&'a self, a: &'a Account) -> BoxFuture<'a, Result<Landed, LandingError>> {
        ready(self.write(a, format!("unlock {}", a.sam_account_name)))
    }
}

impl FakeZone {
    fn write(&self, _: &Account, what: String) -> Result<Landed, LandingError> {
        if let Some(reason) = *self.refuse.lock().unwrap() {
            return Err(LandingError::Rejected {
                reason,
                diagnostic: Diagnostic::new(None, "raw DC text"),
            });
        }
        self.writes.lock().unwrap().push(what);
        Ok(Landed {
            zone: ZoneId::ActiveDirectory,
            server: "fake".into(),
        })
    }
}

#[derive(Default)]
pub struct FakeMailer(pub Mutex<Vec<Email>>, pub std::sync::atomic::AtomicBool);
impl Mailer for FakeMailer {
    fn send<'a>(&'a self, mail: &'a Email) -> BoxFuture<'a, Result<(), NotifyError>> {
        if self.1.load(Ordering::Relaxed) {
            return ready(Err(NotifyError::Unavailable("relay down".into())));
        }
        self.0.lock().unwrap().push(mail.clone());
        ready(Ok(()))
    }
}

pub struct FixedClock(pub AtomicI64);
impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(self.0.load(Ordering::Relaxed) as u64)
    }
}

pub struct Counter(pub AtomicU64);
impl Random for Counter {
    fn fill(&self, buf: &mut [u8]) {
        for b in buf {
            let x = self.0.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
            *b = (x >> 29) as u8;
        }
    }
}

pub const DOMAIN: &str = "S-1-5-21-10-20-30";
pub const T0: i64 = 1_900_000_000;

pub struct World {
    pub engine: Engine,
    pub store: Arc<MemStore>,
    pub dir: Arc<FakeDirectory>,
    pub zone: Arc<FakeZone>,
    pub mail: Arc<FakeMailer>,
    pub clock: Arc<FixedClock>,
}

pub fn account(n: u8, sam: &str, groups: &[u32]) -> Account {
    let domain: Sid = DOMAIN.parse().unwrap();
    Account {
        dn: format!("CN={sam},OU=Staff,DC=corp"),
        guid: Guid([n; 16]),
        sid: domain.with_rid(1000 + u32::from(n)),
        sam_account_name: sam.into(),
        user_principal_name: None,
        mail: Some(format!("{sam}@corp.example.com")),
        display_name: Some(format!("User {n}")),
        state: AccountState {
            enabled: true,
            ..AccountState::default()
        },
        groups: groups.iter().map(|r| domain.with_rid(*r)).collect(),
        policy_ref: None,
    }
}

/// SSPR group RID 2000. Accounts: normal (enrolled), disabled, out of scope, privileged,
/// unenrolled, locked (AD-locked: still eligible for reset), normal2.
pub fn world(threshold: u32) -> World {
    let domain: Sid = DOMAIN.parse().unwrap();
    let mut disabled = account(2, "disabled", &[2000]);
    disabled.state.enabled = false;
    let mut locked = account(6, "locked", &[2000]);
    locked.state.locked = true;
    let accounts = vec![
        account(1, "normal", &[2000]),
        disabled,
        account(3, "outside", &[]),
        account(4, "admin", &[2000, 512]),
        account(5, "unenrolled", &[2000]),
        locked,
    ];
    let dir = Arc::new(FakeDirectory {
        accounts: Mutex::new(accounts),
        threshold,
        ..FakeDirectory::default()
    });
    dir.passwords
        .lock()
        .unwrap()
        .insert("normal".into(), "Old-Password-1".into());
    let store = Arc::new(MemStore::default());
    for n in [1u8, 2, 3, 4, 6] {
        store.with(|m| {
            m.enrollments.push(Enrollment {
                user: Guid([n; 16]),
                method: MethodKind::Email,
                value: format!("u{n}@home.example"),
                verified_at: T0 - 2 * 86_400,
            })
        });
    }
    let zone = Arc::new(FakeZone {
        directory: Some(dir.clone()),
        ..FakeZone::default()
    });
    let mail = Arc::new(FakeMailer::default());
    let clock = Arc::new(FixedClock(AtomicI64::new(T0)));
    let engine = Engine::new(Parts {
        directory: dir.clone(),
        zones: vec![zone.clone()],
        store: store.clone(),
        mailer: mail.clone(),
        clock: clock.clone(),
        random: Arc::new(Counter(AtomicU64::new(42))),
        scope: crate::scope::ScopeRules {
            groups: vec![domain.with_rid(2000)],
            exclude_privileged: true,
            ..Default::default()
        },
        protected: crate::tier::ProtectedGroups::new(&domain, []),
        config: EngineConfig::default(),
        otp_key: [9; 32],
    });
    World {
        engine,
        store,
        dir,
        zone,
        mail,
        clock,
    }
}

impl World {
    /// The newest mail sent.
    pub fn last_mail(&self) -> Email {
        self.mail.0.lock().unwrap().last().expect("a mail").clone()
    }

    pub fn last_code(&self) -> String {
        self.last_mail()
            .body
            .split_whitespace()
            .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
            .unwrap()
            .to_owned()
    }
    pub fn mails(&self) -> usize {
        self.mail.0.lock().unwrap().len()
    }
    pub fn audit_ok(&self) {
        let records = self.store.with(|m| m.audit.clone());
        audit::verify(&records, (0, audit::GENESIS)).unwrap();
    }
}
