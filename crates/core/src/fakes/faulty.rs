//! A store that fails on demand: wraps another store and fails the named operations (or all),
//! as a database that went away mid-flow would. It can also make every operation yield once
//! before it runs (`yielding`), so futures polled side by side (`fakes::run_all`) interleave at
//! every store call the way concurrent requests on several replicas do.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

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
    /// While set, every operation is pending once (and wakes itself) before it runs.
    pub yielding: AtomicBool,
}

/// Pending on the first poll, ready on the second.
#[derive(Default)]
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

impl Faulty {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            failing: Mutex::new(HashSet::new()),
            yielding: AtomicBool::new(false),
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
            if self.yielding.load(Ordering::Relaxed) {
                // Others run first; then the operation, as one statement, at its own turn.
                Box::pin(async move {
                    YieldOnce::default().await;
                    self.inner.$name($($arg),*).await
                })
            } else {
                self.inner.$name($($arg),*)
            }
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
        enrollment_by_lookup(method: MethodKind, lookup: &'a str) -> Option<Enrollment>;
        touch_enrollment(user: &'a Guid, method: MethodKind, at: UnixTime) -> bool;
        all_enrollments() -> Vec<Enrollment>;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::Faulty;
    use crate::fakes::{MemStore, run_all};
    use crate::store::Store;

    /// With `yielding`, side-by-side futures really interleave: a limit that is read, then
    /// counted (the race the engine must avoid) lets all 30 through; `reserve` lets 3.
    #[test]
    fn yielding_interleaves_store_calls() {
        let store = Faulty::new(Arc::new(MemStore::default()));
        store.yielding.store(true, Ordering::Relaxed);
        let racy = |key: &'static str| {
            let store = &store;
            async move {
                let seen = store.hits(key, 100, 60).await.unwrap();
                if seen < 3 {
                    store.hit(key, 100, 60).await.unwrap();
                    true
                } else {
                    false
                }
            }
        };
        let through = run_all((0..30).map(|_| racy("racy")).collect());
        assert_eq!(through.iter().filter(|t| **t).count(), 30);
        let reserved = run_all((0..30).map(|_| store.reserve("safe", 100, 60, 3)).collect());
        assert_eq!(
            reserved.iter().filter(|r| matches!(r, Ok(Some(_)))).count(),
            3
        );
    }
}
