//! A second landing zone for the engine's tests: what `LandingZone::plan` answers is set per
//! account, writes can fail on demand (a queue of errors, one per attempt), and `arrived`
//! answers what the test says the cloud saw.

use std::collections::{HashMap, VecDeque};
use std::future::ready;
use std::sync::Mutex;

use crate::account::Account;
use crate::landing::{BoxFuture, Diagnostic, Landed, LandingError, LandingZone, Plan};
use crate::landing::{Rejection, ResetOptions, WriteGrant, ZoneId, ZoneRules};
use crate::secret::Password;

/// An `EntraId` zone in memory.
#[derive(Default)]
pub struct FakeCloud {
    /// Plan per sAMAccountName; accounts not listed are `Absent`.
    pub plans: Mutex<HashMap<String, Result<Plan, LandingError>>>,
    /// Errors for the next writes, one per attempt.
    pub fail: Mutex<VecDeque<LandingError>>,
    /// `reset {sam} {password} replay_of={..}` per write.
    pub writes: Mutex<Vec<String>>,
    /// When the password arrived, per handle (Unix seconds); unset: not yet.
    pub arrivals: Mutex<HashMap<String, i64>>,
    /// A verified replay finds the password already set (the lost answer had landed).
    pub already_set: Mutex<bool>,
    /// Answer `sessions_revoked`.
    pub revoke: Mutex<Option<bool>>,
}

impl FakeCloud {
    pub fn plan(&self, sam: &str, plan: Result<Plan, LandingError>) {
        self.plans.lock().unwrap().insert(sam.to_owned(), plan);
    }

    /// A cloud-only account the zone writes, with Entra's rules.
    pub fn write(&self, sam: &str) {
        self.plan(
            sam,
            Ok(Plan::Write {
                rules: ZoneRules { entra: true },
            }),
        );
    }

    pub fn fail_next(&self, e: LandingError) {
        self.fail.lock().unwrap().push_back(e);
    }

    pub fn writes(&self) -> Vec<String> {
        self.writes.lock().unwrap().clone()
    }
}

/// A 429 with this `Retry-After`, or the zone unreachable.
#[must_use]
pub fn throttled(ms: u64) -> LandingError {
    LandingError::Throttled {
        retry_after_ms: Some(ms),
        diagnostic: Diagnostic::new(Some("graph"), "429 TooManyRequests"),
    }
}

#[must_use]
pub fn unavailable() -> LandingError {
    LandingError::Unavailable {
        diagnostic: Diagnostic::new(Some("graph"), "connection refused"),
    }
}

impl LandingZone for FakeCloud {
    fn id(&self) -> ZoneId {
        ZoneId::EntraId
    }

    fn plan<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Result<Plan, LandingError>> {
        let plans = self.plans.lock().unwrap();
        Box::pin(ready(
            plans
                .get(&account.sam_account_name)
                .cloned()
                .unwrap_or(Ok(Plan::Absent)),
        ))
    }

    fn reset<'a>(
        &'a self,
        g: &'a WriteGrant<'a>,
        new: &'a Password,
        o: ResetOptions,
    ) -> BoxFuture<'a, Result<Landed, LandingError>> {
        let sam = &g.account().sam_account_name;
        if o.replay_of.is_some() && *self.already_set.lock().unwrap() {
            return Box::pin(ready(Ok(Landed::written(ZoneId::EntraId, "graph"))));
        }
        if let Some(e) = self.fail.lock().unwrap().pop_front() {
            return Box::pin(ready(Err(e)));
        }
        self.writes.lock().unwrap().push(format!(
            "reset {sam} {} replay_of={:?}",
            new.expose(),
            o.replay_of
        ));
        let mut landed = Landed::written(ZoneId::EntraId, "graph");
        landed.sessions_revoked = *self.revoke.lock().unwrap();
        Box::pin(ready(Ok(landed)))
    }

    fn change<'a>(
        &'a self,
        _: &'a WriteGrant<'a>,
        _: &'a Password,
        _: &'a Password,
    ) -> BoxFuture<'a, Result<Landed, LandingError>> {
        Box::pin(ready(Err(LandingError::Rejected {
            reason: Rejection::Refused,
            diagnostic: Diagnostic::new(None, "no change with the old password here"),
        })))
    }

    fn unlock<'a>(&'a self, _: &'a WriteGrant<'a>) -> BoxFuture<'a, Result<Landed, LandingError>> {
        Box::pin(ready(Err(LandingError::Rejected {
            reason: Rejection::Refused,
            diagnostic: Diagnostic::new(None, "no unlock here"),
        })))
    }

    fn arrived<'a>(
        &'a self,
        handle: &'a str,
        since: i64,
    ) -> BoxFuture<'a, Result<Option<i64>, LandingError>> {
        let at = self.arrivals.lock().unwrap().get(handle).copied();
        Box::pin(ready(Ok(at.filter(|&t| t >= since))))
    }
}

/// A breach corpus in memory: the passwords listed were seen that often; `down` makes every
/// look-up fail.
#[derive(Default)]
pub struct FakeBreached {
    pub seen: Mutex<HashMap<String, u64>>,
    pub down: Mutex<bool>,
    pub asked: Mutex<u32>,
}

impl crate::breached::BreachedPasswords for FakeBreached {
    fn times_seen<'a>(
        &'a self,
        password: &'a Password,
    ) -> BoxFuture<'a, Result<Option<u64>, crate::breached::BreachError>> {
        *self.asked.lock().unwrap() += 1;
        if *self.down.lock().unwrap() {
            return Box::pin(ready(Err(crate::breached::BreachError::Unavailable(
                "range API timed out".into(),
            ))));
        }
        let n = self.seen.lock().unwrap().get(password.expose()).copied();
        Box::pin(ready(Ok(n)))
    }
}
