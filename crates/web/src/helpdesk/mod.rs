//! The helpdesk console: operators sign in, verify a caller, then act.

use axum::Router;

use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
}
