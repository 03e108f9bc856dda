//! The users engine's first phase: rows read from the source are checked
//! row by row (their own checks, `users/rows.rs`), keyed, matched to people where
//! the enterprise is small enough to hold in memory, and written to the
//! staging table in batches.

use super::parse_ahead::{Rows, Spent};
use super::people::{People, PeopleIndex};
use super::unchanged::{KnownPeople, RowFields};
use super::*;
use crate::store::import_staging::LeaverScope;

/// The enterprise's stores by the references rows use: our id or the external id.
pub(super) struct StoreIndex {
    ids: std::collections::HashSet<String>,
    by_external: std::collections::HashMap<String, String>,
}

impl StoreIndex {
    fn of(stores: Vec<crate::domain::Store>) -> Self {
        StoreIndex {
            ids: stores.iter().map(|s| s.id.to_string()).collect(),
            by_external: stores
                .into_iter()
                .filter_map(|s| s.external_id.map(|e| (e, s.id.to_string())))
                .collect(),
        }
    }

    fn load(conn: &Connection, enterprise: EnterpriseId) -> rusqlite::Result<Self> {
        Ok(Self::of(store::stores::all_for_enterprise(
            conn, enterprise,
        )?))
    }

    /// The store `reference` names, looked up alone (a small request).
    fn probe(
        conn: &Connection,
        enterprise: EnterpriseId,
        reference: &str,
    ) -> rusqlite::Result<Option<String>> {
        let candidates = store::stores::named_by(conn, enterprise, reference)?;
        Ok(Self::of(candidates).resolve(reference))
    }

    fn resolve(&self, reference: &str) -> Option<String> {
        // Every form of a UUID has 32 characters or more: a store code, as
        // nearly every row gives, skips the attempt (and the error it makes).
        (reference.len() >= 32)
            .then(|| reference.parse::<crate::domain::StoreId>().ok())
            .flatten()
            .map(|id| id.to_string())
            .filter(|id| self.ids.contains(id))
            .or_else(|| self.by_external.get(reference).cloned())
    }
}

/// What the preparing thread learnt of the rows.
pub(super) struct Prepared {
    pub(super) total: usize,
    pub(super) errors: Errors,
    pub(super) seen: SeenKeys,
    /// Whether any row names a manager.
    pub(super) manager_references: bool,
    /// Which of matching's passes any valid row needs.
    pub(super) keys: staging::MatchKeys,
    /// Whether every valid row gives an email, a name, a role and a store
    /// that exists, and empties no store: then no row can lack a field a new
    /// user needs, name an unknown store or leave a seller without one, and
    /// that check's pass over the staged rows is skipped.
    pub(super) complete_rows: bool,
    /// Whether rows were matched to people while prepared.
    pub(super) matched: bool,
    pub(super) indexed: IndexedKeys,
    /// Rows the unchanged-row filter counted and kept out of staging.
    pub(super) unchanged: usize,
    /// Whom a full export may deactivate.
    pub(super) leavers: LeaverScope,
    /// Fields the source ignored, unknown to it.
    pub(super) ignored_fields: std::collections::BTreeSet<String>,
}

/// Tracks whether a key column's values come in strictly increasing order.
pub(super) struct Ascending {
    last: Option<String>,
    holds: bool,
}

impl Ascending {
    fn new() -> Self {
        Ascending {
            last: None,
            holds: true,
        }
    }

    fn see(&mut self, value: Option<&str>) {
        let Some(value) = value.filter(|_| self.holds) else {
            return;
        };
        if self.last.as_deref().is_some_and(|last| last >= value) {
            self.holds = false;
        } else {
            self.last = Some(value.to_string());
        }
    }
}

/// What preparing rows needs of the request, owned (it may run on a thread
/// of its own).
pub(super) struct Reading {
    max_rows: usize,
    expected_rows: Option<usize>,
    numbering: RowNumbering,
    row_errors: Vec<RowError>,
    error_limit: usize,
}

impl Reading {
    fn of(request: &StagedRequest) -> Self {
        Reading {
            max_rows: request.max_rows,
            expected_rows: request.expected_rows,
            numbering: request.numbering.clone(),
            row_errors: request.row_errors.clone(),
            error_limit: request.error_limit(),
        }
    }
}

/// Turns source rows into staging rows: the checks a row passes on its own,
/// the store resolved, the keys recorded, our id for the row. Each full batch
/// goes to `sink`, which answers whether to go on.
pub(super) fn prepare(
    rows: Rows,
    stores: &mut dyn FnMut(&str) -> Option<String>,
    people: Option<PeopleIndex>,
    mut known: Option<KnownPeople>,
    reading: Reading,
    sink: &mut dyn FnMut(Vec<StagedRow>) -> bool,
) -> Result<(Prepared, Option<KnownPeople>), AppError> {
    let Reading {
        max_rows,
        expected_rows,
        numbering,
        row_errors,
        error_limit,
    } = reading;
    let mut manager_references = false;
    let mut keys = staging::MatchKeys::default();
    let mut complete_rows = true;
    let mut ignored_fields = std::collections::BTreeSet::new();
    let mut new_ids = crate::domain::ids::UserIdSequence::new();
    let (mut emails, mut external_ids) = (Ascending::new(), Ascending::new());
    let mut errors = Errors::seeded(&row_errors, &numbering);
    let mut seen = SeenKeys::new(expected_rows);
    // A batch holds what comes, up to STAGE_BATCH: a one-row SCIM write must
    // not allocate (and fault in) a megabyte for it.
    let batch_size = expected_rows.map_or(STAGE_BATCH, |rows| rows.clamp(1, STAGE_BATCH));
    let mut batch: Vec<StagedRow> = Vec::with_capacity(batch_size);
    let mut total = 0;
    let mut rows = rows;
    let mut ahead = std::collections::VecDeque::with_capacity(LOOKAHEAD);
    let mut key_hashes = Vec::with_capacity(2 * LOOKAHEAD);
    let mut scratch = (Vec::with_capacity(LOOKAHEAD), Vec::with_capacity(LOOKAHEAD));
    loop {
        if ahead.is_empty() {
            read_ahead(&mut rows, known.as_ref(), &mut ahead, &mut scratch);
            warm_key_filter(&seen, &ahead, &mut key_hashes);
        }
        let Some((read, found)) = ahead.pop_front() else {
            break;
        };
        let mut source = read.map_err(unreadable)?;
        let row = total;
        total += 1;
        if total > max_rows {
            return Err(unreadable(format!(
                "the file has more than {max_rows} records (imports.max_file_rows)"
            )));
        }
        let view = RowView::of(&source.record);
        if !source.problems.is_empty() {
            let problems_key = source.problems_key.take().or_else(|| view.key());
            for problem in std::mem::take(&mut source.problems) {
                errors.add(
                    row,
                    &problems_key,
                    problem.field.as_deref(),
                    problem.code,
                    problem.message,
                );
            }
        }
        // The report key is made only for a row a check refuses.
        let key_of = |_: usize| view.key();
        let role = row_checks(&mut errors, row, &view, &key_of);
        let unnamed = view.id.is_none() && view.external_id.is_none() && view.email.is_none();
        if role.is_some() && unnamed {
            errors.add(
                row,
                &view.key(),
                Some("email"),
                RowErrorCode::Required,
                "a user needs an email or an external_id",
            );
        }
        ignored_fields.extend(std::mem::take(&mut source.ignored_fields));
        too_many_errors(&errors, error_limit)?;
        // An external id of someone the filter knows is counted exactly, by
        // them; only other keys go through the key filter.
        // Found while read ahead, by the same external id.
        let person = view.external_id.and(found);
        let unknown_external_id = match (person, known.as_mut()) {
            (Some(index), Some(known)) => {
                if known.note_key(index) {
                    if let Some(external_id) = view.external_id {
                        seen.repeated_external_ids.insert(external_id.to_string());
                    }
                }
                None
            }
            _ => view.external_id,
        };
        seen.add(unknown_external_id, view.email.as_deref());
        let store_id = view.store_ref.and_then(&mut *stores);
        let failed = errors.has(row);
        if let (false, Some(known), Some(index)) = (failed, known.as_mut(), person) {
            if let Some(fields) = unchanged_candidate(row, &view, role, store_id.as_deref()) {
                if known.take_unchanged(index, fields) {
                    rows.recycle(source);
                    continue;
                }
            }
        }
        manager_references |= !failed && view.manager_ref.is_some();
        if !failed {
            match (view.id, view.external_id, view.email.as_deref()) {
                (Some(_), _, _) => keys.ids = true,
                (None, Some(_), _) => keys.external_ids = true,
                (None, None, Some(_)) => keys.emails = true,
                (None, None, None) => {}
            }
        }
        if !failed {
            emails.see(view.email.as_deref());
            external_ids.see(view.external_id);
            complete_rows &= view.email.is_some()
                && view.name.is_some()
                && role.flatten().is_some()
                && store_id.is_some()
                && !view.clear.store;
        }
        let given_id = view.id.map(|id| id.to_string());
        let user_id = people
            .as_ref()
            .filter(|_| !failed)
            .and_then(|p| p.find(given_id.as_deref(), view.external_id, view.email.as_deref()));
        let clear = u8::from(view.clear.store)
            | u8::from(view.clear.manager) << 1
            | u8::from(view.clear.external_id) << 2;
        let person_rowid = person
            .zip(known.as_ref())
            .filter(|_| !failed && user_id.is_none() && given_id.is_none())
            .map(|(index, known)| known.rowid(index));
        keys.person_rowids |= person_rowid.is_some();
        // The report key is the external id when there is one: then the
        // row need not carry it twice.
        let key = view.external_id.is_none().then(|| view.key()).flatten();
        let manager_ref = view.manager_ref.map(str::to_string);
        let active = view.active;
        let unknown_store = view
            .store_ref
            .filter(|_| store_id.is_none())
            .map(str::to_string);
        let external_id = view.external_id.map(Cleaned::trimmed);
        let name = view.name.map(Cleaned::trimmed);
        let email = view.email.map(Cleaned::of);
        let record = &mut source.record;
        batch.push(StagedRow {
            user_id,
            person_rowid,
            row,
            external_id: external_id.map(|text| text.take(&mut record.external_id)),
            email: email.map(|text| text.take(&mut record.email)),
            name: name.map(|text| text.take(&mut record.name)),
            role: role.flatten().map(|r| match r {
                Role::Manager => "manager",
                _ => "seller",
            }),
            unknown_store,
            store_id,
            manager_ref,
            active,
            new_id: given_id.clone().unwrap_or_else(|| new_ids.next_text()),
            given_id,
            clear,
            failed,
            key,
            scim_identity: record.scim_identity.take(),
        });
        rows.recycle(source);
        if batch.len() == STAGE_BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
            if !sink(full) {
                // The writer stopped (its own error ends the import).
                break;
            }
        }
    }
    if !batch.is_empty() {
        sink(batch);
    }
    seen.settle();
    let prepared = Prepared {
        total,
        errors,
        seen,
        manager_references,
        keys,
        complete_rows,
        matched: people.is_some(),
        indexed: IndexedKeys {
            emails_ascending: emails.holds,
            external_ids_ascending: external_ids.holds,
            managers_named: manager_references,
        },
        unchanged: 0,
        leavers: LeaverScope::Everyone,
        ignored_fields,
    };
    Ok((prepared, known))
}

/// A field's cleaned text, known apart from the record it came from so that
/// the record's own string can be moved into the staged row rather than
/// copied (most rows: nothing to trim, an email already lower-case).
enum Cleaned {
    /// The record's text trimmed to this many bytes.
    Trimmed(usize),
    /// Text made anew (a lower-cased email).
    Made(String),
}

impl Cleaned {
    fn trimmed(text: &str) -> Self {
        Cleaned::Trimmed(text.len())
    }

    fn of(text: std::borrow::Cow<'_, str>) -> Self {
        match text {
            std::borrow::Cow::Borrowed(text) => Cleaned::trimmed(text),
            std::borrow::Cow::Owned(text) => Cleaned::Made(text),
        }
    }

    /// The text, taken from `raw` (the record's field it was cleaned from).
    fn take(self, raw: &mut Option<String>) -> String {
        match self {
            Cleaned::Made(text) => text,
            Cleaned::Trimmed(len) => {
                let text = raw.take().unwrap_or_default();
                if text.len() == len {
                    text
                } else {
                    text.trim().to_string()
                }
            }
        }
    }
}

/// Rows read ahead of the one being prepared: the filter finds their
/// people all at once (see [`KnownPeople::find_each`]).
const LOOKAHEAD: usize = 32;

type ReadAhead = std::collections::VecDeque<(Result<SourceRow, String>, Option<usize>)>;
type ReadScratch = (Vec<Result<SourceRow, String>>, Vec<Option<usize>>);

/// Reads up to [`LOOKAHEAD`] rows, each with the person the filter knows by
/// its external id. `reads` and `found` are scratch kept from one call to the next: a fresh
/// vector each time, freed as the next one was asked for, had glibc
/// consolidate its free lists at every call (5 % of reading a large file).
fn read_ahead(
    rows: &mut Rows,
    known: Option<&KnownPeople>,
    ahead: &mut ReadAhead,
    (reads, found): &mut ReadScratch,
) {
    reads.extend(rows.by_ref().take(LOOKAHEAD));
    found.clear();
    match known {
        Some(known) => known.find_each(
            reads.iter().map(|read| {
                read.as_ref()
                    .ok()
                    .and_then(|source| RowView::external_id_of(&source.record))
            }),
            found,
        ),
        None => found.resize(reads.len(), None),
    }
    ahead.extend(reads.drain(..).zip(found.drain(..)));
}

/// Warms the key filter for the rows read ahead, with the keys each will
/// give it (see [`SeenKeys::warm`]): its email, and its external id unless
/// the unchanged-row filter knows the person by it.
fn warm_key_filter(seen: &SeenKeys, ahead: &ReadAhead, hashes: &mut Vec<u64>) {
    hashes.clear();
    for (read, found) in ahead {
        if let Ok(source) = read {
            let record = &source.record;
            let external_id = RowView::external_id_of(record).filter(|_| found.is_none());
            let email = RowView::email_of(record);
            SeenKeys::hashes_of(external_id, email.as_deref(), hashes);
        }
    }
    seen.warm(hashes);
}

/// A valid row the unchanged-row filter may let through: one naming its
/// person by external id alone and giving every field the filter compares
/// (a row leaving any out, naming a manager or emptying a field is staged).
fn unchanged_candidate<'a>(
    row: usize,
    view: &'a RowView<'_>,
    role: Option<Option<Role>>,
    store_id: Option<&'a str>,
) -> Option<RowFields<'a>> {
    let cleared = view.clear.store || view.clear.manager || view.clear.external_id;
    if view.id.is_some() || view.manager_ref.is_some() || cleared {
        return None;
    }
    Some(RowFields {
        row,
        external_id: view.external_id?,
        email: view.email.as_deref()?,
        name: view.name?,
        role: role.flatten().filter(|r| *r != Role::ItAdmin)?.as_str(),
        store_id: store_id?,
        active: view.active,
    })
}

/// Streams the rows into the staging table. In a bulk import a thread of its
/// own reads, decodes, parses and checks them, a batch at a time, while this
/// one (the writer) inserts: the two cores share the work, and the channel's
/// bound keeps memory flat. With the unchanged-row filter on, a third parses
/// ahead of the reader (see [`Rows::parsed_ahead`]). A small one is prepared
/// here, in line. `people` are those [`People::serve`] `request`.
pub(super) fn stage(
    txn: &Connection,
    request: &StagedRequest,
    rows: RowStream,
    people: People,
) -> Result<Prepared, AppError> {
    let enterprise = request.enterprise;
    let People {
        known,
        index: people,
        ..
    } = people;
    let reading = Reading::of(request);
    if !request.bulk() {
        // A few rows (a SCIM write) look up the stores they name: reading
        // an enterprise's 1,000 stores for each write took SCIM POSTs from
        // some 5,000 a second to 372.
        let mut resolved = std::collections::HashMap::new();
        let mut failure = None;
        let mut probe = |reference: &str| -> Option<String> {
            if let Some(found) = resolved.get(reference) {
                return Option::clone(found);
            }
            let found = StoreIndex::probe(txn, enterprise, reference).unwrap_or_else(|e| {
                failure.get_or_insert(e);
                None
            });
            resolved.insert(reference.to_string(), found.clone());
            found
        };
        let mut inserted = Ok(());
        let rows = Rows::InLine(rows);
        let prepared = prepare(rows, &mut probe, people, known, reading, &mut |batch| {
            inserted = staging::insert(txn, &batch);
            inserted.is_ok()
        });
        if let Some(e) = failure {
            return Err(e.into());
        }
        inserted?;
        return settled(txn, request, prepared?);
    }
    let stores = StoreIndex::load(txn, enterprise)?;
    let (sender, batches) = std::sync::mpsc::sync_channel::<Vec<StagedRow>>(2);
    // Inserted batches go back to the reader to be dropped: their text freed
    // by the thread that allocated it stays in that thread's caches for the
    // next rows, where freed by the writer it went back to the reader's
    // arena under its lock and every allocation took malloc's slow path (a
    // fifth of reading a large file). With a parsing thread beside the
    // reader (below), most of their text is that thread's: they go on to it.
    let (inserted_batches, to_drop) = std::sync::mpsc::channel::<Vec<StagedRow>>();
    let preparing = std::thread::Builder::new()
        .name("import-reader".into())
        .spawn(move || {
            // With the unchanged-row filter on, most rows stop at the reader
            // and the writer waits: parsing takes the other core. Without it
            // (people new to the enterprise), the writer stages every row
            // and the two cores are busy already: a third thread only made
            // staging 100,000 new people slower (0.19 s -> 0.21 s).
            let rows = if known.is_some() {
                Rows::parsed_ahead(rows)?
            } else {
                Rows::InLine(rows)
            };
            let disposal = rows.disposal();
            prepare(
                rows,
                &mut |r| stores.resolve(r),
                people,
                known,
                reading,
                &mut |batch| {
                    for done in to_drop.try_iter() {
                        if let Some(disposal) = &disposal {
                            // The parser gone, the batch is freed here.
                            let _ = disposal.send(Spent::Batch(done));
                        }
                    }
                    sender.send(batch).is_ok()
                },
            )
        })
        .map_err(|e| AppError::Internal(format!("starting the import reader: {e}")))?;
    let mut inserted = Ok(());
    for batch in batches.iter() {
        inserted = staging::insert(txn, &batch);
        if inserted.is_err() {
            break;
        }
        // The reader gone (its last batch sent), the batch is dropped here.
        let _ = inserted_batches.send(batch);
    }
    // Dropping the receiver stops a reader still sending.
    drop(batches);
    let prepared = preparing
        .join()
        .map_err(|_| AppError::Internal("the import reader panicked".into()))?;
    inserted?;
    settled(txn, request, prepared?)
}

/// Settles what the unchanged-row filter let through, once every row is in.
fn settled(
    txn: &Connection,
    request: &StagedRequest,
    (mut prepared, known): (Prepared, Option<KnownPeople>),
) -> Result<Prepared, AppError> {
    if let Some(known) = known {
        let (unchanged, leavers) = unchanged::settle(
            txn,
            request,
            known,
            &prepared.seen,
            &mut prepared.keys,
            prepared.matched,
        )?;
        prepared.unchanged = unchanged;
        prepared.leavers = leavers;
    }
    Ok(prepared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cleaned_field_moves_the_records_text_or_trims_a_copy() {
        let mut given = Some("E1".to_string());
        let address = given.as_deref().map(str::as_ptr);
        let kept = Cleaned::trimmed("E1").take(&mut given);
        assert_eq!((kept.as_str(), Some(kept.as_ptr())), ("E1", address));
        assert!(given.is_none());
        let mut padded = Some("  E2 ".to_string());
        let cleaned = crate::service::import::cleaned(&padded).map(Cleaned::trimmed);
        assert_eq!(cleaned.map(|c| c.take(&mut padded)).as_deref(), Some("E2"));
        let mut email = Some(" A@X.example".to_string());
        let lowered = crate::domain::email::normalize_cow(email.as_deref().unwrap_or_default());
        assert_eq!(Cleaned::of(lowered).take(&mut email), "a@x.example");
    }

    #[test]
    fn keys_are_ascending_only_while_each_is_above_the_last() {
        let mut keys = Ascending::new();
        for key in [Some("00000001"), None, Some("00000002"), Some("00000010")] {
            keys.see(key);
        }
        assert!(keys.holds);
        keys.see(Some("00000010"));
        assert!(!keys.holds, "a repeat breaks the order");
        let mut unsorted = Ascending::new();
        unsorted.see(Some("b"));
        unsorted.see(Some("a"));
        assert!(!unsorted.holds);
    }
}
