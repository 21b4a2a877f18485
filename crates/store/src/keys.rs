//! Re-sealing stored secrets under a new key (`rekey admin rotate-key`).
