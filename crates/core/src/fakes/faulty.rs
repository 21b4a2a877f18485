//! A store that fails on demand: wraps another store and fails the named operations (or all),
//! as a database that went away mid-flow would.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::account::Guid;
use crate::audit::{AuditEvent, AuditRecord};
use crate::landing::BoxFuture;
use crate::store::{
    Challenge, Enrollment, FlowRecord, MethodKind, OutboxItem, Store, StoreError, StoreResult,
    UnixTime,
};

pub struct Faulty {
    pub inner: Arc<dyn Store>,
    /// Names of the `Store` methods that fail; `"*"` fails every one.
    pub failing: Mutex<HashSet<&'static str>>,
}

impl Faulty {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            failing: Mutex::new(HashSet::new()),
        }
    }

    /// Fail these operations from now on (`&["*"]`: all; `&[]`: none).
    pub fn fail(&self, ops: &[&'static str]) {
        let mut f = self
            .failing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f.clear();
        f.extend(ops.iter().copied());
    }

    fn down(&self, op: &str) -> bool {
        let f = self
            .failing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f.contains(op) || f.contains("*")
    }
}

/// Delegate each method unless it is set to fail.
macro_rules! delegate {
    ($($name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty;)*) => {$(
        fn $name<'a>(&'a self, $($arg: $ty),*) -> BoxFuture<'a, StoreResult<$ret>> {
            if self.down(stringify!($name)) {
                return Box::pin(std::future::ready(Err(StoreError::Unavailable(
                    concat!("fake outage: ", stringify!($name)).into(),
                ))));
            }
            self.inner.$name($($arg),*)
        }
    )*};
}

impl Store for Faulty {
    delegate! {
        insert_flow(flow: &'a FlowRecord) -> ();
        flow(id: &'a str, now: UnixTime) -> Option<FlowRecord>;
        update_flow(flow: &'a FlowRecord) -> bool;
        delete_flow(id: &'a str) -> bool;
        delete_user_flows(user: &'a Guid) -> u64;
        enrollments(user: &'a Guid) -> Vec<Enrollment>;
        upsert_enrollment(e: &'a Enrollment) -> ();
        delete_enrollment(user: &'a Guid, method: MethodKind) -> bool;
        put_challenge(c: &'a Challenge) -> ();
        challenge(flow_id: &'a str, purpose: &'a str, now: UnixTime) -> Option<Challenge>;
        fail_challenge(id: &'a str) -> Option<u32>;
        consume_challenge(id: &'a str) -> bool;
        hit(key: &'a str, now: UnixTime, window: i64) -> u32;
        hits(key: &'a str, now: UnixTime, window: i64) -> u32;
        reserve(key: &'a str, now: UnixTime, window: i64, limit: u32) -> Option<i64>;
        release(key: &'a str, id: i64) -> bool;
        lock(key: &'a str, until: UnixTime) -> ();
        locked_until(key: &'a str, now: UnixTime) -> Option<UnixTime>;
        append_audit(event: &'a AuditEvent) -> AuditRecord;
        enqueue(item: &'a OutboxItem) -> ();
        claim(now: UnixTime, lease: i64, limit: u32) -> Vec<OutboxItem>;
        finish(id: &'a str, attempts: u32) -> bool;
        retry(id: &'a str, attempts: u32, at: UnixTime) -> bool;
        audit_after(after: i64, limit: u32) -> Vec<AuditRecord>;
    }
}
