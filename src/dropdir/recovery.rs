//! Files a crash left in `processing/`, taken back at start (or after a
//! service error), and failed or held files run again on request.

use super::*;

impl State {
    /// Files in `processing/` belong to a run a crash interrupted: an applied
    /// one is only archived, any other is run again.
    pub(super) async fn recover(&mut self) {
        let mut pending: Vec<EnterpriseId> = self.to_recover.drain().collect();
        pending.sort();
        for enterprise in pending {
            if let Err(e) = self.recover_enterprise(enterprise).await {
                tracing::warn!(
                    %enterprise,
                    error = %e,
                    "taking back a file left in processing/ failed; tried again at the next scan"
                );
                self.to_recover.insert(enterprise);
            }
        }
    }

    pub(super) async fn recover_enterprise(
        &mut self,
        enterprise: EnterpriseId,
    ) -> Result<(), AppError> {
        {
            let folders = Folders::of(&self.svc.settings(), enterprise);
            let processing = folders.processing.clone();
            let mut names: Vec<OsString> = tokio::task::spawn_blocking(move || {
                std::fs::read_dir(&processing)
                    .map(|entries| {
                        entries
                            .filter_map(|e| e.ok().map(|e| e.file_name()))
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
            names.sort();
            for name in names {
                let stored = name.to_string_lossy().to_string();
                let id = stored.split("__").next().unwrap_or_default().to_string();
                let lookup = id.clone();
                let row = self
                    .svc
                    .db
                    .read(move |conn| {
                        store::drop_files::get_for(conn, enterprise, &lookup)
                            .map_err(AppError::from)
                    })
                    .await?;
                let display_name = stored
                    .split_once("__")
                    .map_or(stored.as_str(), |(_, n)| n)
                    .to_string();
                let claimed = Claimed {
                    folders: folders.clone(),
                    id: id.clone(),
                    stored_name: stored.clone(),
                    display_name: row
                        .as_ref()
                        .map_or(display_name.clone(), |r| r.display_name.clone()),
                };
                match row.as_ref().map(|r| r.state) {
                    Some(FileState::Applied | FileState::Duplicate) => {
                        tracing::info!(file = %stored, "archiving a file applied before a restart");
                        if let Some(row) = &row {
                            process::report_recovered(&self.svc, &claimed, row).await?;
                        }
                        let to = folders.archive.join("recovered");
                        let from = folders.processing.clone();
                        tokio::task::spawn_blocking(move || claim::move_file(&from, &stored, &to))
                            .await
                            .map_err(|e| AppError::Internal(e.to_string()))?
                            .map_err(|e| AppError::Internal(e.to_string()))?;
                    }
                    Some(FileState::Processing) => {
                        tracing::info!(file = %stored, "running again a file a restart interrupted");
                        let id = claimed.id.clone();
                        if let Err(e) = process::process(&self.svc, claimed).await {
                            self.note_waiting(&id, &e).await;
                            return Err(AppError::Internal(format!("file {stored}: {e}")));
                        }
                    }
                    Some(state) => {
                        let to = if state == FileState::Held {
                            folders.held.clone()
                        } else {
                            folders.failed.clone()
                        };
                        let from = folders.processing.clone();
                        tokio::task::spawn_blocking(move || claim::move_file(&from, &stored, &to))
                            .await
                            .map_err(|e| AppError::Internal(e.to_string()))?
                            .map_err(|e| AppError::Internal(e.to_string()))?;
                    }
                    None => {
                        // Claimed, then the crash came before its row was written.
                        let facts = FileFacts::of(&folders.processing.join(&stored));
                        self.record_claim(enterprise, &claimed, display_name.as_bytes(), facts)
                            .await?;
                        process::process(&self.svc, claimed).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Records on the file why it waits in `processing/`; best effort, as
    /// the cause (a full disk) may refuse this write too.
    pub(super) async fn note_waiting(&self, id: &str, error: &AppError) {
        let reason = text::clip(
            &format!(
                "waiting: {error}; tried again at the next scan (every {} s) or when disk space \
                 comes back",
                self.svc.config.dropdir.scan_interval_secs
            ),
            text::MAX_TEXT_CHARS,
        );
        let id = id.to_string();
        let noted = self
            .svc
            .db
            .write(move |txn| {
                store::drop_files::note_waiting(txn, &id, &reason).map_err(AppError::from)
            })
            .await;
        if let Err(e) = noted {
            tracing::debug!(error = %e, "noting why a file waits failed");
        }
    }

    /// A failed or refused file retried, or a held one approved (`approved_by`).
    pub(super) async fn run_again(
        &mut self,
        enterprise: EnterpriseId,
        id: &str,
        approved_by: Option<String>,
    ) -> Result<(), AppError> {
        let lookup = id.to_string();
        let file = self
            .svc
            .db
            .read(move |conn| {
                store::drop_files::get_for(conn, enterprise, &lookup).map_err(AppError::from)
            })
            .await?
            .ok_or(AppError::NotFound { resource: "file" })?;
        let folders = Folders::of(&self.svc.settings(), enterprise);
        let from = match (&approved_by, file.state) {
            (None, FileState::Failed | FileState::Refused) => folders.failed.clone(),
            (Some(_), FileState::Held) => folders.held.clone(),
            (None, state) => {
                return Err(AppError::Conflict {
                    code: "not_retryable",
                    field: None,
                    message: format!(
                        "only failed or refused files are run again; this one is {}",
                        state.as_str()
                    ),
                })
            }
            (Some(_), state) => {
                return Err(AppError::Conflict {
                    code: "not_held",
                    field: None,
                    message: format!(
                        "only held files are approved; this one is {}",
                        state.as_str()
                    ),
                })
            }
        };
        let (to, name) = (folders.processing.clone(), file.stored_name.clone());
        let (row_id, row_name, now) = (
            file.id.clone(),
            file.stored_name.clone(),
            self.svc.clock.now(),
        );
        self.svc
            .db
            .write(move |txn| {
                match approved_by {
                    Some(by) => store::drop_files::approve(txn, &row_id, &by, now),
                    None => store::drop_files::requeue(txn, &row_id, &row_name),
                }
                .map_err(AppError::from)
            })
            .await?;
        tokio::task::spawn_blocking(move || claim::move_file(&from, &name, &to))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
            .map_err(|e| AppError::Internal(format!("moving the file back: {e}")))?;
        tracing::info!(file = %file.display_name, id = %file.id, "running a file again");
        process::process(
            &self.svc,
            Claimed {
                folders,
                id: file.id,
                stored_name: file.stored_name,
                display_name: file.display_name,
            },
        )
        .await
    }
}
