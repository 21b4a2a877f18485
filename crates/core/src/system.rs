//! The real clock and the OS CSPRNG (feature `system`): the only place `rekey-core` touches the
//! operating system. Binaries and end-to-end tests use these; unit tests use fixed ones.

use std::time::SystemTime;

use crate::clock::{Clock, Random};

/// Wall-clock time.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The operating system's CSPRNG (`getrandom`).
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        // The OS generator does not fail on Linux once booted; if it ever did, continuing with
        // predictable codes would be worse than stopping.
        if getrandom::fill(buf).is_err() {
            std::process::abort();
        }
    }
}
