//! One audit record per engine entry point, whatever the outcome (invariants 31, 34).
//!
//! Every state-changing entry point has the same shape: a `Trail` collects what the record will
//! say while the operation runs, and `Engine::record` writes it once from the operation's
//! result, so no early return can skip the audit.

use super::{Engine, EngineError, EngineResult, RequestContext};
use crate::account::{Account, Guid};
use crate::audit::{AuditEvent, Operation, ZoneResult};
use crate::clock::unix_ms;
use crate::error::UserFacing;

/// What an entry point's audit record will say.
pub(crate) struct Trail {
    op: Operation,
    target_guid: Option<Guid>,
    target_sam: Option<String>,
    methods: Vec<String>,
    zones: Vec<ZoneResult>,
    detail: Option<String>,
    decoy: bool,
    /// A write reached a landing zone: the outcome stands even if the audit append fails.
    landed: bool,
}

impl Trail {
    pub fn new(op: Operation) -> Self {
        Self {
            op,
            target_guid: None,
            target_sam: None,
            methods: Vec::new(),
            zones: Vec::new(),
            detail: None,
            decoy: false,
            landed: false,
        }
    }

    /// What the record is about, when it turns out to be another operation than first thought
    /// (a helpdesk act that becomes a request for approval, an approval that runs the act).
    pub fn operation(&mut self, op: Operation) {
        self.op = op;
    }

    pub fn target(&mut self, account: &Account) {
        self.target_guid = Some(account.guid);
        self.target_sam = Some(account.sam_account_name.clone());
    }

    /// The target when only its GUID is at hand (a flow's user: no directory read for the audit).
    pub fn target_guid(&mut self, guid: Option<&Guid>) {
        self.target_guid = guid.copied();
    }

    pub fn methods(&mut self, methods: &[&str]) {
        self.methods = methods.iter().map(|m| (*m).to_owned()).collect();
    }

    pub fn zone(&mut self, zone: ZoneResult) {
        self.zones.push(zone);
    }

    /// Why (a word or two, never a secret). The first note wins: it is the closest to the cause.
    pub fn note(&mut self, why: &str) {
        self.detail.get_or_insert_with(|| why.to_owned());
    }

    /// Identify for an account that gets no code: the same answer, a different record.
    pub fn decoy(&mut self, why: &str) {
        self.decoy = true;
        self.note(why);
    }

    pub fn landed(&mut self) {
        self.landed = true;
    }
}

impl Engine {
    /// Write the entry point's one audit record and hand its result back. A failure to audit
    /// fails the operation (fail closed, invariant 34), except after a landing: the password
    /// already changed, and the person must see that.
    pub(crate) async fn record<T>(
        &self,
        ctx: &RequestContext,
        trail: Trail,
        result: EngineResult<T>,
    ) -> EngineResult<T> {
        // Landed, or as good as landed (`ZoneState::is_good`).
        let good = |z: &&ZoneResult| {
            super::zones::ZoneState::parse(&z.outcome).is_some_and(super::zones::ZoneState::is_good)
        };
        let landed = trail.zones.iter().filter(good).count();
        let outcome = match (&result, trail.decoy) {
            (Err(_), _) => "failed",
            (Ok(_), true) => "decoy",
            // A reset whose zones did not all land is not "ok", even though it answered.
            (Ok(_), false) if landed < trail.zones.len() => {
                if landed == 0 {
                    "failed"
                } else {
                    "partial"
                }
            }
            (Ok(_), false) => "ok",
        };
        let zone_code = trail.zones.iter().find_map(|z| z.code.clone());
        let event = AuditEvent {
            at_ms: unix_ms(self.inner.clock.now()),
            support_id: ctx.support_id.clone(),
            actor: ctx.actor.clone(),
            operation: trail.op,
            result: outcome.into(),
            client_ip: ctx.client_ip.clone(),
            user_agent: ctx.user_agent.clone(),
            target_guid: trail.target_guid.map(|g| g.to_string()),
            target_sam: trail.target_sam,
            methods: trail.methods,
            error_code: match &result {
                Err(e) => Some(e.code().to_owned()),
                Ok(_) => zone_code,
            },
            zones: trail.zones,
            detail: trail.detail,
        };
        match self.inner.store.append_audit(&event).await {
            Ok(record) => {
                crate::telemetry::recorded(&event, record.seq);
                result
            }
            Err(_) if trail.landed => result,
            Err(e) => Err(result.err().unwrap_or(EngineError::Store(e))),
        }
    }
}
