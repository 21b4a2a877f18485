//! The `Store` contract: every test body that only uses the trait runs on SQLite, PostgreSQL and
//! the in-memory fake (`contract!`); bodies that need SQL run on both databases (`both!`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rekey_store::SqlStore;

#[macro_use]
mod support;

mod audit;
mod challenges;
mod enrollments;
mod errors;
mod flows;
mod limits;
mod outbox;
mod reserve;

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Barrier;

/// Run `n` copies of `op` at once (released together by a barrier) and collect their results.
pub async fn race<T, F, Fut>(n: usize, op: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let barrier = barrier.clone();
            let work = op(i);
            tokio::spawn(async move {
                barrier.wait().await;
                work.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}
