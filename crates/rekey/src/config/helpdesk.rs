//! `[helpdesk]`: the console's operator group, the approvers and the sensitive groups.

use rekey_core::engine::helpdesk::HelpdeskRules;
use rekey_directory::ActiveDirectory;
use serde::Deserialize;

use crate::admin::CliError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelpdeskSection {}

impl HelpdeskSection {
    /// The engine's rules, with the groups resolved to SIDs.
    ///
    /// # Errors
    /// None yet.
    pub async fn rules(&self, _ad: &ActiveDirectory) -> Result<HelpdeskRules, CliError> {
        Ok(HelpdeskRules::default())
    }
}
