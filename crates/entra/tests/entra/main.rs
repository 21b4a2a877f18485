//! The EntraId landing zone against the in-process Graph test double (`rekey-graph-double`),
//! plus a scripted stub for the answers the double never gives. One test binary: links once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code panics by design

mod faults;
mod plan;
mod reset;
mod support;
mod tokens;
