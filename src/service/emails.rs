//! The email outbox's rules: what is queued (invitations by imports and
//! admins, alerts by `alerts`), what each email says when its turn comes, and
//! how an attempt ends. Sending is `outbound::email`.
//!
//! An invitation is queued without a token; the token is issued when the email
//! is sent, so the outbox never holds a usable link.

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::Serialize;

use super::access::AdminCtx;
use super::audit::{self, AuditEvent};
use super::{invitations, RequestMeta, Services};
use crate::domain::audit::Outcome;
use crate::domain::notifications::{AlertFacts, Language};
use crate::domain::retry;
use crate::domain::{EnterpriseId, UserId};
use crate::store::{self, email_outbox::DueEmail};
use crate::AppError;

/// Queues a person's invitation email inside the caller's transaction.
pub fn queue_invitation(
    conn: &Connection,
    enterprise: EnterpriseId,
    user: UserId,
    email: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    store::email_outbox::insert(
        conn,
        &store::email_outbox::NewEmail {
            enterprise: Some(enterprise),
            kind: "invitation",
            recipient: email,
            user_id: Some(user),
            payload: "{}",
            now,
        },
    )
}

/// Queues a password reset email inside the caller's transaction; its link is
/// made when it is sent.
pub fn queue_password_reset(
    conn: &Connection,
    enterprise: EnterpriseId,
    user: UserId,
    email: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    store::email_outbox::insert(
        conn,
        &store::email_outbox::NewEmail {
            enterprise: Some(enterprise),
            kind: "password_reset",
            recipient: email,
            user_id: Some(user),
            payload: "{}",
            now,
        },
    )
}

#[derive(utoipa::ToSchema, Debug, Serialize)]
pub struct QueuedInvitation {
    pub user_id: UserId,
    /// Where the invitation goes.
    pub email: String,
    /// False when this appliance has no SMTP server configured: the email
    /// waits in the outbox until one is.
    pub email_enabled: bool,
}

/// An IT admin sends a person's invitation again (a new link; the older ones stop working).
pub async fn resend_invitation(
    svc: &Services,
    admin: &AdminCtx,
    meta: &RequestMeta,
    user: UserId,
) -> Result<QueuedInvitation, AppError> {
    let (enterprise, now, meta) = (admin.enterprise(), svc.clock.now(), meta.clone());
    let event = AuditEvent::new("user.invitation.send", Outcome::Success, admin.actor())
        .in_enterprise(enterprise)
        .target("user", user);
    let email = svc
        .db
        .write(move |txn| {
            let person = invitable(txn, enterprise, user)?;
            queue_invitation(txn, enterprise, user, &person.email, now)?;
            audit::append(txn, &event, &meta, now)?;
            Ok::<_, AppError>(person.email)
        })
        .await?;
    svc.outbound.wake_email();
    Ok(QueuedInvitation {
        user_id: user,
        email,
        email_enabled: svc.config.email.smtp_host.is_some(),
    })
}

/// The person, if an invitation can go to them.
pub fn invitable(
    conn: &Connection,
    enterprise: EnterpriseId,
    user: UserId,
) -> Result<crate::domain::User, AppError> {
    // IT admins too: another admin invites them (enterprise_admins).
    let person = store::users::get(conn, enterprise, user)?
        .ok_or(AppError::NotFound { resource: "user" })?;
    if !person.active {
        return Err(AppError::Conflict {
            code: "user_inactive",
            field: None,
            message: "This user is deactivated; reactivate them through an import first".into(),
        });
    }
    if store::users::has_password(conn, user)? {
        return Err(AppError::Conflict {
            code: "already_accepted",
            field: None,
            message: "This user has already set a password".into(),
        });
    }
    Ok(person)
}

/// The person, if a password reset can go to them: active, with a password.
pub fn resettable(
    conn: &Connection,
    enterprise: EnterpriseId,
    user: UserId,
) -> Result<crate::domain::User, AppError> {
    let person = store::users::get(conn, enterprise, user)?
        .ok_or(AppError::NotFound { resource: "user" })?;
    if !person.active || !store::users::has_password(conn, user)? {
        return Err(AppError::Conflict {
            code: "not_resettable",
            field: None,
            message: "This person is deactivated or has no password yet".into(),
        });
    }
    Ok(person)
}

/// What a due email says, worked out when it is sent.
pub enum Outgoing {
    Invitation {
        language: Language,
        company: String,
        person: String,
        link: String,
        expires_at: DateTime<Utc>,
    },
    PasswordReset {
        language: Language,
        company: String,
        person: String,
        link: String,
        expires_at: DateTime<Utc>,
    },
    Alert {
        language: Language,
        company: String,
        facts: AlertFacts,
        base: String,
    },
    Test,
    /// Not to be sent any more (the person left, or already accepted).
    Cancelled(String),
}

/// Prepares a due email: an invitation gets its token now (in a write
/// transaction), an alert its words in the enterprise's language.
pub async fn prepare(svc: &Services, email: &DueEmail) -> Result<Outgoing, AppError> {
    let base = svc.public_base_url();
    match email.kind.as_str() {
        "invitation" | "password_reset" => {
            let (Some(enterprise), Some(user)) = (email.enterprise, email.user_id) else {
                return Ok(Outgoing::Cancelled("a link without a person".into()));
            };
            let purpose = if email.kind == "invitation" {
                invitations::LinkPurpose::Invitation
            } else {
                invitations::LinkPurpose::PasswordReset
            };
            let now = svc.clock.now();
            let auth = &svc.config.auth;
            let ttl = match purpose {
                invitations::LinkPurpose::Invitation => {
                    chrono::Duration::hours(i64::from(auth.invitation_ttl_hours))
                }
                invitations::LinkPurpose::PasswordReset => {
                    chrono::Duration::minutes(i64::from(auth.password_reset_ttl_minutes))
                }
            };
            svc.db
                .write(move |txn| {
                    let person = match purpose {
                        invitations::LinkPurpose::Invitation => invitable(txn, enterprise, user),
                        invitations::LinkPurpose::PasswordReset => {
                            resettable(txn, enterprise, user)
                        }
                    };
                    let person = match person {
                        Ok(person) => person,
                        Err(AppError::Conflict { message, .. }) => {
                            return Ok(Outgoing::Cancelled(message))
                        }
                        Err(AppError::NotFound { .. }) => {
                            return Ok(Outgoing::Cancelled("the person no longer exists".into()))
                        }
                        Err(other) => return Err(other),
                    };
                    let company = store::enterprises::get(txn, enterprise)?
                        .map(|e| e.company_name)
                        .unwrap_or_default();
                    let language = store::notification_settings::get(txn, enterprise)?.language;
                    let token = invitations::issue(txn, purpose, enterprise, user, ttl, now)?;
                    let (person, link, expires_at) = (
                        person.name,
                        invitations::link(purpose, &base, &token),
                        now + ttl,
                    );
                    Ok(match purpose {
                        invitations::LinkPurpose::Invitation => Outgoing::Invitation {
                            language,
                            company,
                            person,
                            link,
                            expires_at,
                        },
                        invitations::LinkPurpose::PasswordReset => Outgoing::PasswordReset {
                            language,
                            company,
                            person,
                            link,
                            expires_at,
                        },
                    })
                })
                .await
        }
        "alert" => {
            let Some(enterprise) = email.enterprise else {
                return Ok(Outgoing::Cancelled("an alert without an enterprise".into()));
            };
            let facts: AlertFacts = match serde_json::from_str(&email.payload) {
                Ok(facts) => facts,
                Err(e) => return Ok(Outgoing::Cancelled(format!("unreadable alert: {e}"))),
            };
            let (company, language) = svc
                .db
                .read(move |conn| {
                    let company = store::enterprises::get(conn, enterprise)?
                        .map(|e| e.company_name)
                        .unwrap_or_default();
                    let language = store::notification_settings::get(conn, enterprise)?.language;
                    Ok::<_, AppError>((company, language))
                })
                .await?;
            Ok(Outgoing::Alert {
                language,
                company,
                facts,
                base,
            })
        }
        "test" => Ok(Outgoing::Test),
        other => Ok(Outgoing::Cancelled(format!("unknown email kind {other}"))),
    }
}

/// How an attempt at sending ended.
pub enum Sent {
    Delivered,
    /// The server refused for good (unknown mailbox, …).
    Refused(String),
    /// Try again later (server down, timeout, 4xx).
    Failed(String),
    Cancelled(String),
}

pub async fn record(svc: &Services, email: &DueEmail, sent: Sent) -> Result<(), AppError> {
    let now = svc.clock.now();
    let attempts = email.attempts + 1;
    let (state, next, error) = match sent {
        Sent::Delivered => (Some("sent"), None, None),
        Sent::Refused(why) => (Some("failed"), None, Some(why)),
        Sent::Cancelled(why) => (Some("cancelled"), None, Some(why)),
        Sent::Failed(why) => {
            match retry::next_attempt(&retry::EMAIL_RETRY_DELAYS, attempts, now, None) {
                Some(next) => (None, Some(next), Some(why)),
                None => (Some("failed"), None, Some(why)),
            }
        }
    };
    if state == Some("failed") {
        tracing::warn!(email = %email.id, kind = %email.kind, error = error.as_deref().unwrap_or(""), "an email could not be sent and was given up");
    }
    let seq = email.seq;
    svc.db
        .write(move |txn| {
            store::email_outbox::record_attempt(
                txn,
                seq,
                attempts,
                state,
                next,
                error.as_deref(),
                now,
            )
            .map_err(AppError::from)
        })
        .await
}
