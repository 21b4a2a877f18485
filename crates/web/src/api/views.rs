//! The answer types the self-service and helpdesk operations share: the outcome of a reset,
//! unlock or change per zone, in the request's language.

use rekey_core::ZoneId;
use rekey_core::engine::{ResetOutcome, ZoneReport, ZoneState};
use serde::Serialize;
use utoipa::ToSchema;

use crate::i18n::Texts;

/// A zone the password is written to.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ZoneName {
    ActiveDirectory,
    EntraId,
}

/// A zone's state.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ZoneStateName {
    Landed,
    Rejected,
    Failed,
    Indeterminate,
    Absent,
    Queued,
    Pending,
    Synced,
    NotSynced,
}

/// One zone's result.
#[derive(Serialize, ToSchema)]
pub(crate) struct ZoneView {
    zone: ZoneName,
    state: ZoneStateName,
    /// The stable code of a refusal or failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    /// Its plain message.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// `synced`: seconds from the write to the arrival; `not_synced`: the deadline.
    #[serde(skip_serializing_if = "Option::is_none")]
    secs: Option<i64>,
    /// Whether the zone ended the user's sign-in sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    sessions_revoked: Option<bool>,
}

/// The end of a reset, unlock or change, per zone.
#[derive(Serialize, ToSchema)]
pub(crate) struct Outcome {
    /// Every zone landed (or needs nothing).
    ok: bool,
    /// In plain words.
    message: String,
    zones: Vec<ZoneView>,
    /// While a zone is still moving: ask `/api/v1/result` with this until every zone is final.
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt: Option<String>,
    support_id: String,
}

pub(crate) fn outcome(t: &Texts, done: &str, out: &ResetOutcome) -> Outcome {
    let ok = out.landed_everywhere();
    let first_landed = out
        .zones
        .first()
        .is_some_and(|z| z.state == ZoneState::Landed);
    let message = if ok {
        done.to_owned()
    } else if first_landed {
        t.partly_done.to_owned()
    } else {
        out.zones
            .iter()
            .find_map(|z| zone_message(t, z))
            .unwrap_or_else(|| done.to_owned())
    };
    Outcome {
        ok,
        message,
        zones: out.zones.iter().map(|z| zone_view(t, z)).collect(),
        receipt: out.receipt.clone(),
        support_id: out.support_id.clone(),
    }
}

fn zone_message(t: &Texts, z: &ZoneReport) -> Option<String> {
    let english = z.message.as_deref()?;
    Some(crate::catalog::zone_text(
        t.lang,
        z.code.as_deref().unwrap_or(""),
        english,
    ))
}

fn zone_view(t: &Texts, z: &ZoneReport) -> ZoneView {
    ZoneView {
        zone: match z.zone {
            ZoneId::ActiveDirectory => ZoneName::ActiveDirectory,
            ZoneId::EntraId => ZoneName::EntraId,
        },
        state: match z.state {
            ZoneState::Landed => ZoneStateName::Landed,
            ZoneState::Rejected => ZoneStateName::Rejected,
            ZoneState::Failed => ZoneStateName::Failed,
            ZoneState::Indeterminate => ZoneStateName::Indeterminate,
            ZoneState::Absent => ZoneStateName::Absent,
            ZoneState::Queued => ZoneStateName::Queued,
            ZoneState::Pending => ZoneStateName::Pending,
            ZoneState::Synced => ZoneStateName::Synced,
            ZoneState::NotSynced => ZoneStateName::NotSynced,
        },
        code: z.code.clone(),
        message: zone_message(t, z),
        secs: z.secs,
        sessions_revoked: z.sessions_revoked,
    }
}
