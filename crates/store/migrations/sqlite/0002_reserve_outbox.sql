-- Rekey store, SQLite: reservations (rate events get an id) and the outbox.

-- A rate event needs an id so a reservation can be given back (`release`). AUTOINCREMENT: an id is
-- never reused, so a stale id cannot release someone else's reservation. SQLite cannot add a
-- primary key to a table, so the table is rebuilt (events kept, in their order).
CREATE TABLE rate_events_new (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    event_key   TEXT    NOT NULL,
    happened_at INTEGER NOT NULL
) STRICT;
INSERT INTO rate_events_new (event_key, happened_at)
    SELECT event_key, happened_at FROM rate_events ORDER BY rowid;
DROP TABLE rate_events;
ALTER TABLE rate_events_new RENAME TO rate_events;
CREATE INDEX rate_events_key_at ON rate_events (event_key, happened_at);
CREATE INDEX rate_events_at ON rate_events (happened_at);

-- Work sent by a worker, never inside a request (invariant 9). `seq` is the enqueue order
-- (claims take the oldest due items first); `id` is the caller's opaque key.
CREATE TABLE outbox (
    seq        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    kind       TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    user_guid  BLOB    CHECK (user_guid IS NULL OR length(user_guid) = 16),
    not_before INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL CHECK (attempts >= 0)
) STRICT;
CREATE INDEX outbox_due ON outbox (not_before);
