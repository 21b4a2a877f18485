//! `[api]`: the integrations that may call the JSON API, each with a hashed bearer token.

use serde::Deserialize;

use crate::admin::CliError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {}

impl ApiSection {
    /// The integrations the portal accepts.
    ///
    /// # Errors
    /// None yet.
    pub fn clients(&self) -> Result<Vec<rekey_web::api::ApiClient>, CliError> {
        Ok(Vec::new())
    }
}
