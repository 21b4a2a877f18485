//! Rekey's binary crate as a library: the configuration, the one wiring of engine and portal
//! (`portal::build_portal`, used by `rekey serve`, the browser tests and the benchmark), and the
//! operator commands. `main.rs` is only the command line.

pub mod admin;
pub mod api_token;
pub mod audit_chain;
pub mod audit_cmd;
pub mod canary;
pub mod check;
pub mod config;
pub mod doctor;
pub mod forward;
pub mod keys;
pub mod ops;
pub mod portal;
pub mod remind;
mod secrets;
pub mod serve;
pub mod tls;
