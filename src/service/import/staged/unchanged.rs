//! The unchanged-row filter of large imports. A night's full export of a
//! million people changes a few thousand; staging, matching and checking the
//! rest row by row cost 40 s (every phase a random probe into tables larger
//! than the page cache). Before staging, the enterprise's people are read
//! once in storage order into a compact table (a key hash, a digest of the
//! fields imports set, the row id: 24 bytes a person); a row that gives
//! every one of those fields and leaves its person exactly as they are is
//! counted as unchanged and goes no further. Every other row — new,
//! changed, failed, partial, naming a manager — is staged and runs every
//! phase as before, so no rule is restated here: a row is only let through
//! when the engine could only have found it unchanged.
//!
//! What the engine would still have done with such a row: report it when
//! another row repeats its external id or email (those rows are given back
//! to staging after the read, from the person they left as they were), and
//! count its person as named in a full export (the people not seen become
//! the only leaver candidates).

use std::collections::HashSet;
use std::hash::Hasher;

use super::*;
use crate::store::import_staging::{KnownPerson, LeaverScope, UnchangedPerson};

/// Flag bits kept in the low bits of a digest. Active: a full export's
/// possible leaver (the table holds staff only).
const ACTIVE: u64 = 1;
/// Another person's external id has the same hash: never let through.
const AMBIGUOUS: u64 = 2;
const FLAGS: u64 = ACTIVE | AMBIGUOUS;
/// No row found this person unchanged.
const UNSEEN: u32 = u32::MAX;

struct Known {
    key: u64,
    digest: u64,
    rowid: i64,
}

/// The enterprise's people as the filter compares rows with them.
pub(super) struct KnownPeople {
    /// Sorted by key.
    people: Vec<Known>,
    /// Where each run of keys sharing their top `bucket_bits` starts in
    /// `people` (a binary search over a million people missed the cache at
    /// every step: 40 % of the read).
    buckets: Vec<u32>,
    bucket_bits: u32,
    /// Active staff without an external id: no row is let through for them.
    unkeyed_staff: Vec<i64>,
    /// Per person, the row that found them unchanged.
    seen_at: Vec<u32>,
    /// Per person (a bit each), whether a row named their external id.
    named: Vec<u64>,
    unchanged: usize,
}

fn hasher() -> std::collections::hash_map::DefaultHasher {
    // Fixed keys: the hashes are compared within one import only.
    std::collections::hash_map::DefaultHasher::new()
}

fn key_of(external_id: &[u8]) -> u64 {
    let mut h = hasher();
    h.write(external_id);
    h.finish()
}

/// The fields a row sets, as stored: bytes (the stored text need not be
/// checked as UTF-8 to be compared), each field preceded by its length so
/// fields cannot run into each other.
fn digest_of(
    external_id: &[u8],
    email: &[u8],
    name: &[u8],
    role: &[u8],
    store_id: Option<&[u8]>,
) -> u64 {
    let mut h = hasher();
    for field in [external_id, email, name, role] {
        h.write_usize(field.len());
        h.write(field);
    }
    match store_id {
        Some(store) => {
            h.write_usize(store.len());
            h.write(store);
        }
        None => h.write_usize(usize::MAX),
    }
    h.finish() & !FLAGS
}

/// A valid row as the filter reads it.
pub(super) struct RowFields<'a> {
    pub(super) row: usize,
    pub(super) external_id: &'a str,
    pub(super) email: &'a str,
    pub(super) name: &'a str,
    pub(super) role: &'static str,
    pub(super) store_id: &'a str,
    pub(super) active: Option<bool>,
}

impl KnownPeople {
    /// Reads the enterprise's people; `also` sees each of them too (the
    /// import's other reader of everyone shares the one pass).
    pub(super) fn load(
        conn: &Connection,
        enterprise: EnterpriseId,
        staff: usize,
        also: &mut dyn FnMut(&KnownPerson<'_>),
    ) -> Result<Self, AppError> {
        // The kept staff count: the table is allocated once, at its size.
        let mut people = Vec::with_capacity(staff);
        let mut unkeyed_staff = Vec::new();
        staging::each_known_person(conn, enterprise, |p: KnownPerson<'_>| {
            also(&p);
            // No row is let through for an IT admin (imports never change
            // them; the engine refuses the row), and admins never leave.
            if p.role == Role::ItAdmin.as_str().as_bytes() {
                return;
            }
            let Some(external_id) = p.external_id else {
                if p.active {
                    unkeyed_staff.push(p.rowid);
                }
                return;
            };
            let flags = if p.active { ACTIVE } else { 0 };
            people.push(Known {
                key: key_of(external_id),
                digest: digest_of(external_id, p.email, p.name, p.role, p.store_id) | flags,
                rowid: p.rowid,
            });
        })?;
        people.sort_unstable_by_key(|k| k.key);
        for i in 1..people.len() {
            if people[i].key == people[i - 1].key {
                people[i].digest |= AMBIGUOUS;
                people[i - 1].digest |= AMBIGUOUS;
            }
        }
        Ok(Self::indexed(people, unkeyed_staff))
    }

    fn indexed(people: Vec<Known>, unkeyed_staff: Vec<i64>) -> Self {
        // About one person a bucket: the keys are hashes, evenly spread.
        let bucket_bits = people.len().max(2).next_power_of_two().trailing_zeros();
        let bucket_count = 1usize << bucket_bits;
        let mut buckets = Vec::with_capacity(bucket_count + 1);
        let mut at = 0;
        for bucket in 0..bucket_count as u64 {
            while at < people.len() && people[at].key >> (64 - bucket_bits) < bucket {
                at += 1;
            }
            buckets.push(u32::try_from(at).unwrap_or(u32::MAX));
        }
        buckets.push(u32::try_from(people.len()).unwrap_or(u32::MAX));
        KnownPeople {
            seen_at: vec![UNSEEN; people.len()],
            named: vec![0; people.len().div_ceil(64)],
            people,
            buckets,
            bucket_bits,
            unkeyed_staff,
            unchanged: 0,
        }
    }

    /// The person whose external id this is, by its hash (a row is let
    /// through only when its digest, which holds the id itself, agrees). A
    /// hash two people share finds no one.
    pub(super) fn find(&self, external_id: &str) -> Option<usize> {
        let key = key_of(external_id.as_bytes());
        self.in_span(key, self.span(key))
    }

    /// [`Self::find`] for a run of rows, into `found`: their buckets, then
    /// their people, are read in passes whose loads do not wait on one
    /// another, so the processor overlaps the cache misses that a find per
    /// row waits out one at a time (44 % of a 100,000-row re-sync's reading
    /// of its rows went to them).
    pub(super) fn find_each<'r>(
        &self,
        external_ids: impl Iterator<Item = Option<&'r str>>,
        found: &mut Vec<Option<usize>>,
    ) {
        let keys: Vec<Option<u64>> = external_ids
            .map(|id| id.map(|id| key_of(id.as_bytes())))
            .collect();
        let spans: Vec<(usize, usize)> = keys
            .iter()
            .map(|key| key.map_or((0, 0), |key| self.span(key)))
            .collect();
        found.extend(
            keys.iter()
                .zip(spans)
                .map(|(key, span)| key.and_then(|key| self.in_span(key, span))),
        );
    }

    /// Where the people whose keys share this key's bucket lie.
    fn span(&self, key: u64) -> (usize, usize) {
        let bucket = (key >> (64 - self.bucket_bits)) as usize;
        (
            self.buckets[bucket] as usize,
            self.buckets[bucket + 1] as usize,
        )
    }

    fn in_span(&self, key: u64, (from, to): (usize, usize)) -> Option<usize> {
        (from..to).find(|&i| self.people[i].key == key && self.people[i].digest & AMBIGUOUS == 0)
    }

    /// The row id of the person at `index` (found by [`Self::find`]).
    pub(super) fn rowid(&self, index: usize) -> i64 {
        self.people[index].rowid
    }

    /// Records that a row names this person's external id; answers whether
    /// one did before.
    pub(super) fn note_key(&mut self, index: usize) -> bool {
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        let before = self.named[word] & bit != 0;
        self.named[word] |= bit;
        before
    }

    /// Whether the row leaves its person (`index`, found by its external id)
    /// exactly as they are: then it is counted here and goes no further. A
    /// person is let through once: a second row with their key is staged,
    /// and the first given back.
    pub(super) fn take_unchanged(&mut self, index: usize, row: RowFields<'_>) -> bool {
        let Ok(row_index) = u32::try_from(row.row) else {
            return false;
        };
        let known = &self.people[index];
        if self.seen_at[index] != UNSEEN {
            return false;
        }
        let stored_active = known.digest & ACTIVE != 0;
        let same = digest_of(
            row.external_id.as_bytes(),
            row.email.as_bytes(),
            row.name.as_bytes(),
            row.role.as_bytes(),
            Some(row.store_id.as_bytes()),
        ) == known.digest & !FLAGS
            && row.active.is_none_or(|active| active == stored_active);
        if same {
            self.seen_at[index] = row_index;
            self.unchanged += 1;
        }
        same
    }

    /// Rows let through that share a key with another row: (row, person's
    /// row id), no longer counted here. `email_owners` are the people holding
    /// a repeated email.
    pub(super) fn give_back(
        &mut self,
        repeated_external_ids: &HashSet<String>,
        email_owners: &HashSet<i64>,
    ) -> Vec<(usize, i64)> {
        let mut released: Vec<usize> = repeated_external_ids
            .iter()
            .filter_map(|external_id| self.find(external_id))
            .collect();
        if !email_owners.is_empty() {
            released.extend(
                (0..self.people.len()).filter(|&i| email_owners.contains(&self.people[i].rowid)),
            );
        }
        let mut back = Vec::new();
        for index in released {
            let row = std::mem::replace(&mut self.seen_at[index], UNSEEN);
            if row != UNSEEN {
                back.push((row as usize, self.people[index].rowid));
            }
        }
        self.unchanged -= back.len();
        back
    }

    /// Active staff no row was let through for, by row id, sorted.
    pub(super) fn leaver_candidates(&self) -> Vec<i64> {
        let mut candidates: Vec<i64> = self
            .people
            .iter()
            .zip(&self.seen_at)
            .filter(|(k, seen)| k.digest & ACTIVE != 0 && **seen == UNSEEN)
            .map(|(k, _)| k.rowid)
            .chain(self.unkeyed_staff.iter().copied())
            .collect();
        candidates.sort_unstable();
        candidates
    }

    pub(super) fn unchanged(&self) -> usize {
        self.unchanged
    }
}

/// A row given back, staged as the person it left unchanged (the values it
/// gave are theirs).
pub(super) fn staged_as_given_back(
    row: usize,
    person: UnchangedPerson,
    matched_while_staged: bool,
) -> StagedRow {
    StagedRow {
        row,
        key: None,
        external_id: person.external_id,
        email: Some(person.email),
        name: Some(person.name),
        role: Some(person.role.as_str()),
        store_id: person.store_id,
        unknown_store: None,
        manager_ref: None,
        active: None,
        new_id: crate::domain::UserId::generate().to_string(),
        given_id: None,
        clear: 0,
        failed: false,
        user_id: matched_while_staged.then_some(person.id),
        person_rowid: None,
        scim_identity: None,
    }
}

/// After every row is read: gives back the rows that share a key, stages
/// them, and (a full export) records who may leave. Answers the rows
/// counted unchanged and the scope of a full export's leavers.
pub(super) fn settle(
    txn: &Connection,
    request: &StagedRequest,
    mut known: KnownPeople,
    seen: &SeenKeys,
    keys: &mut staging::MatchKeys,
    matched_while_staged: bool,
) -> Result<(usize, LeaverScope), AppError> {
    let enterprise = request.enterprise;
    let emails: Vec<&str> = seen.repeated_emails.iter().map(String::as_str).collect();
    let email_owners: HashSet<i64> = if emails.is_empty() {
        HashSet::new()
    } else {
        staging::rowids_with_emails(txn, enterprise, &emails)?
            .into_iter()
            .collect()
    };
    let back = known.give_back(&seen.repeated_external_ids, &email_owners);
    if !back.is_empty() {
        let rowids: Vec<i64> = back.iter().map(|(_, rowid)| *rowid).collect();
        let mut people: std::collections::HashMap<i64, UnchangedPerson> =
            staging::people_by_rowid(txn, &rowids)?
                .into_iter()
                .map(|p| (p.rowid, p))
                .collect();
        let mut rows = Vec::with_capacity(back.len());
        for (row, rowid) in back {
            if let Some(person) = people.remove(&rowid) {
                keys.external_ids |= person.external_id.is_some();
                rows.push(staged_as_given_back(row, person, matched_while_staged));
            }
        }
        staging::insert(txn, &rows)?;
    }
    if request.full_export.is_none() {
        // Only a full export deactivates the people no row names.
        return Ok((known.unchanged(), LeaverScope::Everyone));
    }
    staging::set_leaver_candidates(txn, &known.leaver_candidates())?;
    Ok((known.unchanged(), LeaverScope::Candidates))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (rowid, external id, email, name, role, store, active)
    type Person = (
        i64,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        bool,
    );

    fn known(people: &[Person]) -> KnownPeople {
        let mut list: Vec<Known> = people
            .iter()
            .map(|&(rowid, ext, email, name, role, store, active)| Known {
                key: key_of(ext.as_bytes()),
                digest: digest_of(
                    ext.as_bytes(),
                    email.as_bytes(),
                    name.as_bytes(),
                    role.as_bytes(),
                    Some(store.as_bytes()),
                ) | if active { ACTIVE } else { 0 },
                rowid,
            })
            .collect();
        list.sort_unstable_by_key(|k| k.key);
        KnownPeople::indexed(list, vec![99])
    }

    fn take(people: &mut KnownPeople, row: RowFields<'static>) -> bool {
        match people.find(row.external_id) {
            Some(index) => people.take_unchanged(index, row),
            None => false,
        }
    }

    fn row(
        row: usize,
        ext: &'static str,
        name: &'static str,
        active: Option<bool>,
    ) -> RowFields<'static> {
        RowFields {
            row,
            external_id: ext,
            email: "a@x.example",
            name,
            role: "seller",
            store_id: "S1",
            active,
        }
    }

    #[test]
    fn only_a_row_leaving_its_person_exactly_as_they_are_is_let_through() {
        let mut people = known(&[
            (1, "A", "a@x.example", "Ann", "seller", "S1", true),
            (2, "B", "a@x.example", "Bob", "seller", "S1", false),
        ]);
        assert!(!take(&mut people, row(0, "A", "Anne", None)), "renamed");
        assert!(!take(&mut people, row(1, "C", "Ann", None)), "nobody");
        assert!(
            !take(&mut people, row(2, "B", "Bob", Some(true))),
            "reactivated"
        );
        assert!(take(&mut people, row(3, "B", "Bob", Some(false))));
        assert!(take(&mut people, row(4, "A", "Ann", None)));
        assert!(
            !take(&mut people, row(5, "A", "Ann", None)),
            "a person once"
        );
        assert_eq!(people.unchanged(), 2);
        // Active staff not seen may leave; so may active staff without a key.
        assert_eq!(people.leaver_candidates(), vec![99]);
        let back = people.give_back(&HashSet::from(["A".to_string()]), &HashSet::from([2]));
        assert_eq!(back.len(), 2);
        assert!(back.contains(&(4, 1)) && back.contains(&(3, 2)));
        assert_eq!(people.unchanged(), 0);
        assert_eq!(people.leaver_candidates(), vec![1, 99]);
    }

    #[test]
    fn finding_a_run_of_rows_finds_each_as_alone() {
        let people: Vec<Person> = (0..500)
            .map(|i| {
                let ext: &'static str = format!("E{i}").leak();
                (i, ext, "a@x.example", "Ann", "seller", "S1", true)
            })
            .collect();
        let people = known(&people);
        let asked: Vec<Option<String>> = (0..1000)
            .map(|i| (i % 7 != 0).then(|| format!("E{}", i * 3 % 800)))
            .collect();
        let mut found = Vec::new();
        people.find_each(asked.iter().map(Option::as_deref), &mut found);
        let alone: Vec<Option<usize>> = asked
            .iter()
            .map(|ext| ext.as_deref().and_then(|ext| people.find(ext)))
            .collect();
        assert_eq!(found, alone);
        assert_eq!(
            found.iter().flatten().count(),
            573,
            "the known ones, and only them"
        );
    }

    #[test]
    fn fields_cannot_run_into_each_other() {
        assert_ne!(
            digest_of(b"A", b"a@x.example", b"Ann B", b"seller", None),
            digest_of(b"A", b"a@x.example", b"Ann", b"B seller", None)
        );
        assert_ne!(
            digest_of(b"A", b"a@x.example", b"Ann", b"seller", None),
            digest_of(b"A", b"a@x.example", b"Ann", b"seller", Some(b""))
        );
    }
}
