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
use crate::audit;
use crate::clock::{Clock, Random};
use crate::engine::*;
use crate::landing::{BoxFuture, Diagnostic, Landed, Rejection, ResetOptions, WriteGrant};
use crate::landing::{Directory, DirectoryError, LandingError, LandingZone, ZoneId};
use crate::notify::NotifyError;
use crate::notify::{Email, Mailer};
use crate::policy::PasswordPolicy;
use crate::policy::PolicySource;
use crate::secret::Password;
use crate::store::{Enrollment, MethodKind};

mod cloud;
pub use cloud::{FakeBreached, FakeCloud, throttled, unavailable};

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

/// Drive futures side by side, polling each in turn until all are done: with
/// `Faulty::yielding` set they interleave at every store call, as concurrent requests do.
pub fn run_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut pending: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    while out.iter().any(Option::is_none) {
        for (f, slot) in pending.iter_mut().zip(out.iter_mut()) {
            if slot.is_none()
                && let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx)
            {
                *slot = Some(v);
            }
        }
    }
    out.into_iter().map(Option::unwrap).collect()
}

mod faulty;
mod passkeys;
mod sms;
mod store;
pub use faulty::Faulty;
pub use passkeys::{Answer, FakeAuthenticator, FakePasskeys};
pub use sms::{FakeSms, SmsFailure, six_digits};
use store::ready;
pub use store::{Mem, MemStore};

/// Accounts by sAMAccountName; each carries its own policy.
#[derive(Default)]
pub struct FakeDirectory {
    pub accounts: Mutex<Vec<Account>>,
    pub passwords: Mutex<HashMap<String, String>>,
    pub threshold: u32,
    /// While set, every lookup fails as if no DC answered.
    pub down: std::sync::atomic::AtomicBool,
    /// Names (as typed) that match more than one account.
    pub ambiguous: Mutex<Vec<String>>,
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
        if self.ambiguous.lock().unwrap().contains(sam) {
            return ready(Err(DirectoryError::Ambiguous));
        }
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
            entra_rules: false,
        }))
    }
}

/// Records what landed; can be told to refuse.
#[derive(Default)]
pub struct FakeZone {
    pub writes: Mutex<Vec<String>>,
    pub refuse: Mutex<Option<Rejection>>,
    /// While set, every write fails with this (Unavailable, Indeterminate, …).
    pub fail: Mutex<Option<LandingError>>,
    pub directory: Option<Arc<FakeDirectory>>,
}

impl LandingZone for FakeZone {
    fn id(&self) -> ZoneId {
        ZoneId::ActiveDirectory
    }
    fn reset<'a>(
        &'a self,
        g: &'a WriteGrant<'a>,
        new: &'a Password,
        o: ResetOptions,
    ) -> BoxFuture<'a, Result<Landed, LandingError>> {
        let a = g.account();
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
        g: &'a WriteGrant<'a>,
        old: &'a Password,
        new: &'a Password,
    ) -> BoxFuture<'a, Result<Landed, LandingError>> {
        let a = g.account();
        if let Some(e) = self.fail.lock().unwrap().clone() {
            return ready(Err(e));
        }
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
    fn unlock<'a>(&'a self, g: &'a WriteGrant<'a>) -> BoxFuture<'a, Result<Landed, LandingError>> {
        let a = g.account();
        ready(self.write(a, format!("unlock {}", a.sam_account_name)))
    }
    fn require_change<'a>(
        &'a self,
        g: &'a WriteGrant<'a>,
    ) -> BoxFuture<'a, Result<Landed, LandingError>> {
        let a = g.account();
        ready(self.write(a, format!("must-change {}", a.sam_account_name)))
    }
}

impl FakeZone {
    fn write(&self, _: &Account, what: String) -> Result<Landed, LandingError> {
        if let Some(e) = self.fail.lock().unwrap().clone() {
            return Err(e);
        }
        if let Some(reason) = *self.refuse.lock().unwrap() {
            return Err(LandingError::Rejected {
                reason,
                diagnostic: Diagnostic::new(None, "raw DC text"),
            });
        }
        self.writes.lock().unwrap().push(what);
        Ok(Landed::written(ZoneId::ActiveDirectory, "fake"))
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
    /// The engine's view of `store`: `faults.fail(&["append_audit"])` makes that op fail.
    pub faults: Arc<Faulty>,
    pub dir: Arc<FakeDirectory>,
    pub zone: Arc<FakeZone>,
    pub breached: Arc<FakeBreached>,
    pub mail: Arc<FakeMailer>,
    pub clock: Arc<FixedClock>,
    /// The SMS gateway; the engine uses it only when built with `WorldBuilder::sms`.
    pub sms: Arc<FakeSms>,
    /// The passkey relying party; the engine uses it only when built with
    /// `WorldBuilder::passkeys`.
    pub passkeys: Arc<FakePasskeys>,
}

pub fn account(n: u8, sam: &str, groups: &[u32]) -> Account {
    let domain: Sid = DOMAIN.parse().unwrap();
    Account {
        dn: format!("CN={sam},OU=Staff,DC=corp"),
        guid: Guid([n; 16]),
        consistency_guid: None,
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
        read_from: None,
    }
}

/// SSPR group RID 2000. Accounts: normal (enrolled), disabled, out of scope, privileged,
/// unenrolled, locked (AD-locked: still eligible for reset), normal2.
pub fn world(threshold: u32) -> World {
    WorldBuilder::new(EngineConfig::default())
        .threshold(threshold)
        .build()
}

/// `world` with this engine configuration.
pub fn world_config(threshold: u32, config: EngineConfig) -> World {
    WorldBuilder::new(config).threshold(threshold).build()
}

/// `world` with a second landing zone after AD (an `EntraId` fake).
pub fn cloud_world(threshold: u32) -> (World, Arc<FakeCloud>) {
    let cloud = Arc::new(FakeCloud::default());
    (
        WorldBuilder::new(EngineConfig::default())
            .threshold(threshold)
            .cloud(cloud.clone())
            .build(),
        cloud,
    )
}

/// The world of `world(5)` with this configuration, to be given more parts:
/// `world_with(config).sms().passkeys().privileged_in_scope().build()`.
pub fn world_with(config: EngineConfig) -> WorldBuilder {
    WorldBuilder::new(config)
}

/// Builds a `World`; what is not asked for is as in `world`.
pub struct WorldBuilder {
    threshold: u32,
    config: EngineConfig,
    cloud: Option<Arc<FakeCloud>>,
    sms: bool,
    passkeys: bool,
    privileged_in_scope: bool,
}

impl WorldBuilder {
    #[must_use]
    pub fn new(config: EngineConfig) -> Self {
        Self {
            threshold: 5,
            config,
            cloud: None,
            sms: false,
            passkeys: false,
            privileged_in_scope: false,
        }
    }

    /// The domain's lockout threshold (0: none).
    #[must_use]
    pub fn threshold(mut self, threshold: u32) -> Self {
        self.threshold = threshold;
        self
    }

    /// A second landing zone after AD.
    #[must_use]
    pub fn cloud(mut self, cloud: Arc<FakeCloud>) -> Self {
        self.cloud = Some(cloud);
        self
    }

    /// SMS configured: the engine sends through `World::sms` (countries come from the config's
    /// `sms_countries`).
    #[must_use]
    pub fn sms(mut self) -> Self {
        self.sms = true;
        self
    }

    /// Passkeys configured: the engine uses `World::passkeys`.
    #[must_use]
    pub fn passkeys(mut self) -> Self {
        self.passkeys = true;
        self
    }

    /// Privileged accounts are in scope (`exclude_privileged: false`); whether they may use
    /// self-service is then up to `config.gates.privileged`.
    #[must_use]
    pub fn privileged_in_scope(mut self) -> Self {
        self.privileged_in_scope = true;
        self
    }

    pub fn build(self) -> World {
        build_world(self)
    }
}

fn build_world(b: WorldBuilder) -> World {
    let WorldBuilder {
        threshold,
        config,
        cloud,
        sms: with_sms,
        passkeys: with_passkeys,
        privileged_in_scope,
    } = b;
    let breached = Arc::new(FakeBreached::default());
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
            m.enrollments.push(Enrollment::contact(
                Guid([n; 16]),
                MethodKind::Email,
                &format!("u{n}@home.example"),
                T0 - 2 * 86_400,
            ))
        });
    }
    let zone = Arc::new(FakeZone {
        directory: Some(dir.clone()),
        ..FakeZone::default()
    });
    let mail = Arc::new(FakeMailer::default());
    let sms = Arc::new(FakeSms::default());
    let passkeys = Arc::new(FakePasskeys::new(&config.public_base_url));
    let clock = Arc::new(FixedClock(AtomicI64::new(T0)));
    let faults = Arc::new(Faulty::new(store.clone()));
    let engine = Engine::new(Parts {
        directory: dir.clone(),
        zones: {
            let mut zones: Vec<Arc<dyn LandingZone>> = vec![zone.clone()];
            zones.extend(cloud.map(|c| c as Arc<dyn LandingZone>));
            zones
        },
        store: faults.clone(),
        mailer: mail.clone(),
        clock: clock.clone(),
        random: Arc::new(Counter(AtomicU64::new(42))),
        scope: crate::scope::ScopeRules {
            groups: vec![domain.with_rid(2000)],
            exclude_privileged: !privileged_in_scope,
            ..Default::default()
        },
        protected: crate::tier::ProtectedGroups::new(&domain, []),
        config,
        otp_key: [9; 32],
        keys: Arc::new(crate::keyring::StaticKeys(vec![crate::keyring::Kek {
            id: "test-1".into(),
            key: zeroize::Zeroizing::new([7; 32]),
        }])),
        banned: crate::banned::BannedList::global(),
        breached: Some(breached.clone()),
        sms: with_sms.then(|| sms.clone() as Arc<dyn crate::notify::SmsSender>),
        passkeys: with_passkeys.then(|| passkeys.clone() as Arc<dyn crate::passkey::Passkeys>),
    });
    World {
        engine,
        store,
        faults,
        dir,
        zone,
        breached,
        mail,
        clock,
        sms,
        passkeys,
    }
}

impl World {
    /// Add a person: account `n` (`account(n, sam, groups)`) with password `Pw-<sam>-1` and,
    /// if `enrolled`, the email `<sam>@home.example` past the enrollment cool-down.
    pub fn person(&self, n: u8, sam: &str, groups: &[u32], enrolled: bool) {
        self.dir
            .accounts
            .lock()
            .unwrap()
            .push(account(n, sam, groups));
        self.dir
            .passwords
            .lock()
            .unwrap()
            .insert(sam.into(), format!("Pw-{sam}-1"));
        if enrolled {
            self.store.with(|m| {
                m.enrollments.push(Enrollment::contact(
                    Guid([n; 16]),
                    MethodKind::Email,
                    &format!("{sam}@home.example"),
                    T0 - 2 * 86_400,
                ));
            });
        }
    }

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
    /// Mails delivered to `to`.
    pub fn mails_to(&self, to: &str) -> Vec<Email> {
        self.mail
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.to == to)
            .cloned()
            .collect()
    }
    /// Move the clock by `secs`.
    pub fn advance(&self, secs: i64) {
        self.clock.0.fetch_add(secs, Ordering::Relaxed);
    }
    pub fn audit_ok(&self) {
        let records = self.store.with(|m| m.audit.clone());
        audit::verify(&records, (0, audit::GENESIS)).unwrap();
    }
}
