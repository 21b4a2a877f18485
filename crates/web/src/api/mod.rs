//! The JSON API for integrations (chat bots, ticketing): the same engine calls as the pages.

use axum::Router;

use crate::AppState;

/// One integration allowed to call the API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    pub name: String,
    /// SHA-256 of its bearer token.
    pub token_sha256: [u8; 32],
    pub scopes: Vec<String>,
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
}
