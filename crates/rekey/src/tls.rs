//! HTTPS served by `rekey serve` itself: being written.
