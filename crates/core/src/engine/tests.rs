//! Engine tests with in-memory fakes and a fixed clock: every transition, no DC needed.

#![allow(clippy::unit_arg, clippy::cast_possible_truncation)] // terse in-memory fakes

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::*;
use crate::account::{AccountState, Guid, Identifier, Sid};
use crate::audit::{self, AuditRecord};
use crate::landing::{BoxFuture, Diagnostic, Landed, Rejection, ResetOptions};
use crate::notify::NotifyError;
use crate::policy::PolicySource;
use crate::secret::Password;
use crate::store::{
    Challenge, Enrollment, FlowKind, FlowRecord, MethodKind, StoreResult, UnixTime,
};

/// Drive a future whose fakes never pend.
fn run<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[derive(Default)]
struct Mem {
    flows: HashMap<String, FlowRecord>,
    enrollments: Vec<Enrollment>,
    challenges: Vec<Challenge>,
    hits: Vec<(String, UnixTime)>,
    locks: HashMap<String, UnixTime>,
    audit: Vec<AuditRecord>,
}

#[derive(Default)]
struct MemStore(Mutex<Mem>);

fn ready<'a, T: Send + 'a>(v: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(v))
}

impl MemStore {
    fn with<T>(&self, f: impl FnOnce(&mut Mem) -> T) -> T {
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
struct FakeDirectory {
    accounts: Mutex<Vec<Account>>,
    passwords: Mutex<HashMap<String, String>>,
    threshold: u32,
}

impl FakeDirectory {
    fn set<T>(&self, sam: &str, f: impl FnOnce(&mut Account) -> T) -> T {
        let mut all = self.accounts.lock().unwrap();
        f(all.iter_mut().find(|a| a.sam_account_name == sam).unwrap())
    }
}

impl Directory for FakeDirectory {
    fn find<'a>(
        &'a self,
        id: &'a Identifier,
    ) -> BoxFuture<'a, Result<Option<Account>, DirectoryError>> {
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
struct FakeZone {
    writes: Mutex<Vec<String>>,
    refuse: Mutex<Option<Rejection>>,
    directory: Option<Arc<FakeDirectory>>,
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
struct FakeMailer(Mutex<Vec<Email>>);
impl Mailer for FakeMailer {
    fn send<'a>(&'a self, mail: &'a Email) -> BoxFuture<'a, Result<(), NotifyError>> {
        self.0.lock().unwrap().push(mail.clone());
        ready(Ok(()))
    }
}

struct FixedClock(AtomicI64);
impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(self.0.load(Ordering::Relaxed) as u64)
    }
}

struct Counter(AtomicU64);
impl Random for Counter {
    fn fill(&self, buf: &mut [u8]) {
        for b in buf {
            let x = self.0.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
            *b = (x >> 29) as u8;
        }
    }
}

const DOMAIN: &str = "S-1-5-21-10-20-30";
const T0: i64 = 1_900_000_000;

struct World {
    engine: Engine,
    store: Arc<MemStore>,
    dir: Arc<FakeDirectory>,
    zone: Arc<FakeZone>,
    mail: Arc<FakeMailer>,
    clock: Arc<FixedClock>,
}

fn account(n: u8, sam: &str, groups: &[u32]) -> Account {
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
    }
}

/// SSPR group RID 2000. Accounts: normal (enrolled), disabled, out of scope, privileged,
/// unenrolled, locked (AD-locked: still eligible for reset), normal2.
fn world(threshold: u32) -> World {
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

fn ctx() -> RequestContext {
    RequestContext {
        client_ip: Some("192.0.2.7".into()),
        user_agent: Some("test".into()),
        support_id: "RK-TEST-0001".into(),
    }
}

impl World {
    fn last_code(&self) -> String {
        let mails = self.mail.0.lock().unwrap();
        let body = &mails.last().expect("a mail").body;
        body.split_whitespace()
            .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
            .unwrap()
            .to_owned()
    }
    fn mails(&self) -> usize {
        self.mail.0.lock().unwrap().len()
    }
    fn audit_ok(&self) {
        let records = self.store.with(|m| m.audit.clone());
        audit::verify(&records, (0, audit::GENESIS)).unwrap();
    }
}

#[test]
fn identify_gives_every_class_the_same_answer_and_mails_only_the_eligible() {
    let w = world(5);
    for who in [
        "normal",
        "disabled",
        "outside",
        "admin",
        "unenrolled",
        "locked",
        "nobody",
        "a(*)b",
    ] {
        let flow = run(w.engine.start_reset(&ctx(), FlowKind::Reset, who)).unwrap();
        assert_eq!(flow.len(), 64, "{who}: same kind of answer");
        assert!(!run(w.engine.reset_verified(&flow)).unwrap());
    }
    // Only `normal` and `locked` (AD lockout does not bar a reset) got a code.
    let to: Vec<String> = w
        .mail
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.to.clone())
        .collect();
    assert_eq!(to, vec!["u1@home.example", "u6@home.example"]);
    let audit = w.store.with(|m| m.audit.clone());
    assert!(
        audit
            .iter()
            .any(|r| r.body.contains("ineligible:privileged_excluded"))
    );
    assert!(
        audit.iter().all(|r| !r.body.contains(&w.last_code())),
        "codes never reach the audit"
    );
    w.audit_ok();
}

#[test]
fn reset_happy_path_lands_once_and_ends_all_flows() {
    let w = world(5);
    let other = run(w.engine.start_reset(&ctx(), FlowKind::Unlock, "normal")).unwrap();
    let flow = run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    let code = w.last_code();
    let old_id = flow;
    let flow = run(w.engine.verify_reset_code(&ctx(), &old_id, &code)).unwrap();
    assert_ne!(flow, old_id, "the flow id rotates at the privilege step");
    assert!(run(w.engine.reset_verified(&flow)).unwrap());
    // The old id is dead, and the same code cannot be used twice.
    assert!(matches!(
        run(w.engine.verify_reset_code(&ctx(), &old_id, &code)),
        Err(EngineError::FlowExpired)
    ));
    let out = run(w
        .engine
        .complete_reset(&ctx(), &flow, &Password::from("Brand-New-Pass-1")))
    .unwrap();
    assert!(out.landed_everywhere());
    assert_eq!(
        *w.zone.writes.lock().unwrap(),
        vec!["reset normal Brand-New-Pass-1 unlock=true"]
    );
    // All of the user's flows are gone (invariant 8); a replay finds nothing.
    assert!(matches!(
        run(w.engine.reset_verified(&other)),
        Err(EngineError::FlowExpired)
    ));
    assert!(matches!(
        run(w
            .engine
            .complete_reset(&ctx(), &flow, &Password::from("Again-New-Pass-2"))),
        Err(EngineError::FlowExpired)
    ));
    assert!(
        w.mail
            .0
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .body
            .contains("Not you?")
    );
    let audit = w.store.with(|m| m.audit.clone());
    assert!(
        audit.iter().all(|r| !r.body.contains("Brand-New-Pass-1")),
        "no password in the audit"
    );
    w.audit_ok();
}

#[test]
fn wrong_codes_stop_at_five_for_real_and_decoy_flows_alike() {
    let w = world(5);
    for who in ["normal", "nobody"] {
        let flow = run(w.engine.start_reset(&ctx(), FlowKind::Reset, who)).unwrap();
        for i in 1..=5 {
            let r = run(w.engine.verify_reset_code(&ctx(), &flow, "000000"));
            let want_too_many = i == 5;
            assert_eq!(
                matches!(r, Err(EngineError::TooManyAttempts)),
                want_too_many,
                "{who} attempt {i}: {r:?}"
            );
            assert_eq!(
                matches!(r, Err(EngineError::WrongCode)),
                !want_too_many,
                "{who} attempt {i}"
            );
        }
        assert!(matches!(
            run(w.engine.verify_reset_code(&ctx(), &flow, "123456")),
            Err(EngineError::TooManyAttempts)
        ));
    }
}

#[test]
fn five_failures_an_hour_lock_self_service_for_a_day() {
    let w = world(5);
    for _ in 0..5 {
        let flow = run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
        let _ = run(w.engine.verify_reset_code(&ctx(), &flow, "000001"));
    }
    let mails = w.mails();
    let flow = run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    assert_eq!(
        w.mails(),
        mails,
        "locked: no code is sent, the page is the same"
    );
    assert!(run(w.engine.verify_reset_code(&ctx(), &flow, "000002")).is_err());
    w.clock.0.fetch_add(86_400 + 1, Ordering::Relaxed);
    let flow = run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    assert_eq!(w.mails(), mails + 1, "unlocked after 24 h");
    let _ = run(w.engine.verify_reset_code(&ctx(), &flow, &w.last_code())).unwrap();
}

#[test]
fn codes_expire_and_a_new_code_voids_the_old() {
    let w = world(5);
    let flow = run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    let first = w.last_code();
    w.clock.0.fetch_add(601, Ordering::Relaxed);
    assert!(matches!(
        run(w.engine.verify_reset_code(&ctx(), &flow, &first)),
        Err(EngineError::WrongCode)
    ));
    let user = Guid([1; 16]);
    run(w
        .engine
        .issue_code(&flow, &user, "reset:email", "u1@home.example", "s"))
    .unwrap();
    let second = w.last_code();
    run(w
        .engine
        .issue_code(&flow, &user, "reset:email", "u1@home.example", "s"))
    .unwrap();
    if second != w.last_code() {
        assert!(
            run(w.engine.verify_reset_code(&ctx(), &flow, &second)).is_err(),
            "replaced code is void"
        );
    }
    let _ = run(w.engine.verify_reset_code(&ctx(), &flow, &w.last_code())).unwrap();
}

fn verified(w: &World, kind: FlowKind) -> FlowId {
    let flow = run(w.engine.start_reset(&ctx(), kind, "normal")).unwrap();
    run(w.engine.verify_reset_code(&ctx(), &flow, &w.last_code())).unwrap()
}

#[test]
fn live_recheck_before_the_write() {
    let w = world(5);
    let flow = verified(&w, FlowKind::Reset);
    w.dir.set("normal", |a| a.state.enabled = false);
    let r = run(w
        .engine
        .complete_reset(&ctx(), &flow, &Password::from("Brand-New-Pass-1")));
    assert!(matches!(r, Err(EngineError::FlowExpired)), "{r:?}");
    w.dir.set("normal", |a| {
        a.state.enabled = true;
        a.groups.push(DOMAIN.parse::<Sid>().unwrap().with_rid(512));
    });
    let r = run(w
        .engine
        .complete_reset(&ctx(), &flow, &Password::from("Brand-New-Pass-1")));
    assert!(
        matches!(r, Err(EngineError::FlowExpired)),
        "became privileged: {r:?}"
    );
    assert!(w.zone.writes.lock().unwrap().is_empty());
}

#[test]
fn policy_precheck_and_zone_rejection_keep_the_flow() {
    let w = world(5);
    let flow = verified(&w, FlowKind::Reset);
    let r = run(w
        .engine
        .complete_reset(&ctx(), &flow, &Password::from("short")));
    assert!(matches!(r, Err(EngineError::Policy { .. })), "{r:?}");
    *w.zone.refuse.lock().unwrap() = Some(Rejection::History);
    let r = run(w
        .engine
        .complete_reset(&ctx(), &flow, &Password::from("Used-Before-Pass-1")));
    match r {
        Err(EngineError::Landing(e)) => assert_eq!(e.rejection(), Some(Rejection::History)),
        other => panic!("{other:?}"),
    }
    *w.zone.refuse.lock().unwrap() = None;
    run(w
        .engine
        .complete_reset(&ctx(), &flow, &Password::from("Fine-New-Pass-1")))
    .unwrap();
}

#[test]
fn unlock_flow_clears_the_lockout_only() {
    let w = world(5);
    let flow = verified(&w, FlowKind::Unlock);
    assert!(matches!(
        run(w.engine.reset_policy(&flow)),
        Err(EngineError::WrongStep)
    ));
    run(w.engine.complete_unlock(&ctx(), &flow)).unwrap();
    assert_eq!(*w.zone.writes.lock().unwrap(), vec!["unlock normal"]);
}

#[test]
fn change_budget_stops_before_the_dc_would_lock() {
    let w = world(5);
    let old = Password::from("Old-Password-1");
    let new = Password::from("New-Password-2x");
    // The DC already counted 2 bad logons: 5 - 2 - 1 = 2 more attempts may reach it.
    w.dir.set("normal", |a| a.state.bad_pwd_count = 2);
    for _ in 0..4 {
        let r = run(w
            .engine
            .change(&ctx(), "normal", &Password::from("Guess-1234"), &new));
        assert!(matches!(r, Err(EngineError::ChangeRefused)));
    }
    let reached: Vec<String> = w.zone.writes.lock().unwrap().clone();
    assert_eq!(
        reached,
        vec!["wrong-old normal", "wrong-old normal"],
        "only 2 guesses reached the DC"
    );
    let count = w.dir.accounts.lock().unwrap()[0].state.bad_pwd_count;
    assert!(count < 5, "never locked by Rekey: badPwdCount {count}");
    // Even the right password is refused now: Rekey's own budget is spent (same answer).
    assert!(matches!(
        run(w.engine.change(&ctx(), "normal", &old, &new)),
        Err(EngineError::ChangeRefused)
    ));
    // Unknown and ineligible accounts read the same.
    for who in ["nobody", "disabled", "admin", "locked"] {
        assert!(
            matches!(
                run(w.engine.change(&ctx(), who, &old, &new)),
                Err(EngineError::ChangeRefused)
            ),
            "{who}"
        );
    }
}

#[test]
fn change_lands_and_notifies() {
    let w = world(0);
    let r = run(w.engine.change(
        &ctx(),
        "normal",
        &Password::from("Old-Password-1"),
        &Password::from("New-Password-2x"),
    ));
    r.unwrap();
    assert_eq!(
        w.zone.writes.lock().unwrap().last().unwrap(),
        "change normal New-Password-2x"
    );
    assert!(
        w.mail
            .0
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .subject
            .contains("was changed")
    );
}

#[test]
fn per_ip_budget() {
    let w = world(0);
    let p = Password::from("x");
    for _ in 0..30 {
        let _ = run(w.engine.change(&ctx(), "nobody", &p, &p));
    }
    assert!(matches!(
        run(w.engine.change(&ctx(), "nobody", &p, &p)),
        Err(EngineError::RateLimited)
    ));
}

#[test]
fn enrollment_sign_in_email_confirm_and_cooldown() {
    let w = world(5);
    assert!(matches!(
        run(w
            .engine
            .enroll_sign_in(&ctx(), "normal", &Password::from("wrong"))),
        Err(EngineError::SignInFailed)
    ));
    assert!(matches!(
        run(w
            .engine
            .enroll_sign_in(&ctx(), "normal", &Password::from(""))),
        Err(EngineError::SignInFailed)
    ));
    let flow = run(w
        .engine
        .enroll_sign_in(&ctx(), "normal", &Password::from("Old-Password-1")))
    .unwrap();
    assert_eq!(
        run(w.engine.enroll_step(&flow)).unwrap(),
        EnrollStep::SignedIn {
            current: Some("u***@h***.example".into())
        }
    );
    assert!(matches!(
        run(w.engine.enroll_email(&ctx(), &flow, "not an address")),
        Err(EngineError::BadAddress)
    ));
    run(w
        .engine
        .enroll_email(&ctx(), &flow, "new.me@mail.example.org"))
    .unwrap();
    assert_eq!(
        run(w.engine.enroll_step(&flow)).unwrap(),
        EnrollStep::AwaitCode {
            masked: "n***@m***.org".into()
        }
    );
    assert_eq!(
        w.mail.0.lock().unwrap().last().unwrap().to,
        "new.me@mail.example.org"
    );
    run(w.engine.enroll_confirm(&ctx(), &flow, &w.last_code())).unwrap();
    let to: Vec<String> = w
        .mail
        .0
        .lock()
        .unwrap()
        .iter()
        .rev()
        .take(2)
        .map(|m| m.to.clone())
        .collect();
    assert_eq!(
        to,
        vec!["new.me@mail.example.org", "u1@home.example"],
        "old and new address told"
    );
    // The new address is cooling down: a reset sends nothing for 24 h.
    let mails = w.mails();
    run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    assert_eq!(w.mails(), mails);
    w.clock.0.fetch_add(86_401, Ordering::Relaxed);
    run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    assert_eq!(
        w.mail.0.lock().unwrap().last().unwrap().to,
        "new.me@mail.example.org"
    );
    // A sign-in older than 5 minutes cannot add a method.
    let flow = run(w
        .engine
        .enroll_sign_in(&ctx(), "normal", &Password::from("Old-Password-1")))
    .unwrap();
    w.clock.0.fetch_add(301, Ordering::Relaxed);
    assert!(matches!(
        run(w.engine.enroll_email(&ctx(), &flow, "x@y.example")),
        Err(EngineError::FlowExpired)
    ));
    w.audit_ok();
}
