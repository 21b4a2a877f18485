//! What the engine counts for `/metrics` (names and labels: docs/metrics.md). The `metrics`
//! facade does no I/O: without a recorder installed (tests, CLI commands) these are no-ops; the
//! binary installs the Prometheus recorder.
//!
//! Labels are only values from closed sets (operation, result, zone, outcome, method, channel),
//! never a user name or an address: a label per user would be a privacy leak and a cardinality
//! bomb.

use metrics::{counter, gauge};

use crate::audit::AuditEvent;

/// One audit record written: the operation and its result, and each zone's outcome.
pub(crate) fn recorded(event: &AuditEvent, seq: i64) {
    let op = event.operation.as_str();
    counter!("rekey_operations_total", "operation" => op, "result" => event.result.clone())
        .increment(1);
    for z in &event.zones {
        counter!(
            "rekey_landings_total",
            "operation" => op,
            "zone" => z.zone.clone(),
            "outcome" => z.outcome.clone()
        )
        .increment(1);
    }
    #[allow(clippy::cast_precision_loss)]
    gauge!("rekey_audit_chain_head").set(seq as f64);
}

/// A verification attempt ended: passed (`ok`) or not. `method` is `Method::as_str`, or
/// `code` for a first-gate code that several methods' codes could have matched.
pub(crate) fn verification(method: &'static str, ok: bool) {
    let result = if ok { "ok" } else { "failed" };
    counter!("rekey_verifications_total", "method" => method, "result" => result).increment(1);
}

/// Self-service was locked for a user after too many failed verifications.
pub(crate) fn self_service_lock() {
    counter!("rekey_self_service_locks_total").increment(1);
}

/// A message left the outbox (`sent`) or was given up or deferred (`failed`).
pub(crate) fn message(channel: &'static str, sent: bool) {
    let result = if sent { "sent" } else { "failed" };
    counter!("rekey_messages_total", "channel" => channel, "result" => result).increment(1);
}
