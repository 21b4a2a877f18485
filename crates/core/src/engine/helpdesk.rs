//! The helpdesk console's engine calls and approvals for high-risk accounts.

use crate::account::Sid;

/// Who may use the helpdesk console, who approves, and whose accounts need approval.
#[derive(Debug, Clone, Default)]
pub struct HelpdeskRules {
    /// Members (transitive) of these groups may sign in to the console; empty: no console.
    pub operator_groups: Vec<Sid>,
}
