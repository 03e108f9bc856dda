//! Sync logs as the API shows them: one entry per run, each followed (newest
//! first) by the run's per-record entries (`user_created`, `store_updated`, …).
//! Runs are rows of `sync_logs`; their per-record entries are read from the run's
//! change batches, which say the same thing for a fraction of the writes.

use rusqlite::Connection;

use super::access::{EnterpriseCtx, Principal};
use super::import::ChangeEvent;
use super::Services;
use crate::domain::import::RecordOperation;
use crate::domain::{EnterpriseId, Scope};
use crate::store::change_batches::VerbFilter;
use crate::store::sync_logs::{SyncLog, SyncLogFilter};
use crate::store::{self};
use crate::AppError;

/// What sync history a caller reads: all of it (`sync:read`, IT admins), or
/// the runs about the resource kinds its key works on — an integrator's key
/// made with `users:*` scopes only follows its own imports (the
/// specification's integrator does exactly that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncView {
    all: bool,
    users: bool,
    stores: bool,
}

impl SyncView {
    pub const ALL: SyncView = SyncView {
        all: true,
        users: true,
        stores: true,
    };

    /// The caller's view, or 403 `insufficient_scope` when it has none.
    pub fn of(principal: &Principal) -> Result<(EnterpriseCtx, SyncView), AppError> {
        if let Ok(ctx) = principal.require_scope(Scope::SyncRead) {
            return Ok((ctx, SyncView::ALL));
        }
        let has = |scopes: [Scope; 2]| {
            scopes
                .into_iter()
                .any(|scope| principal.require_scope(scope).is_ok())
        };
        let view = SyncView {
            all: false,
            users: has([Scope::UsersRead, Scope::UsersWrite]),
            stores: has([Scope::StoresRead, Scope::StoresWrite]),
        };
        if !view.users && !view.stores {
            return Err(AppError::forbidden(
                "insufficient_scope",
                "This endpoint requires the sync:read scope, or a users or stores scope for \
                 the runs of that kind",
            ));
        }
        let ctx = principal.require_scope(if view.users {
            Scope::UsersRead
        } else {
            Scope::StoresRead
        });
        // A key with only a write scope: its enterprise all the same.
        let ctx = ctx.or_else(|_| {
            principal.require_scope(if view.users {
                Scope::UsersWrite
            } else {
                Scope::StoresWrite
            })
        })?;
        Ok((ctx, view))
    }

    /// The run kinds (`resource_type`) this view lets through; `None`: every run.
    pub fn resource_types(self) -> Option<Vec<&'static str>> {
        if self.all {
            return None;
        }
        let mut kinds = Vec::new();
        if self.users {
            kinds.push("user");
        }
        if self.stores {
            kinds.push("store");
        }
        Some(kinds)
    }

    fn shows(self, run: &SyncLog) -> bool {
        match self.resource_types() {
            None => true,
            Some(kinds) => run
                .resource_type
                .as_deref()
                .is_some_and(|kind| kinds.contains(&kind)),
        }
    }
}

/// Runs read at a time while filling a page.
const RUNS_PER_READ: usize = 20;
/// Change batches read at a time while filling a page.
const BATCHES_PER_READ: usize = 4;

/// A position in the newest-first list: the run's `seq`, then 0 for the run
/// entry itself or n + 1 for its record n. The next page holds what sorts below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogCursor {
    pub run_seq: i64,
    pub position: usize,
}

impl std::str::FromStr for LogCursor {
    type Err = ();
    fn from_str(raw: &str) -> Result<Self, ()> {
        match raw.split_once('.') {
            Some((seq, position)) => Ok(LogCursor {
                run_seq: seq.parse().map_err(|_| ())?,
                position: position.parse().map_err(|_| ())?,
            }),
            // Cursors handed out before per-record entries were derived: a run.
            None => Ok(LogCursor {
                run_seq: raw.parse().map_err(|_| ())?,
                position: 0,
            }),
        }
    }
}

impl std::fmt::Display for LogCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.run_seq, self.position)
    }
}

pub struct SyncLogPage {
    pub logs: Vec<SyncLog>,
    pub next_cursor: Option<String>,
}

/// Which entries a filter's `operation` lets through.
enum Wanted {
    Everything,
    /// A run operation (`bulk_user_import`, …): runs only.
    Runs(String),
    /// A per-record operation: `user_created` → resource `user`, verb `created`.
    Records {
        operation: String,
        verb: VerbFilter,
    },
}

fn wanted(operation: Option<String>) -> Wanted {
    let Some(operation) = operation else {
        return Wanted::Everything;
    };
    use crate::domain::import::RecordOperation as R;
    let verb = RecordOperation::parse(&operation).map(|record| match record {
        R::UserCreated | R::StoreCreated => VerbFilter::Created,
        R::UserUpdated | R::StoreUpdated => VerbFilter::Updated,
        R::UserDeactivated | R::StoreDeactivated => VerbFilter::Deactivated,
    });
    match verb {
        Some(verb) => Wanted::Records { operation, verb },
        None => Wanted::Runs(operation),
    }
}

/// A per-record entry: the run's source, time and initiator, the record's change.
fn record_entry(run: &SyncLog, index: usize, event: ChangeEvent) -> SyncLog {
    let (resource, verb) = event
        .event_type
        .split_once('.')
        .unwrap_or((event.event_type.as_str(), ""));
    SyncLog {
        seq: run.seq,
        id: record_entry_id(&run.id, index),
        sync_type: run.sync_type.clone(),
        operation: format!("{resource}_{verb}"),
        status: "success".into(),
        resource_type: Some(resource.to_string()),
        resource_id: Some(event.id),
        details: serde_json::json!({ "external_id": event.external_id }),
        error_message: None,
        initiated_by: run.initiated_by.clone(),
        run_id: Some(run.id.clone()),
        timestamp: run.timestamp.clone(),
    }
}

/// A record entry's id: stable and unique, a UUID (version 8) hashed from the
/// run's id and the record's place in the run.
fn record_entry_id(run_id: &str, index: usize) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{run_id}/{index}").as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn parse_events(json: &str) -> Result<Vec<ChangeEvent>, AppError> {
    serde_json::from_str(json).map_err(|e| AppError::Internal(format!("change batch: {e}")))
}

/// Appends the run's record entries below `below` (a position), newest first,
/// until the page is full; returns the position of the last one taken when it is.
fn take_records(
    conn: &Connection,
    enterprise: EnterpriseId,
    run: &SyncLog,
    below: usize,
    only: Option<(&str, VerbFilter)>,
    page: &mut Vec<SyncLog>,
    limit: usize,
) -> Result<Option<usize>, AppError> {
    // Positions are index + 1, so records below position p have index < p - 1.
    let mut below_index = below.saturating_sub(1);
    loop {
        let batches = store::change_batches::for_run_backwards(
            conn,
            enterprise,
            &run.id,
            below_index,
            only.map(|(_, verb)| verb),
            BATCHES_PER_READ,
        )?;
        if batches.is_empty() {
            return Ok(None);
        }
        for batch in batches {
            let events = parse_events(&batch.events_json)?;
            let end = below_index.min(batch.first_index + events.len());
            for (offset, event) in events
                .into_iter()
                .take(end - batch.first_index)
                .enumerate()
                .rev()
            {
                let index = batch.first_index + offset;
                let entry = record_entry(run, index, event);
                if only.is_some_and(|(operation, _)| entry.operation != operation) {
                    continue;
                }
                page.push(entry);
                if page.len() == limit {
                    return Ok(Some(index + 1));
                }
            }
            below_index = batch.first_index;
        }
    }
}

fn list(
    conn: &Connection,
    enterprise: EnterpriseId,
    filter: SyncLogFilter,
    from: Option<LogCursor>,
    limit: usize,
) -> Result<SyncLogPage, AppError> {
    let wanted = wanted(filter.operation.clone());
    // Records are successes, whatever their run's status.
    let records_wanted = !matches!(wanted, Wanted::Runs(_))
        && filter.status.as_deref().is_none_or(|s| s == "success");
    let run_filter = SyncLogFilter {
        operation: match &wanted {
            Wanted::Runs(operation) => Some(operation.clone()),
            _ => None,
        },
        // Runs of any status have successful records; the status then picks runs.
        status: if records_wanted {
            None
        } else {
            filter.status.clone()
        },
        ..filter.clone()
    };
    let run_matches = |run: &SyncLog| match &wanted {
        Wanted::Records { .. } => false,
        _ => filter.status.as_deref().is_none_or(|s| s == run.status),
    };
    let only = match &wanted {
        Wanted::Records { operation, verb } => Some((operation.as_str(), *verb)),
        _ => None,
    };
    let mut page = Vec::with_capacity(limit);
    let mut cursor = from;
    loop {
        // The run the cursor stopped in is read again, for its remaining records.
        let before_seq = cursor.map(|c| c.run_seq + i64::from(c.position > 0));
        let runs =
            store::sync_logs::list(conn, enterprise, &run_filter, before_seq, RUNS_PER_READ)?;
        let exhausted = runs.len() < RUNS_PER_READ;
        for run in runs {
            let run_seq = run.seq;
            let below = match cursor {
                Some(c) if c.run_seq == run.seq => c.position,
                _ => usize::MAX,
            };
            if records_wanted {
                if let Some(position) =
                    take_records(conn, enterprise, &run, below, only, &mut page, limit)?
                {
                    return Ok(SyncLogPage {
                        logs: page,
                        next_cursor: Some(
                            LogCursor {
                                run_seq: run.seq,
                                position,
                            }
                            .to_string(),
                        ),
                    });
                }
            }
            if below > 0 && run_matches(&run) {
                page.push(run);
                if page.len() == limit {
                    return Ok(SyncLogPage {
                        logs: page,
                        next_cursor: Some(
                            LogCursor {
                                run_seq,
                                position: 0,
                            }
                            .to_string(),
                        ),
                    });
                }
            }
            cursor = Some(LogCursor {
                run_seq,
                position: 0,
            });
        }
        if exhausted {
            return Ok(SyncLogPage {
                logs: page,
                next_cursor: None,
            });
        }
    }
}

/// Newest first: each run, preceded by its per-record entries (last applied first).
pub async fn logs(
    svc: &Services,
    ctx: &EnterpriseCtx,
    filter: SyncLogFilter,
    from: Option<LogCursor>,
    limit: usize,
) -> Result<SyncLogPage, AppError> {
    let enterprise = ctx.enterprise();
    svc.db
        .read_for(enterprise, move |conn| {
            list(conn, enterprise, filter, from, limit)
        })
        .await
}

/// Run entries only (no per-record entries), newest first, below `before_seq`.
pub async fn runs(
    svc: &Services,
    ctx: &EnterpriseCtx,
    filter: SyncLogFilter,
    before_seq: Option<i64>,
    limit: usize,
) -> Result<Vec<SyncLog>, AppError> {
    let enterprise = ctx.enterprise();
    svc.db
        .read_for(enterprise, move |conn| {
            store::sync_logs::list(conn, enterprise, &filter, before_seq, limit)
                .map_err(AppError::from)
        })
        .await
}

/// One run, if the view shows it (another kind's run is not found).
pub async fn run(
    svc: &Services,
    (ctx, view): (&EnterpriseCtx, SyncView),
    id: String,
) -> Result<SyncLog, AppError> {
    let enterprise = ctx.enterprise();
    svc.db
        .read_for(enterprise, move |conn| {
            store::sync_logs::get(conn, enterprise, &id).map_err(AppError::from)
        })
        .await?
        .filter(|run| view.shows(run))
        .ok_or(AppError::NotFound {
            resource: "sync log",
        })
}

pub struct ChangePage {
    pub changes: Vec<ChangeEvent>,
    pub next_cursor: Option<String>,
}

/// What a run created, updated and deactivated, in the order it applied them,
/// from event `from` on.
pub async fn run_changes(
    svc: &Services,
    (ctx, view): (&EnterpriseCtx, SyncView),
    run_id: String,
    from: Option<usize>,
    limit: usize,
) -> Result<ChangePage, AppError> {
    let enterprise = ctx.enterprise();
    svc.db
        .read_for(enterprise, move |conn| {
            store::sync_logs::get(conn, enterprise, &run_id)?
                .filter(|run| view.shows(run))
                .ok_or(AppError::NotFound {
                    resource: "sync log",
                })?;
            let mut next = from.unwrap_or(0);
            let mut changes = Vec::with_capacity(limit);
            loop {
                let batches = store::change_batches::for_run(
                    conn,
                    enterprise,
                    &run_id,
                    next,
                    BATCHES_PER_READ,
                )?;
                if batches.is_empty() {
                    return Ok(ChangePage {
                        changes,
                        next_cursor: None,
                    });
                }
                for batch in batches {
                    let events = parse_events(&batch.events_json)?;
                    let skip = next - batch.first_index;
                    for event in events.into_iter().skip(skip) {
                        changes.push(event);
                        next += 1;
                        if changes.len() == limit {
                            return Ok(ChangePage {
                                changes,
                                next_cursor: Some(next.to_string()),
                            });
                        }
                    }
                }
            }
        })
        .await
}

/// Drops per-record history past `imports.record_log_retention_days`: the runs'
/// change batches (and with them the per-record entries), and the webhook
/// messages and emails that finished before then, with their attempts; run
/// entries, alerts and the audit trail stay.
pub async fn prune_record_logs(svc: &Services) -> Result<usize, AppError> {
    let days = i64::from(svc.config.imports.record_log_retention_days);
    let cutoff = svc.clock.now() - chrono::Duration::days(days);
    svc.db
        .write(move |txn| {
            let batches = store::change_batches::prune_older_than(txn, cutoff)?;
            let messages = store::webhooks::prune_finished_before(txn, cutoff)?;
            let emails = store::email_outbox::prune_finished_before(txn, cutoff)?;
            Ok::<_, AppError>(batches + messages + emails)
        })
        .await
}
