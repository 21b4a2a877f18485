//! Every landing zone, in order (invariant 26). Each zone is asked what it will do BEFORE any
//! zone is written (`LandingZone::plan`): a refusal there (a cloud account holding an admin role)
//! stops the operation with nothing written anywhere. Then the first zone (AD, the judge) is
//! written; a later zone is written only after it landed. What cannot finish inside the request
//! continues from the outbox: a later zone's write that failed (retried with backoff, honouring
//! the zone's `Retry-After`, verified before any replay), and a password that reaches a zone by
//! synchronisation (watched until it arrives or the deadline passes). The per-zone result page,
//! the receipt, follows both.

use serde::{Deserialize, Serialize};

use super::Engine;
use super::trail::Trail;
use crate::account::Account;
use crate::audit::ZoneResult;
use crate::error::UserFacing;
use crate::landing::{Landed, LandingError, Plan, Rejection, ResetOptions, WriteGrant, ZoneId};
use crate::secret::Password;
use crate::store::{FlowKind, FlowRecord};

/// A zone's state, as the result page and the audit show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneState {
    /// The zone took the write.
    Landed,
    /// The zone said no; nothing changed there.
    Rejected,
    /// Not written, and not retried (the first zone: the user may try again).
    Failed,
    /// The answer was lost: it may or may not have landed.
    Indeterminate,
    /// The zone holds no account for this person: nothing to do.
    Absent,
    /// Written later: the outbox retries it.
    Queued,
    /// Arrives by synchronisation from the first zone; not seen yet.
    Pending,
    /// Arrival proven (`secs` after the write).
    Synced,
    /// Not seen within the deadline (`secs`).
    NotSynced,
}

impl ZoneState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Landed => "landed",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
            Self::Indeterminate => "indeterminate",
            Self::Absent => "absent",
            Self::Queued => "queued",
            Self::Pending => "pending",
            Self::Synced => "synced",
            Self::NotSynced => "not_synced",
        }
    }

    /// The state an audit `outcome` names.
    #[must_use]
    pub fn parse(outcome: &str) -> Option<Self> {
        [
            Self::Landed,
            Self::Rejected,
            Self::Failed,
            Self::Indeterminate,
            Self::Absent,
            Self::Queued,
            Self::Pending,
            Self::Synced,
            Self::NotSynced,
        ]
        .into_iter()
        .find(|s| s.as_str() == outcome)
    }

    /// Nothing more will happen in this zone.
    #[must_use]
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Pending)
    }

    /// The zone is (or will be, by sync) as the user wanted: nothing for anyone to do.
    #[must_use]
    pub fn is_good(self) -> bool {
        matches!(
            self,
            Self::Landed | Self::Absent | Self::Pending | Self::Synced
        )
    }
}

/// One zone's result, ready to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneReport {
    pub zone: ZoneId,
    pub state: ZoneState,
    /// The stable code of a refusal or failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Its plain message (English; the web layer translates by code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `Synced`: seconds from the write to the arrival; `NotSynced`: the deadline in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secs: Option<i64>,
    /// After a landed reset: whether the zone ended the user's sign-in sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions_revoked: Option<bool>,
}

impl ZoneReport {
    pub(crate) fn new(zone: ZoneId, state: ZoneState) -> Self {
        Self {
            zone,
            state,
            code: None,
            message: None,
            secs: None,
            sessions_revoked: None,
        }
    }

    pub(crate) fn failure(zone: ZoneId, state: ZoneState, why: &dyn UserFacing) -> Self {
        Self {
            code: Some(why.code().to_owned()),
            message: Some(why.message().to_owned()),
            ..Self::new(zone, state)
        }
    }

    pub(crate) fn from_result(zone: ZoneId, r: &Result<Landed, LandingError>) -> Self {
        match r {
            Ok(landed) => Self {
                sessions_revoked: landed.sessions_revoked,
                ..Self::new(zone, ZoneState::Landed)
            },
            Err(e) => Self::from_error(zone, e),
        }
    }

    pub(crate) fn from_error(zone: ZoneId, e: &LandingError) -> Self {
        Self::failure(zone, state_of(e), e)
    }

    /// The audit form.
    pub(crate) fn audit(&self) -> ZoneResult {
        let note = match (self.state, self.secs, self.sessions_revoked) {
            (ZoneState::Synced, Some(s), _) => Some(format!("synced after {s} s")),
            (ZoneState::NotSynced, Some(s), _) => Some(format!(
                "not synced within {} min (check password hash sync)",
                minutes(s)
            )),
            (_, _, Some(true)) => Some("sessions revoked".to_owned()),
            (_, _, Some(false)) => Some("session revocation failed".to_owned()),
            _ => None,
        };
        ZoneResult {
            zone: self.zone.to_string(),
            outcome: self.state.as_str().to_owned(),
            code: self.code.clone(),
            note,
        }
    }
}

/// Whole minutes, rounded up (a deadline of 90 s reads "2 min").
#[must_use]
pub fn minutes(secs: i64) -> i64 {
    (secs + 59) / 60
}

fn state_of(e: &LandingError) -> ZoneState {
    match e {
        LandingError::Rejected { .. } => ZoneState::Rejected,
        LandingError::Indeterminate { .. } => ZoneState::Indeterminate,
        LandingError::Unavailable { .. } | LandingError::Throttled { .. } => ZoneState::Failed,
    }
}

/// What the zones said, in order.
#[derive(Default)]
pub(crate) struct Landing {
    pub reports: Vec<ZoneReport>,
    /// The FIRST zone's failure (nothing landed anywhere).
    pub error: Option<LandingError>,
}

impl Landing {
    /// The first zone's error, if the first zone did not land.
    pub fn first_error(&self) -> Option<&LandingError> {
        self.error.as_ref()
    }

    /// A zone is still moving (queued or pending): the receipt is worth keeping.
    pub fn unfinished(&self) -> bool {
        self.reports.iter().any(|r| !r.state.is_final())
    }

    pub(crate) fn push(&mut self, trail: &mut Trail, report: ZoneReport) {
        trail.zone(report.audit());
        self.reports.push(report);
    }
}

/// Each zone's plan, asked before anything is written. `Err`: the zone could not say (it is
/// deferred to the outbox, which asks again).
pub(crate) struct Plans(Vec<Result<Plan, LandingError>>);

impl Plans {
    /// No plans: an unlock is the first zone's alone, so later zones are not asked.
    pub fn none() -> Self {
        Self(Vec::new())
    }

    /// Whether a zone will write with Entra ID's cloud rules (merged into the policy shown).
    pub fn entra_rules(&self) -> bool {
        self.0
            .iter()
            .any(|p| matches!(p, Ok(Plan::Write { rules }) if rules.entra))
    }
}

/// The per-zone result page of a finished reset, kept while a zone is still moving.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Receipt {
    pub zones: Vec<ZoneReport>,
    pub support_id: String,
}

impl Engine {
    /// Ask every zone what it will do for `account`. A zone that refuses (`Rejected`, e.g. a
    /// privileged cloud account) stops everything here, before any zone is written.
    pub(crate) async fn plans(
        &self,
        trail: &mut Trail,
        account: &Account,
    ) -> Result<Plans, LandingError> {
        let plans = self.ask_plans(account).await;
        let refused = self
            .inner
            .zones
            .iter()
            .zip(&plans.0)
            .find_map(|(zone, plan)| match plan {
                Err(e @ LandingError::Rejected { .. }) => Some((zone.id(), e.clone())),
                _ => None,
            });
        match refused {
            Some((zone, e)) => {
                trail.note("refused_before_writing");
                trail.zone(ZoneReport::failure(zone, ZoneState::Rejected, &e).audit());
                Err(e)
            }
            None => Ok(plans),
        }
    }

    /// Every zone's plan, refusals included.
    pub(crate) async fn ask_plans(&self, account: &Account) -> Plans {
        let mut plans = Vec::with_capacity(self.inner.zones.len());
        for zone in &self.inner.zones {
            plans.push(zone.plan(account).await);
        }
        Plans(plans)
    }

    /// Write in every zone, the first (AD) first; a later zone only after the first landed.
    /// `new`: reset to it; `None`: unlock, which is the first zone's alone. The grant is made
    /// here, after every check of the caller passed. `receipt`: the id of the result page that
    /// jobs left in the outbox will update.
    pub(crate) async fn land(
        &self,
        trail: &mut Trail,
        account: &Account,
        new: Option<&Password>,
        options: ResetOptions,
        plans: &Plans,
        ticket: &Ticket,
    ) -> Landing {
        let mut out = Landing::default();
        let Some(zone) = self.inner.zones.first() else {
            return out;
        };
        let grant = WriteGrant::new(account);
        let r = match new {
            Some(p) => zone.reset(&grant, p, options).await,
            None => zone.unlock(&grant).await,
        };
        out.push(trail, ZoneReport::from_result(zone.id(), &r));
        match (r, new) {
            (Ok(_), Some(new)) => {
                trail.landed();
                self.land_later(trail, account, new, options, plans, ticket, &mut out)
                    .await;
            }
            (Ok(_), None) => trail.landed(),
            (Err(e), _) => out.error = Some(e),
        }
        out
    }

    /// After the first zone landed `new`: every later zone as its plan says — nothing (absent),
    /// refused (ambiguous, or privileged there), a proof to watch (synced), or a write, queued
    /// in the outbox when it fails for now.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn land_later(
        &self,
        trail: &mut Trail,
        account: &Account,
        new: &Password,
        options: ResetOptions,
        plans: &Plans,
        ticket: &Ticket,
        out: &mut Landing,
    ) {
        let grant = WriteGrant::new(account);
        let since = self.now();
        for (zone, plan) in self.inner.zones.iter().zip(&plans.0).skip(1) {
            let id = zone.id();
            let job = Job {
                zone: id,
                account,
                since,
                ticket,
            };
            let report = match plan {
                Ok(Plan::Absent) => ZoneReport::new(id, ZoneState::Absent),
                Ok(Plan::Ambiguous) => {
                    ZoneReport::failure(id, ZoneState::Rejected, &Rejection::Ambiguous)
                }
                Ok(Plan::Sync { handle }) => self.watch(&job, handle).await,
                Ok(Plan::Write { .. }) => {
                    let r = zone.reset(&grant, new, options).await;
                    match r {
                        Err(ref e) if e.rejection().is_none() => {
                            self.retry_later(&job, new, options, e).await
                        }
                        _ => {
                            if r.is_ok() {
                                trail.landed();
                            }
                            ZoneReport::from_result(id, &r)
                        }
                    }
                }
                Err(e) if e.rejection().is_some() => ZoneReport::from_error(id, e),
                Err(e) => self.retry_later(&job, new, options, e).await,
            };
            out.push(trail, report);
        }
    }

    /// Keep the result page of a reset whose zones are still moving; `None` when every zone
    /// is final (the page the request shows is all there is).
    pub(crate) async fn keep_receipt(
        &self,
        ticket: &Ticket,
        account: &Account,
        landing: &Landing,
    ) -> Option<String> {
        if !landing.unfinished() {
            return None;
        }
        let now = self.now();
        let cfg = &self.inner.config;
        let state = Receipt {
            zones: landing.reports.clone(),
            support_id: ticket.support_id.clone(),
        };
        let record = FlowRecord {
            id: self.flow_key(&ticket.receipt),
            kind: FlowKind::Receipt,
            user: Some(account.guid),
            state: serde_json::to_string(&state).unwrap_or_default(),
            version: 0,
            created_at: now,
            expires_at: now + cfg.sync_deadline.max(cfg.zone_retry_window) + 600,
        };
        self.inner.store.insert_flow(&record).await.ok()?;
        Some(ticket.receipt.clone())
    }

    /// A fresh receipt id for an operation (used only if a zone is left moving).
    pub(crate) fn ticket(&self, support_id: &str) -> Ticket {
        Ticket {
            receipt: crate::clock::token(self.inner.random.as_ref(), 32),
            support_id: support_id.to_owned(),
        }
    }

    /// The result page of a finished reset (no audit: it only reads).
    pub async fn receipt(&self, id: &str) -> super::EngineResult<super::ResetOutcome> {
        let record = self
            .inner
            .store
            .flow(&self.flow_key(id), self.now())
            .await?
            .filter(|r| r.kind == FlowKind::Receipt)
            .ok_or(super::EngineError::FlowExpired)?;
        let r: Receipt =
            serde_json::from_str(&record.state).map_err(|_| super::EngineError::FlowExpired)?;
        let unfinished = r.zones.iter().any(|z| !z.state.is_final());
        Ok(super::ResetOutcome {
            zones: r.zones,
            support_id: r.support_id,
            receipt: unfinished.then(|| id.to_owned()),
        })
    }

    /// Put a zone's new state on the receipt (stored under its key); best effort, since the
    /// audit record is what counts and the page expires anyway.
    pub(crate) async fn update_receipt(&self, key: &str, report: &ZoneReport) {
        for _ in 0..5 {
            let Ok(Some(mut record)) = self.inner.store.flow(key, self.now()).await else {
                return;
            };
            let Ok(mut r) = serde_json::from_str::<Receipt>(&record.state) else {
                return;
            };
            if let Some(z) = r.zones.iter_mut().find(|z| z.zone == report.zone) {
                *z = report.clone();
            }
            record.state = serde_json::to_string(&r).unwrap_or_default();
            if matches!(self.inner.store.update_flow(&record).await, Ok(true)) {
                return;
            }
        }
    }
}

/// The operation's support id and the id its receipt will have.
pub(crate) struct Ticket {
    pub receipt: String,
    pub support_id: String,
}

/// What the outbox needs to continue a zone's work after the request.
pub(crate) struct Job<'a> {
    pub zone: ZoneId,
    pub account: &'a Account,
    /// When the first zone landed (Unix seconds).
    pub since: i64,
    pub ticket: &'a Ticket,
}
