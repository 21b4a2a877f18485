-- Rekey store, SQLite: signed checkpoints of the audit chain (rekey_core::audit_checkpoint).
-- A checkpoint says "record `seq` had hash `hash` at `at_ms`", signed with an Ed25519 key that
-- never enters the database; `rekey audit verify` detects a truncated tail with it. No foreign
-- key to audit: a checkpoint must outlive the records an attacker removes.

CREATE TABLE audit_checkpoints (
    id        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    seq       INTEGER NOT NULL CHECK (seq > 0),
    hash      BLOB    NOT NULL CHECK (length(hash) = 32),
    at_ms     INTEGER NOT NULL,
    key_id    TEXT    NOT NULL,
    signature BLOB    NOT NULL CHECK (length(signature) = 64)
) STRICT;

-- Invariant 32: checkpoints are append-only, like the audit rows they vouch for.
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;
