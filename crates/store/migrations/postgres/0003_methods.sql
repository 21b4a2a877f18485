-- Rekey store, PostgreSQL: enrollments carry a method's material (TOTP, passkeys, questions).

-- Existing rows (email, SMS) get the values of a contact method: no data, nothing sealed, no lookup
-- key, never used.
ALTER TABLE enrollments
    ADD COLUMN data         BYTEA  NOT NULL DEFAULT ''::bytea,
    ADD COLUMN key_id       TEXT   NOT NULL DEFAULT '',
    ADD COLUMN lookup       TEXT,
    ADD COLUMN last_used_at BIGINT;

-- A lookup key (a passkey's user handle) names one enrollment of its method, whoever's.
CREATE UNIQUE INDEX enrollments_lookup ON enrollments (method, lookup) WHERE lookup IS NOT NULL;
