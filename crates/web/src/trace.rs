//! One support id per request, made before the handler runs: the page shows it, the audit
//! record carries it, and every log line written while the request is handled is inside a span
//! that names it — so one id finds the page, the record and the log lines (JSON logs include
//! the span's fields). The path is logged without its query string; no form field is.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::AppState;

/// The request's support id, in the request's extensions (read by `Ctx`).
#[derive(Debug, Clone)]
pub(crate) struct SupportId(pub String);

pub(crate) async fn span(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let id = state.engine.support_id();
    req.extensions_mut().insert(SupportId(id.clone()));
    let span = tracing::info_span!(
        "request",
        support_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let started = Instant::now();
    let res = next.run(req).instrument(span.clone()).await;
    let _entered = span.enter();
    tracing::info!(
        status = res.status().as_u16(),
        ms = started.elapsed().as_millis(),
        "request done"
    );
    res
}
