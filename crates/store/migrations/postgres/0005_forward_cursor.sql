-- Rekey store, PostgreSQL: the audit forwarder's cursor (rekey's `forward.rs`), one row per
-- syslog target. `seq` and `hash` name the last record the target is known to have been sent (0
-- and no hash: nothing yet); after a restart the forwarder resends from the record after it, so
-- a target gets every record at least once (a duplicate carries the same seq). `holder` and
-- `held_until_ms` are a lease: with several replicas on one database, one of them forwards.

CREATE TABLE audit_forward (
    target        TEXT   NOT NULL PRIMARY KEY,
    seq           BIGINT NOT NULL DEFAULT 0 CHECK (seq >= 0),
    hash          BYTEA  CHECK (hash IS NULL OR octet_length(hash) = 32),
    holder        TEXT   NOT NULL DEFAULT '',
    held_until_ms BIGINT NOT NULL DEFAULT 0,
    updated_ms    BIGINT NOT NULL DEFAULT 0
);
