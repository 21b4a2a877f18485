//! The `Passkeys` adapter against a software authenticator (real signatures, counters, client
//! data), and the browser script against webauthn-rs's JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod ceremonies;
mod contract;
mod script;
