//! A run's changes, 500 events a batch. The `events` column holds the batch's JSON array
//! (V4 describes it) compressed with LZ4 as a BLOB: a bulk import writes one batch per
//! 500 rows it changes, ~46 KB of JSON each (9 MB of the 62 MB a first load of 100,000
//! people writes), and the repeated keys and time-ordered ids compress ~9x at GB/s.
//! Batches written as TEXT before are read as they are.

use chrono::{DateTime, Utc};
use rusqlite::types::{Type, ValueRef};
use rusqlite::{params, Connection, Row};

use crate::domain::EnterpriseId;

/// How many events of each verb a batch holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerbCounts {
    pub created: usize,
    pub updated: usize,
    pub deactivated: usize,
}

pub struct NewBatch<'a> {
    pub enterprise: EnterpriseId,
    pub run_id: &'a str,
    pub first_index: usize,
    pub event_count: usize,
    pub counts: VerbCounts,
    pub events_json: &'a str,
    pub now: DateTime<Utc>,
}

fn int(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Writes the batch and returns its sequence number.
pub fn insert(conn: &Connection, batch: &NewBatch<'_>) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO change_batches (enterprise_account_id, run_id, first_index, event_count,
                                     created_count, updated_count, deactivated_count, events, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        batch.enterprise,
        batch.run_id,
        int(batch.first_index),
        int(batch.event_count),
        int(batch.counts.created),
        int(batch.counts.updated),
        int(batch.counts.deactivated),
        encode(batch.events_json),
        super::ts(batch.now)
    ])?;
    Ok(conn.last_insert_rowid())
}

/// One batch by its sequence number: its run, first index and events.
pub fn by_seq(conn: &Connection, seq: i64) -> rusqlite::Result<Option<(String, Batch)>> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached("SELECT run_id, first_index, events FROM change_batches WHERE seq = ?1")?
        .query_row([seq], |row| {
            let first: i64 = row.get(1)?;
            Ok((
                row.get(0)?,
                Batch {
                    first_index: usize::try_from(first).unwrap_or(0),
                    events_json: decode(row.get_ref(2)?, 2)?,
                },
            ))
        })
        .optional()
}

/// The largest batch a stored size prefix may announce: 500 events are tens of KB, so
/// a larger prefix means a damaged row, refused before anything is allocated for it.
const MAX_DECODED_BYTES: usize = 16 << 20;

fn encode(events_json: &str) -> Vec<u8> {
    lz4_flex::compress_prepend_size(events_json.as_bytes())
}

fn decode(value: ValueRef<'_>, column: usize) -> rusqlite::Result<String> {
    let damaged = |reason: String| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            Type::Blob,
            format!("change batch events: {reason}").into(),
        )
    };
    match value {
        ValueRef::Text(text) => {
            String::from_utf8(text.to_vec()).map_err(|e| damaged(e.to_string()))
        }
        ValueRef::Blob(blob) => {
            let (prefix, compressed) = blob
                .split_first_chunk::<4>()
                .ok_or_else(|| damaged("shorter than its size prefix".into()))?;
            let size = usize::try_from(u32::from_le_bytes(*prefix)).unwrap_or(usize::MAX);
            if size > MAX_DECODED_BYTES {
                return Err(damaged(format!("announces {size} bytes")));
            }
            let json =
                lz4_flex::decompress(compressed, size).map_err(|e| damaged(e.to_string()))?;
            String::from_utf8(json).map_err(|e| damaged(e.to_string()))
        }
        other => Err(rusqlite::Error::InvalidColumnType(
            column,
            "events".into(),
            other.data_type(),
        )),
    }
}

pub struct Batch {
    pub first_index: usize,
    pub events_json: String,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Batch> {
    let first: i64 = row.get(0)?;
    Ok(Batch {
        first_index: usize::try_from(first).unwrap_or(0),
        events_json: decode(row.get_ref(1)?, 1)?,
    })
}

/// A run's batches in order, from the one holding event `from_index` on.
pub fn for_run(
    conn: &Connection,
    enterprise: EnterpriseId,
    run_id: &str,
    from_index: usize,
    limit: usize,
) -> rusqlite::Result<Vec<Batch>> {
    let mut statement = conn.prepare_cached(
        "SELECT first_index, events FROM change_batches
          WHERE run_id = ?1 AND enterprise_account_id = ?2 AND first_index + event_count > ?3
          ORDER BY first_index LIMIT ?4",
    )?;
    let rows = statement.query_map(
        params![run_id, enterprise, int(from_index), int(limit)],
        from_row,
    )?;
    rows.collect()
}

/// Which verb a reader wants; `None` takes every batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerbFilter {
    Created,
    Updated,
    Deactivated,
}

/// A run's batches backwards, those starting before event `below_index`, skipping
/// batches without the wanted verb.
pub fn for_run_backwards(
    conn: &Connection,
    enterprise: EnterpriseId,
    run_id: &str,
    below_index: usize,
    verb: Option<VerbFilter>,
    limit: usize,
) -> rusqlite::Result<Vec<Batch>> {
    let has_verb = match verb {
        None => "1",
        Some(VerbFilter::Created) => "created_count > 0",
        Some(VerbFilter::Updated) => "updated_count > 0",
        Some(VerbFilter::Deactivated) => "deactivated_count > 0",
    };
    let mut statement = conn.prepare_cached(&format!(
        "SELECT first_index, events FROM change_batches
          WHERE run_id = ?1 AND enterprise_account_id = ?2 AND first_index < ?3 AND {has_verb}
          ORDER BY first_index DESC LIMIT ?4"
    ))?;
    let rows = statement.query_map(
        params![run_id, enterprise, int(below_index), int(limit)],
        from_row,
    )?;
    rows.collect()
}

pub fn prune_older_than(conn: &Connection, cutoff: DateTime<Utc>) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM change_batches WHERE created_at < ?1")?
        .execute([super::ts(cutoff)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut conn = Connection::open(dir.path().join("batches.db")).expect("open");
        crate::store::migrations::run(&mut conn).expect("migrate");
        (dir, conn)
    }

    fn enterprise(conn: &Connection) -> EnterpriseId {
        let id = EnterpriseId::generate();
        conn.execute(
            "INSERT INTO enterprise_accounts (id, company_name, company_email, sync_mode, created_at, updated_at)
             VALUES (?1, 'Acme', 'it@acme.example', 'api', 't', 't')",
            [id],
        )
        .expect("enterprise");
        id
    }

    fn events(count: usize) -> String {
        let first = crate::domain::UserId::generate().0.as_u128();
        let events: Vec<String> = (0..count)
            .map(|i| {
                let id = uuid::Uuid::from_u128(first + i as u128);
                format!(r#"{{"type":"user.created","id":"{id}","external_id":"EMP-{i}"}}"#)
            })
            .collect();
        format!("[{}]", events.join(","))
    }

    fn write(conn: &Connection, enterprise: EnterpriseId, events_json: &str) -> i64 {
        insert(
            conn,
            &NewBatch {
                enterprise,
                run_id: "run-1",
                first_index: 0,
                event_count: 500,
                counts: VerbCounts {
                    created: 500,
                    ..VerbCounts::default()
                },
                events_json,
                now: Utc::now(),
            },
        )
        .expect("insert")
    }

    #[test]
    fn a_batch_is_stored_compressed_and_read_back_as_written() {
        let (_dir, conn) = database();
        let enterprise = enterprise(&conn);
        let json = events(500);
        let seq = write(&conn, enterprise, &json);
        let (kind, stored): (String, i64) = conn
            .query_row(
                "SELECT typeof(events), length(events) FROM change_batches WHERE seq = ?1",
                [seq],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("stored row");
        assert_eq!(kind, "blob");
        assert!(
            stored * 4 < json.len() as i64,
            "{stored} bytes for {}",
            json.len()
        );
        let (run_id, batch) = by_seq(&conn, seq).expect("read").expect("present");
        assert_eq!(
            (run_id.as_str(), batch.events_json.as_str()),
            ("run-1", json.as_str())
        );
        let batches = for_run(&conn, enterprise, "run-1", 0, 10).expect("read the run");
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].events_json, json);
        let backwards =
            for_run_backwards(&conn, enterprise, "run-1", 1, Some(VerbFilter::Created), 10)
                .expect("read backwards");
        assert_eq!(backwards[0].events_json, json);
    }

    #[test]
    fn batches_written_as_text_before_are_read_as_they_are() {
        let (_dir, conn) = database();
        let enterprise = enterprise(&conn);
        let json = r#"[{"type":"store.created","id":"s1","external_id":"S1"}]"#;
        conn.execute(
            "INSERT INTO change_batches (enterprise_account_id, run_id, first_index, event_count,
                                         created_count, events, created_at)
             VALUES (?1, 'run-0', 0, 1, 1, ?2, 't')",
            params![enterprise, json],
        )
        .expect("a TEXT batch");
        let batches = for_run(&conn, enterprise, "run-0", 0, 10).expect("read");
        assert_eq!(batches[0].events_json, json);
    }

    #[test]
    fn a_damaged_batch_is_an_error_not_an_allocation() {
        let (_dir, conn) = database();
        let enterprise = enterprise(&conn);
        let seq = write(&conn, enterprise, &events(500));
        let mut huge_prefix = u32::MAX.to_le_bytes().to_vec();
        huge_prefix.extend_from_slice(b"whatever follows");
        for damaged in [vec![1u8, 2], huge_prefix, {
            let mut cut: Vec<u8> = conn
                .query_row(
                    "SELECT events FROM change_batches WHERE seq = ?1",
                    [seq],
                    |r| r.get(0),
                )
                .expect("stored");
            cut.truncate(cut.len() / 2);
            cut
        }] {
            conn.execute(
                "UPDATE change_batches SET events = ?1 WHERE seq = ?2",
                params![damaged, seq],
            )
            .expect("damage");
            let error = by_seq(&conn, seq).err().expect("an error");
            assert!(error.to_string().contains("change batch events"), "{error}");
        }
    }
}
