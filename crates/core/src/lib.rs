//! Rekey's pure domain model.
//!
//! Architecture invariant: this crate does no I/O and needs no async runtime. It knows nothing of
//! LDAP, HTTP or SQL; adapters implement the ports defined here (`Directory`, `LandingZone`) and the
//! binary wires them. Time is always a parameter (`FileTime` / `SystemTime` passed in).

pub mod account;
pub mod audit;
pub mod audit_checkpoint;
pub mod audit_export;
pub mod banned;
pub mod breached;
pub mod clock;
pub mod engine;
pub mod error;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod keyring;
pub mod landing;
pub mod mask;
pub mod method;
pub mod notify;
pub mod otp;
pub mod passkey;
pub mod policy;
pub mod pow;
pub mod questions;
pub mod scope;
pub mod secret;
pub mod store;
#[cfg(feature = "system")]
pub mod system;
mod telemetry;
pub mod tier;
pub mod totp;

pub use account::{Account, AccountState, Guid, Identifier, Sid};
pub use error::UserFacing;
pub use landing::{
    BoxFuture, Diagnostic, Directory, DirectoryError, Landed, LandingError, LandingZone, Rejection,
    ResetOptions, WriteGrant, ZoneId,
};
pub use policy::{PasswordPolicy, PolicySource, Violation};
pub use secret::Password;
pub use tier::{ProtectedGroups, Tier};
