//! Per-DC numbers for `/metrics` (docs/metrics.md): operation latency, pooled connections and
//! whether the DC answered last time. `dc` is the configured URL: a closed, operator-chosen set.

use std::time::Duration;

use metrics::{gauge, histogram};

/// One LDAP operation on `dc` took `took`; `ok`: it got an answer (any result code).
pub(crate) fn operation(dc: &str, op: &'static str, took: Duration, ok: bool) {
    histogram!("rekey_ldap_operation_duration_seconds", "dc" => dc.to_owned(), "op" => op)
        .record(took.as_secs_f64());
    dc_up(dc, ok);
}

/// Whether the last connection or operation to `dc` worked.
pub(crate) fn dc_up(dc: &str, up: bool) {
    gauge!("rekey_dc_up", "dc" => dc.to_owned()).set(if up { 1.0 } else { 0.0 });
}

/// Pooled connections to `dc` went up (`+1`) or down (`-1`).
pub(crate) fn connections(dc: &str, delta: f64) {
    gauge!("rekey_ldap_connections", "dc" => dc.to_owned()).increment(delta);
}
