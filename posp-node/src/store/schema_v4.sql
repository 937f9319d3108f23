-- Version 4: duplicates are found through one index on (terminal, batch, STAN, local date,
-- local time, kind), which also serves every search by terminal; the idem_key column and
-- the journal_terminal_batch_stan index are no longer written to.
--
-- Both the idem_key UNIQUE index and journal_terminal_batch_stan start with the terminal:
-- every terminal request wrote a leaf page of each in every group commit (one page per
-- terminal per index). One index now does both jobs.
--
-- terminal_request is 1 for a terminal's request and NULL for the node's own entries.
-- NULLs are distinct in a UNIQUE index, so the node's entries never conflict, while two
-- terminal requests with the same six fields do: the rule idem_key enforced.
ALTER TABLE journal ADD COLUMN terminal_request INTEGER
    CHECK (terminal_request IS NULL OR terminal_request = 1);
UPDATE journal SET terminal_request = 1 WHERE origin = 'TERMINAL';
CREATE UNIQUE INDEX journal_idempotency
    ON journal (terminal_id, batch, stan, local_date, local_time, kind, terminal_request);
DROP INDEX journal_terminal_batch_stan;
-- idem_key keeps its values in rows written before version 4; new rows leave it NULL (its
-- UNIQUE index then gets one entry at a single place per insert, the NULLs' end).
--
-- The request and the response are kept as bytes (a BLOB) rather than hex text: half the
-- bytes in every row, and no encoding on the way in or out. Rows written before keep their
-- hex text, which readers take too; the columns lose the "_hex" of their names.
ALTER TABLE journal RENAME COLUMN request_hex TO request;
ALTER TABLE journal RENAME COLUMN response_hex TO response;
