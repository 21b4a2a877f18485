-- Rekey store, SQLite: enrollments carry a method's material (TOTP, passkeys, questions).

-- Existing rows (email, SMS) get the values of a contact method: no data, nothing sealed, no lookup
-- key, never used.
ALTER TABLE enrollments ADD COLUMN data BLOB NOT NULL DEFAULT x'';
ALTER TABLE enrollments ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
ALTER TABLE enrollments ADD COLUMN lookup TEXT;
ALTER TABLE enrollments ADD COLUMN last_used_at INTEGER;

-- A lookup key (a passkey's user handle) names one enrollment of its method, whoever's.
CREATE UNIQUE INDEX enrollments_lookup ON enrollments (method, lookup) WHERE lookup IS NOT NULL;
