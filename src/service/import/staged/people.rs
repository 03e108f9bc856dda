//! The enterprise's people as a large import reads them before its rows:
//! the unchanged-row filter's table (`unchanged`) and, in a small
//! enterprise, the index rows are matched by while they are prepared.

use super::unchanged::KnownPeople;
use super::*;
use crate::store::import_staging::KnownPerson;

/// The enterprise's people as a large import reads them before its rows:
/// the unchanged-row filter's table and, in a small enterprise, the index
/// rows are matched by while staged.
pub(crate) struct People {
    /// Whose people they are.
    enterprise: EnterpriseId,
    pub(super) known: Option<KnownPeople>,
    pub(super) index: Option<PeopleIndex>,
}

impl People {
    /// Reads everyone once for both, when either is wanted.
    pub(super) fn read(
        txn: &Connection,
        enterprise: EnterpriseId,
        staff: i64,
        want_known: bool,
        want_index: bool,
    ) -> Result<Self, AppError> {
        let staff_count = usize::try_from(staff).unwrap_or(0);
        let mut index = want_index.then(|| PeopleIndex::with_capacity(staff_count));
        // Both readers of everyone share one pass over the people.
        let mut index_person = |person: &KnownPerson<'_>| {
            if let Some(index) = index.as_mut() {
                index.add(person);
            }
        };
        let known = if want_known {
            Some(KnownPeople::load(
                txn,
                enterprise,
                staff_count,
                &mut index_person,
            )?)
        } else {
            if want_index {
                staging::each_known_person(txn, enterprise, |person| index_person(&person))?;
            }
            None
        };
        Ok(People {
            enterprise,
            known,
            index,
        })
    }

    /// Whether these are the structures `request` stages with: its
    /// enterprise's, the ones its size and mode call for.
    pub(super) fn serve(&self, request: &StagedRequest, staff: i64) -> bool {
        self.enterprise == request.enterprise
            && self.known.is_some() == request.filters_unchanged(staff)
            && self.index.is_some() == request.matches_in_memory(staff)
    }

    pub(super) fn read_any(&self) -> bool {
        self.known.is_some() || self.index.is_some()
    }
}

/// A small enterprise's people by the keys rows match them by, so rows are
/// matched as they are prepared rather than by a pass over the staging table.
pub(super) struct PeopleIndex {
    ids: std::collections::HashSet<String>,
    by_external: std::collections::HashMap<String, String>,
    by_email: std::collections::HashMap<String, String>,
}

impl PeopleIndex {
    pub(super) fn with_capacity(people: usize) -> Self {
        PeopleIndex {
            ids: std::collections::HashSet::with_capacity(people),
            by_external: std::collections::HashMap::with_capacity(people),
            by_email: std::collections::HashMap::with_capacity(people),
        }
    }

    pub(super) fn add(&mut self, person: &KnownPerson<'_>) {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        let id = text(person.id);
        if let Some(external_id) = person.external_id {
            self.by_external.insert(text(external_id), id.clone());
        }
        self.by_email.insert(text(person.email), id.clone());
        self.ids.insert(id);
    }

    /// By our id when the row gives it, else by external id when it has
    /// one, else by email.
    pub(super) fn find(
        &self,
        id: Option<&str>,
        external_id: Option<&str>,
        email: Option<&str>,
    ) -> Option<String> {
        match (id, external_id, email) {
            (Some(id), _, _) => self.ids.get(id).cloned(),
            (None, Some(external), _) => self.by_external.get(external).cloned(),
            (None, None, Some(email)) => self.by_email.get(email).cloned(),
            (None, None, None) => None,
        }
    }
}
