-- What an import changed, recorded in batches instead of one row per record.
--
-- A 100,000-row import used to write 100,000 change events and 100,000 per-record
-- sync-log entries that said the same thing (run, record, verb); together they cost
-- more than the users themselves. A batch holds up to a fixed number of events of
-- one run as a JSON array, is written in the import's transaction (so no event is
-- lost and none outlives a rolled-back import), is what a webhook delivery will
-- send (one request per batch, not one per record), and is where the sync-log
-- API reads a run's per-record entries (user_created, store_updated, …) from.
CREATE TABLE change_batches (
    seq                     INTEGER PRIMARY KEY AUTOINCREMENT,
    enterprise_account_id   TEXT NOT NULL REFERENCES enterprise_accounts(id),
    -- The sync_logs run entry of the import.
    run_id                  TEXT NOT NULL,
    -- Position of the batch's first event in its run: record entries keep
    -- stable numbers whatever the batch size.
    first_index             INTEGER NOT NULL CHECK (first_index >= 0),
    event_count             INTEGER NOT NULL CHECK (event_count > 0),
    -- Per verb, so a filter on one kind of change skips the batches without it.
    created_count           INTEGER NOT NULL DEFAULT 0,
    updated_count           INTEGER NOT NULL DEFAULT 0,
    deactivated_count       INTEGER NOT NULL DEFAULT 0,
    -- [{"type": "user.created", "id": "…", "external_id": "…" | null}, …] in
    -- the order the import applied them.
    events                  TEXT NOT NULL,
    created_at              TEXT NOT NULL
);
CREATE INDEX change_batches_run ON change_batches (run_id, first_index);
CREATE INDEX change_batches_enterprise_seq ON change_batches (enterprise_account_id, seq);

-- Earlier events, one batch per run (nothing consumed them yet).
INSERT INTO change_batches (enterprise_account_id, run_id, first_index, event_count,
                            created_count, updated_count, deactivated_count, events, created_at)
SELECT enterprise_account_id, run_id, 0, COUNT(*),
       SUM(event_type LIKE '%.created'), SUM(event_type LIKE '%.updated'),
       SUM(event_type LIKE '%.deactivated'),
       json_group_array(json_object('type', event_type, 'id', resource_id,
                                    'external_id', json_extract(payload, '$.external_id'))),
       MIN(created_at)
  FROM (SELECT * FROM change_events ORDER BY seq)
 GROUP BY enterprise_account_id, run_id
 ORDER BY MIN(seq);

DROP TABLE change_events;

-- Per-record sync-log entries said the same as the events above; the API now
-- derives them from the batches, so sync_logs keeps one entry per run.
DELETE FROM sync_logs WHERE run_id IS NOT NULL;
