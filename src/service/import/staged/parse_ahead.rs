//! A bulk import's rows parsed on a thread of their own, ahead of the
//! engine's reading thread. Reading a row is two steps of comparable cost:
//! parsing it (JSON or CSV into a record) and preparing it (checks, keys,
//! the unchanged-row filter). On one thread, a re-sync of 100,000 rows kept
//! one core busy for its whole staging while the writer, with a tenth of
//! them to stage, waited; here the two steps share both cores.
//!
//! What the parsing thread allocates it also frees: rows the reader is done
//! with, and the staged batches the writer is done with, come back to it in
//! chunks. Freed by another thread, glibc returns each string to the
//! parsing thread's arena under its lock, and the next allocations there
//! take malloc's slow path.

use std::sync::mpsc::{sync_channel, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

use super::{RowStream, SourceRow, StagedRow};
use crate::AppError;

/// Rows parsed and handed over at a time.
const CHUNK: usize = 256;
/// Chunks parsed ahead of the reader: what the parsing thread holds while
/// the reader is slower (a few hundred KB).
const CHUNKS_AHEAD: usize = 4;

type Chunk = Vec<Result<SourceRow, String>>;

/// What the parsing thread sends the reader.
enum Parsed {
    Chunk(Chunk),
    /// The rows ended (or the source failed, the chunk before said how).
    /// A channel closed without it is a parser that panicked.
    End,
}

/// What goes back to the parsing thread to be freed.
pub(super) enum Spent {
    Rows(Vec<SourceRow>),
    Batch(Vec<StagedRow>),
    /// The reader is done: nothing more comes back.
    Done,
}

/// An import's rows as they are read: parsed ahead on a thread of their own
/// ([`Rows::parsed_ahead`]) or in line, as the reader asks for them (a small
/// request; a bulk import of people new to the enterprise, whose writer
/// keeps the other core busy).
pub(super) enum Rows {
    InLine(RowStream),
    Ahead(ParsedAhead),
}

pub(super) struct ParsedAhead {
    chunks: Option<Receiver<Parsed>>,
    current: std::vec::IntoIter<Result<SourceRow, String>>,
    spent: Vec<SourceRow>,
    spent_to: Option<Sender<Spent>>,
    parser: Option<JoinHandle<()>>,
}

impl Rows {
    /// Starts a thread that parses `rows` ahead of whoever reads them.
    pub(super) fn parsed_ahead(rows: RowStream) -> Result<Self, AppError> {
        let (chunk_to, chunks) = sync_channel::<Parsed>(CHUNKS_AHEAD);
        let (spent_to, spent) = std::sync::mpsc::channel::<Spent>();
        let parser = std::thread::Builder::new()
            .name("import-parser".into())
            .spawn(move || parse(rows, chunk_to, &spent))
            .map_err(|e| AppError::Internal(format!("starting the import parser: {e}")))?;
        Ok(Rows::Ahead(ParsedAhead {
            chunks: Some(chunks),
            current: Vec::new().into_iter(),
            spent: Vec::with_capacity(CHUNK),
            spent_to: Some(spent_to),
            parser: Some(parser),
        }))
    }

    /// Hands back a row the reader is done with, to be freed where it was
    /// made.
    pub(super) fn recycle(&mut self, row: SourceRow) {
        if let Rows::Ahead(ahead) = self {
            ahead.spent.push(row);
            if ahead.spent.len() == CHUNK {
                let full = std::mem::replace(&mut ahead.spent, Vec::with_capacity(CHUNK));
                ahead.send(Spent::Rows(full));
            }
        }
    }

    /// Where staged batches go to be freed: to the parsing thread, whose
    /// text most of theirs is; `None` in line (freed where they are).
    pub(super) fn disposal(&self) -> Option<Sender<Spent>> {
        match self {
            Rows::Ahead(ahead) => ahead.spent_to.clone(),
            Rows::InLine(_) => None,
        }
    }
}

impl ParsedAhead {
    fn send(&self, spent: Spent) {
        if let Some(to) = &self.spent_to {
            // The parser gone (it panicked), what it would free is freed here.
            let _ = to.send(spent);
        }
    }
}

impl Iterator for Rows {
    type Item = Result<SourceRow, String>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Rows::InLine(rows) => rows.next(),
            Rows::Ahead(ahead) => loop {
                if let Some(row) = ahead.current.next() {
                    return Some(row);
                }
                let parsed = ahead.chunks.as_ref()?.recv();
                match parsed {
                    Ok(Parsed::Chunk(chunk)) => ahead.current = chunk.into_iter(),
                    Ok(Parsed::End) => {
                        ahead.chunks = None;
                        return None;
                    }
                    // Rows cut short are not the end of the source: an
                    // import (a full export above all) must not apply them.
                    Err(_) => {
                        ahead.chunks = None;
                        return Some(Err("reading the rows stopped unexpectedly".into()));
                    }
                }
            },
        }
    }
}

impl Drop for ParsedAhead {
    fn drop(&mut self) {
        let spent = std::mem::take(&mut self.spent);
        if !spent.is_empty() {
            self.send(Spent::Rows(spent));
        }
        // The reader hands back batches only while it reads rows, so none
        // comes after this. Hanging up then wakes a parser waiting to send.
        self.send(Spent::Done);
        self.spent_to = None;
        self.chunks = None;
        if let Some(parser) = self.parser.take() {
            // A panic there was the parser's own: the rows it had sent stand.
            let _ = parser.join();
        }
    }
}

/// The parsing thread: chunks of rows to the reader, whatever comes back
/// freed, until the rows end (or the source fails) and the reader hangs up.
fn parse(mut rows: RowStream, chunk_to: SyncSender<Parsed>, spent: &Receiver<Spent>) {
    loop {
        if spent.try_iter().any(free) {
            return;
        }
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut ended = false;
        for row in rows.by_ref() {
            // The import stops at a source's failure: nothing after it is read.
            let failed = row.is_err();
            chunk.push(row);
            if failed {
                ended = true;
                break;
            }
            if chunk.len() == CHUNK {
                break;
            }
        }
        ended |= chunk.len() < CHUNK;
        if !chunk.is_empty() && chunk_to.send(Parsed::Chunk(chunk)).is_err() {
            break;
        }
        if ended {
            // The reader gone, no one is told.
            let _ = chunk_to.send(Parsed::End);
            break;
        }
    }
    // Nothing more to send; the source (a request body's buffer) is freed
    // here too. Then what comes back, until the reader's last.
    drop(chunk_to);
    drop(rows);
    let _ = spent.iter().any(free);
}

/// Frees what came back; whether it was the reader's last.
fn free(spent: Spent) -> bool {
    match spent {
        Spent::Rows(rows) => drop(rows),
        Spent::Batch(batch) => drop(batch),
        Spent::Done => return true,
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::import::UserRecord;

    fn row(external_id: &str) -> Result<SourceRow, String> {
        Ok(SourceRow {
            record: UserRecord {
                external_id: Some(external_id.to_string()),
                ..UserRecord::default()
            },
            problems: Vec::new(),
            problems_key: None,
            ignored_fields: Vec::new(),
        })
    }

    fn external_id(row: &Result<SourceRow, String>) -> String {
        match row {
            Ok(source) => source.record.external_id.clone().unwrap_or_default(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn rows_parsed_ahead_come_in_order_and_all_of_them() {
        let count = CHUNK * 3 + 7;
        let source: RowStream = Box::new((0..count).map(|i| row(&format!("E{i}"))));
        let mut rows = Rows::parsed_ahead(source).unwrap();
        let mut read = Vec::new();
        while let Some(next) = rows.next() {
            read.push(external_id(&next));
            if let Ok(source) = next {
                rows.recycle(source);
            }
        }
        let expected: Vec<String> = (0..count).map(|i| format!("E{i}")).collect();
        assert_eq!(read, expected);
        drop(rows);
    }

    #[test]
    fn nothing_is_parsed_past_a_failing_row() {
        let parsed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = parsed.clone();
        let source: RowStream = Box::new((0..CHUNK * 4).map(move |i| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if i == 10 {
                Err("unreadable record 11".to_string())
            } else {
                row(&format!("E{i}"))
            }
        }));
        let rows = Rows::parsed_ahead(source).unwrap();
        let read: Vec<String> = rows.map(|r| external_id(&r)).collect();
        assert_eq!(read.len(), 11);
        assert_eq!(read[10], "error: unreadable record 11");
        assert_eq!(parsed.load(std::sync::atomic::Ordering::SeqCst), 11);
    }

    #[test]
    fn a_parser_that_panics_ends_the_rows_with_an_error_not_quietly() {
        let source: RowStream = Box::new((0..CHUNK * 4).map(|i| {
            assert!(i != CHUNK + 3, "a parser bug");
            row(&format!("E{i}"))
        }));
        let read: Vec<String> = Rows::parsed_ahead(source)
            .unwrap()
            .map(|r| external_id(&r))
            .collect();
        assert_eq!(read.len(), CHUNK + 1, "the first chunk, then the error");
        assert_eq!(
            read.last().map(String::as_str),
            Some("error: reading the rows stopped unexpectedly")
        );
    }

    #[test]
    fn a_reader_that_stops_early_ends_the_parser() {
        // An endless source: the parser must stop once the reader hangs up.
        let source: RowStream = Box::new((0..).map(|i| row(&format!("E{i}"))));
        let mut rows = Rows::parsed_ahead(source).unwrap();
        let first: Vec<String> = rows.by_ref().take(3).map(|r| external_id(&r)).collect();
        assert_eq!(first, ["E0", "E1", "E2"]);
        let disposal = rows
            .disposal()
            .expect("a parsed-ahead source takes batches back");
        disposal.send(Spent::Batch(Vec::new())).unwrap();
        drop(disposal);
        // Joins the parser: this returns only if it ended.
        drop(rows);
    }
}
