-- Rekey store, PostgreSQL: reservations (rate events get an id) and the outbox.

-- A rate event needs an id so a reservation can be given back (`release`). Existing events get
-- ids on the way in. An identity column needs no sequence privilege for the service role.
ALTER TABLE rate_events ADD COLUMN id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY;

-- Work sent by a worker, never inside a request (invariant 9). `seq` is the enqueue order
-- (claims take the oldest due items first); `id` is the caller's opaque key.
CREATE TABLE outbox (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT   NOT NULL UNIQUE,
    kind       TEXT   NOT NULL,
    payload    BYTEA  NOT NULL,
    user_guid  BYTEA  CHECK (user_guid IS NULL OR octet_length(user_guid) = 16),
    not_before BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts   BIGINT NOT NULL CHECK (attempts >= 0)
);
CREATE INDEX outbox_due ON outbox (not_before);
