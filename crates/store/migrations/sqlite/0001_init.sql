-- Rekey store, SQLite. GUIDs are the 16 raw objectGUID bytes; times are Unix seconds.

CREATE TABLE flows (
    id         TEXT    NOT NULL PRIMARY KEY,
    kind       TEXT    NOT NULL,
    user_guid  BLOB    CHECK (user_guid IS NULL OR length(user_guid) = 16),
    state      TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX flows_user ON flows (user_guid);
CREATE INDEX flows_expires ON flows (expires_at);

CREATE TABLE enrollments (
    user_guid   BLOB    NOT NULL CHECK (length(user_guid) = 16),
    method      TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    verified_at INTEGER NOT NULL,
    PRIMARY KEY (user_guid, method)
) STRICT;

-- A challenge dies with its flow (deleting a user's flows kills their codes, invariant 8).
CREATE TABLE challenges (
    id              TEXT    NOT NULL PRIMARY KEY,
    flow_id         TEXT    NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    user_guid       BLOB    NOT NULL CHECK (length(user_guid) = 16),
    purpose         TEXT    NOT NULL,
    code_hash       BLOB    NOT NULL,
    expires_at      INTEGER NOT NULL,
    failed_attempts INTEGER NOT NULL CHECK (failed_attempts >= 0),
    UNIQUE (flow_id, purpose)
) STRICT;
CREATE INDEX challenges_expires ON challenges (expires_at);

CREATE TABLE rate_events (
    event_key   TEXT    NOT NULL,
    happened_at INTEGER NOT NULL
) STRICT;
CREATE INDEX rate_events_key_at ON rate_events (event_key, happened_at);
CREATE INDEX rate_events_at ON rate_events (happened_at);

CREATE TABLE locks (
    lock_key     TEXT    NOT NULL PRIMARY KEY,
    locked_until INTEGER NOT NULL
) STRICT;

CREATE TABLE audit (
    seq       INTEGER NOT NULL PRIMARY KEY CHECK (seq > 0),
    body      TEXT    NOT NULL,
    prev_hash BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash      BLOB    NOT NULL CHECK (length(hash) = 32),
    at_ms     INTEGER NOT NULL
) STRICT;

-- Invariant 32: audit rows are append-only.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;
