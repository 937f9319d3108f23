-- Version 3: one index on (terminal, batch, STAN) instead of (terminal, STAN) and
-- (terminal, batch).
--
-- Each insert wrote a leaf page of every index whose key starts with the terminal: with
-- many terminals sending at once, one page per terminal per index in every group commit,
-- the largest share of the journal's WAL. The combined index serves a batch's totals
-- (terminal, batch) and a terminal reversal's search for its original (terminal, batch,
-- STAN) as seeks; a search by terminal and STAN alone reads the terminal's index entries.
DROP INDEX journal_terminal_stan;
DROP INDEX journal_batch;
CREATE INDEX journal_terminal_batch_stan ON journal (terminal_id, batch, stan);
