-- Version 2: responses from the center that no request was waiting for.
CREATE TABLE link_event (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,          -- unix millis, caller's clock
    link            TEXT    NOT NULL,          -- the link's name
    event           TEXT    NOT NULL,          -- LATE_APPROVAL | LATE_DECLINE | UNMATCHED | BAD_MAC
    journal_id      INTEGER REFERENCES journal(id),
    match_key       TEXT,
    response_code   TEXT,
    message         BLOB    NOT NULL           -- as received, fields 2, 14, 35, 36, 52, 62, 64 removed
);
CREATE INDEX link_event_journal ON link_event (journal_id);
