-- Rekey store, PostgreSQL. GUIDs are the 16 raw objectGUID bytes; times are Unix seconds.

CREATE TABLE flows (
    id         TEXT   NOT NULL PRIMARY KEY,
    kind       TEXT   NOT NULL,
    user_guid  BYTEA  CHECK (user_guid IS NULL OR octet_length(user_guid) = 16),
    state      TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX flows_user ON flows (user_guid);
CREATE INDEX flows_expires ON flows (expires_at);

CREATE TABLE enrollments (
    user_guid   BYTEA  NOT NULL CHECK (octet_length(user_guid) = 16),
    method      TEXT   NOT NULL,
    value       TEXT   NOT NULL,
    verified_at BIGINT NOT NULL,
    PRIMARY KEY (user_guid, method)
);

-- A challenge dies with its flow (deleting a user's flows kills their codes, invariant 8).
CREATE TABLE challenges (
    id              TEXT   NOT NULL PRIMARY KEY,
    flow_id         TEXT   NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    user_guid       BYTEA  NOT NULL CHECK (octet_length(user_guid) = 16),
    purpose         TEXT   NOT NULL,
    code_hash       BYTEA  NOT NULL,
    expires_at      BIGINT NOT NULL,
    failed_attempts BIGINT NOT NULL CHECK (failed_attempts >= 0),
    UNIQUE (flow_id, purpose)
);
CREATE INDEX challenges_expires ON challenges (expires_at);

CREATE TABLE rate_events (
    event_key   TEXT   NOT NULL,
    happened_at BIGINT NOT NULL
);
CREATE INDEX rate_events_key_at ON rate_events (event_key, happened_at);
CREATE INDEX rate_events_at ON rate_events (happened_at);

CREATE TABLE locks (
    lock_key     TEXT   NOT NULL PRIMARY KEY,
    locked_until BIGINT NOT NULL
);

CREATE TABLE audit (
    seq       BIGINT NOT NULL PRIMARY KEY CHECK (seq > 0),
    body      TEXT   NOT NULL,
    prev_hash BYTEA  NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash      BYTEA  NOT NULL CHECK (octet_length(hash) = 32),
    at_ms     BIGINT NOT NULL
);

-- Invariant 32: audit rows are append-only, whoever asks. The trigger is the enforced part; an
-- operator should also run the application as a role that does not own the tables and has
--   REVOKE UPDATE, DELETE, TRUNCATE ON audit FROM rekey_app;
-- so that it cannot drop or disable the trigger either.
CREATE FUNCTION rekey_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit records are append-only';
END
$$;
CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION rekey_audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION rekey_audit_append_only();
