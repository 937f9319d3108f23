-- Journal database, schema version 1. Applied by posp-node's store on open; never edit a
-- released version: add schema_v2.sql and a migration instead.
-- Rows are never deleted by the service: states change, SAF entries move to DONE or
-- EXCEPTION, and every SAF transmission is an event row.

CREATE TABLE journal (
    id              INTEGER PRIMARY KEY,
    created_at      INTEGER NOT NULL,          -- unix millis, caller's clock
    updated_at      INTEGER NOT NULL,
    origin          TEXT    NOT NULL,          -- TERMINAL | NODE
    terminal_id     TEXT    NOT NULL,          -- field 41
    merchant_id     TEXT    NOT NULL,          -- field 42
    batch           INTEGER NOT NULL,
    stan            INTEGER NOT NULL,          -- terminal's field 11
    local_date      TEXT    NOT NULL,          -- MMDD
    local_time      TEXT    NOT NULL,          -- hhmmss
    kind            TEXT    NOT NULL,          -- PURCHASE, ...
    mti             TEXT    NOT NULL,
    processing_code TEXT    NOT NULL,
    amount          INTEGER NOT NULL,          -- fen
    masked_pan      TEXT,                      -- first 6 / last 4 only, never clear
    state           TEXT    NOT NULL,          -- PENDING, SENT, ...
    response_code   TEXT,
    rrn             TEXT,
    auth_code       TEXT,
    upstream_stan   INTEGER,
    original_id     INTEGER REFERENCES journal(id),
    request_hex     TEXT    NOT NULL,          -- masked by the caller
    response_hex    TEXT,                      -- masked by the caller
    idem_key        TEXT UNIQUE                -- terminal/batch/stan/datetime/kind; NULL for NODE
);
CREATE INDEX journal_terminal_stan ON journal (terminal_id, stan);
CREATE INDEX journal_rrn ON journal (rrn) WHERE rrn IS NOT NULL;
CREATE INDEX journal_created ON journal (created_at);
CREATE INDEX journal_local_date ON journal (local_date);
CREATE INDEX journal_batch ON journal (terminal_id, batch);
CREATE INDEX journal_unfinished ON journal (id) WHERE state IN ('PENDING', 'SENT');

CREATE TABLE saf (
    id              INTEGER PRIMARY KEY,       -- order within a destination
    destination     TEXT    NOT NULL,
    journal_id      INTEGER REFERENCES journal(id),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    mti             TEXT    NOT NULL,
    repeat_mti      INTEGER NOT NULL,          -- 0 | 1
    message_hex     TEXT    NOT NULL,
    status          TEXT    NOT NULL,          -- QUEUED | DONE | EXCEPTION
    sends           INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,-- responses received
    last_response   TEXT,
    reason          TEXT                       -- why it is in EXCEPTION
);
CREATE INDEX saf_destination_status ON saf (destination, status, id);
CREATE INDEX saf_status ON saf (status, id);

CREATE TABLE saf_event (
    id              INTEGER PRIMARY KEY,
    saf_id          INTEGER NOT NULL REFERENCES saf(id),
    at              INTEGER NOT NULL,          -- unix millis, caller's clock
    event           TEXT    NOT NULL,          -- ENQUEUED | SENT | REPEAT | COMPLETED | EXCEPTION
    send_no         INTEGER,
    mti             TEXT,
    response_code   TEXT,
    detail          TEXT
);
CREATE INDEX saf_event_saf ON saf_event (saf_id, id);
