//! The control routes (not Twilio), under `/_control/…`, mirroring [`crate::Handle`]'s methods.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::time::iso8601;
use crate::{Failure, Message, Shared};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Filter {
    to: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Slow {
    ms: u64,
}

fn view(m: &Message) -> Value {
    json!({
        "sid": m.sid,
        "to": m.to,
        "from": m.from,
        "messaging_service_sid": m.messaging_service_sid,
        "body": m.body,
        "at": iso8601(m.at),
    })
}

/// `GET /_control/messages[?to=+…]`: the recorded messages, oldest first.
pub(crate) async fn messages(
    State(shared): State<Arc<Shared>>,
    Query(filter): Query<Filter>,
) -> Json<Vec<Value>> {
    let st = shared.state();
    Json(
        st.messages
            .iter()
            .filter(|m| filter.to.as_ref().is_none_or(|to| m.to == *to))
            .map(view)
            .collect(),
    )
}

/// `POST /_control/fail` `{"status": 500, "code": 30008, "count": N}`.
pub(crate) async fn fail(
    State(shared): State<Arc<Shared>>,
    Json(failure): Json<Failure>,
) -> Response {
    match shared.fail(failure) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

/// `POST /_control/slow` `{"ms": N}`.
pub(crate) async fn slow(State(shared): State<Arc<Shared>>, Json(slow): Json<Slow>) -> StatusCode {
    shared.state().delay = Duration::from_millis(slow.ms);
    StatusCode::NO_CONTENT
}

/// `POST /_control/reset`.
pub(crate) async fn reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.reset();
    StatusCode::NO_CONTENT
}
