//! A users import from a request body: the body checked on a thread of its
//! own while the writer begins, its rows read as the engine stages them.

use super::*;

/// Bytes a row of a request body rarely exceeds.
const LIKELY_MAX_ROW_BYTES: usize = 256;
/// A request body this large almost surely holds a bulk import's rows.
const LIKELY_BULK_BODY_BYTES: usize = BULK_ROWS * LIKELY_MAX_ROW_BYTES;

/// Imports users from a request body that `parse` checks on a thread of its
/// own. When the body is large enough to hold a bulk import, the writer
/// meanwhile begins the import and reads the enterprise's people, while that
/// thread reads rows ahead ([`read_until`]). A smaller body is
/// checked before the writer is asked for, which it would otherwise hold idle
/// while many small imports are checked one after the other. A body `parse`
/// refuses writes nothing.
pub async fn import_users_parsing(
    svc: &Services,
    enterprise: EnterpriseId,
    body_bytes: usize,
    operation: SyncOperation,
    parse: impl FnOnce() -> Result<(StagedRequest, RowStream), AppError> + Send + 'static,
) -> Result<StagedOutcome, AppError> {
    if body_bytes < LIKELY_BULK_BODY_BYTES {
        let (request, rows) = tokio::task::spawn_blocking(parse)
            .await
            .map_err(|e| AppError::Internal(format!("reading the request body: {e}")))??;
        return import_users(svc, request, rows, operation, None).await;
    }
    let now = svc.clock.now();
    let match_in_memory_up_to = svc.config.imports.match_in_memory_up_to;
    let (parsed, parsed_rows) = std::sync::mpsc::sync_channel(1);
    // A body the parser refuses is answered at once, not once the writer
    // (perhaps busy with a long import) reaches the request.
    let (refusal, refused) = tokio::sync::oneshot::channel::<AppError>();
    let writer_ready = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let staging_begins = writer_ready.clone();
    let parsing = tokio::task::spawn_blocking(move || match parse() {
        Ok((request, rows)) => {
            let rows = read_until(rows, &staging_begins);
            // The writer's job may have ended (the database closing), which
            // leaves no one to tell.
            let _ = parsed.send((request, rows));
        }
        Err(e) => {
            let _ = refusal.send(e);
            // Dropping `parsed` then tells the writer's job.
        }
    });
    // A body this large is a bulk import: its WAL is synced as it is written.
    let write = svc.db.write_large(move |txn| {
        let unread = || AppError::Internal("the request body could not be read".into());
        // A body refused before the writer came to it costs no read.
        let ready = match parsed_rows.try_recv() {
            Ok(parsed) => Some(parsed),
            Err(std::sync::mpsc::TryRecvError::Empty) => None,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return Err(unread()),
        };
        let early = early_people(txn, enterprise, body_bytes, match_in_memory_up_to)?;
        writer_ready.store(true, std::sync::atomic::Ordering::Release);
        let (request, rows) = match ready {
            Some(parsed) => parsed,
            None => parsed_rows.recv().map_err(|_| unread())?,
        };
        let bulk = request.bulk();
        let source = request.source.kind.sync_type();
        let report = import_in(txn, &request, rows, operation, None, now, early)?;
        Ok((report, bulk, source))
    });
    tokio::pin!(write);
    let outcome = tokio::select! {
        biased;
        refusal = refused => match refusal {
            Ok(refusal) => return Err(refusal),
            // Parsed (or the parser panicked, which the writer's job reports).
            Err(_) => write.await,
        },
        outcome = &mut write => outcome,
    };
    // Already done when the writer had its rows.
    let _ = parsing.await;
    match outcome {
        Ok((report, bulk, source)) => settle_outcome(svc, Ok(report), bulk, source),
        Err(e) => settle_outcome(svc, Err(e), true, ""),
    }
}

/// Rows read ahead at most while the writer reads the people: some 8 MB. A
/// re-sync of 100,000 rows reads about as many in the time the writer reads
/// 100,000 people; 50,000 took 15–20 MiB more at the re-sync's peak (the
/// service's highest in `scripts/bench-import`) for no faster a re-sync.
const READ_AHEAD_MAX: usize = 20_000;

/// Reads `rows` (whose fields are read as they are taken) until `ready`
/// says the writer has read the enterprise's people, or [`READ_AHEAD_MAX`]
/// rows, then hands over those read and the rest, which the engine's
/// reading thread reads as it checks them. A large re-sync reads rows while
/// the writer reads the people (the two longest steps of its start); an
/// import into an enterprise without staff, which reads no one, leaves its
/// rows to the reading thread while the writer stages them. Neither holds a
/// whole body's parsed rows (100,000 of them: some 45 MB).
fn read_until(mut rows: RowStream, ready: &std::sync::atomic::AtomicBool) -> RowStream {
    let mut read = Vec::new();
    while read.len() < READ_AHEAD_MAX && !ready.load(std::sync::atomic::Ordering::Acquire) {
        match rows.next() {
            Some(row) => read.push(row),
            None => break,
        }
    }
    if read.is_empty() {
        return rows;
    }
    Box::new(read.into_iter().chain(rows))
}

/// The people a bulk import of a body `body_bytes` long stages with, read
/// before its rows are parsed: as [`People::read`] would for it, guessing
/// the row count from the body (at most one row in [`LIKELY_MAX_ROW_BYTES`]). `None` for
/// an enterprise without staff.
fn early_people(
    txn: &Connection,
    enterprise: EnterpriseId,
    body_bytes: usize,
    match_in_memory_up_to: usize,
) -> Result<Option<People>, AppError> {
    let staff = store::users::staff_counts(txn, enterprise)?.total;
    if staff <= 0 {
        return Ok(None);
    }
    let likely_rows = body_bytes / LIKELY_MAX_ROW_BYTES;
    let staff_count = usize::try_from(staff).unwrap_or(usize::MAX);
    let index = staff_count <= match_in_memory_up_to
        && likely_rows.saturating_mul(MATCH_IN_MEMORY_FROM_FRACTION) >= staff_count;
    Ok(Some(People::read(txn, enterprise, staff, true, index)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn rows(count: usize) -> (RowStream, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = taken.clone();
        let stream: RowStream = Box::new((0..count).map(move |i| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(SourceRow {
                record: crate::domain::import::UserRecord {
                    external_id: Some(format!("E{i}")),
                    ..Default::default()
                },
                problems: Vec::new(),
                problems_key: None,
                ignored_fields: Vec::new(),
            })
        }));
        (stream, taken)
    }

    fn external_ids(stream: RowStream) -> Vec<String> {
        stream
            .map(|row| row.expect("row").record.external_id.expect("id"))
            .collect()
    }

    #[test]
    fn rows_are_read_ahead_only_while_the_writer_reads_the_people_and_within_the_bound() {
        // The writer ready at once: no row is read ahead of the engine.
        let (stream, taken) = rows(10);
        let handed = read_until(stream, &AtomicBool::new(true));
        assert_eq!(taken.load(std::sync::atomic::Ordering::Relaxed), 0);
        assert_eq!(external_ids(handed).len(), 10);
        // The writer still reading: rows are read ahead, at most the bound,
        // and the engine gets every row once, in order.
        let count = READ_AHEAD_MAX + 5;
        let (stream, taken) = rows(count);
        let handed = read_until(stream, &AtomicBool::new(false));
        assert_eq!(
            taken.load(std::sync::atomic::Ordering::Relaxed),
            READ_AHEAD_MAX
        );
        let ids = external_ids(handed);
        assert_eq!(ids.len(), count);
        assert!(ids.iter().enumerate().all(|(i, id)| *id == format!("E{i}")));
    }
}
