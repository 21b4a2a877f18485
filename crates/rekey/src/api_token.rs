//! `rekey admin api-token`: a bearer token for one integration of the JSON API.

use crate::admin::CliError;
use crate::config::Config;

/// Make a token for integration `name` with `scopes`.
///
/// # Errors
/// Not built yet.
pub fn command(_config: &Config, _name: &str, _scopes: &[String]) -> Result<(), CliError> {
    Err(CliError::Input(std::io::Error::other("not built yet")))
}
