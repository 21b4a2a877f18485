-- Rekey store, PostgreSQL: signed checkpoints of the audit chain (rekey_core::audit_checkpoint).
-- A checkpoint says "record `seq` had hash `hash` at `at_ms`", signed with an Ed25519 key that
-- never enters the database; `rekey audit verify` detects a truncated tail with it. No foreign
-- key to audit: a checkpoint must outlive the records an attacker removes.

CREATE TABLE audit_checkpoints (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seq       BIGINT NOT NULL CHECK (seq > 0),
    hash      BYTEA  NOT NULL CHECK (octet_length(hash) = 32),
    at_ms     BIGINT NOT NULL,
    key_id    TEXT   NOT NULL,
    signature BYTEA  NOT NULL CHECK (octet_length(signature) = 64)
);

-- Invariant 32: checkpoints are append-only, like the audit rows they vouch for, whoever asks
--. An operator should also
--   REVOKE UPDATE, DELETE, TRUNCATE ON audit_checkpoints FROM rekey_app;
CREATE FUNCTION rekey_audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit checkpoints are append-only';
END
$$;
CREATE TRIGGER audit_checkpoints_no_update_delete BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION rekey_audit_checkpoints_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION rekey_audit_checkpoints_append_only();
