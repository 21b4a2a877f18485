//! Errors with two faces: a stable code and a plain message for people, the cause for the log.

/// Implemented by every error a user or operator may see. The code is stable across releases
/// (support staff search for it); the message is plain language and never contains a raw
/// directory error, DN or server name.
pub trait UserFacing {
    fn code(&self) -> &'static str;
    fn message(&self) -> &'static str;
}
