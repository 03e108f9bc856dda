//! A person changes their own password (knowing the current one), asks for a
//! reset link by email (having forgotten it), or the appliance operator prints
//! a reset link (`enterprise-sync reset-password`). The link's page is the
//! one-time link flow of `invitations`.

use serde::Deserialize;

use super::audit::{self, AuditEvent};
use super::invitations::{self, LinkPurpose};
use super::rate_limit::{Bucket, Policy};
use super::sessions::{self, TokenPair};
use super::{emails, RequestMeta, Services};
use crate::domain::audit::{ActorType, Outcome};
use crate::domain::{email, password, EnterpriseId, UserId};
use crate::store::{self, Db};
use crate::AppError;

#[derive(utoipa::ToSchema, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schema(required = true, value_type = String, min_length = 1, max_length = 1024)]
    pub current_password: Option<String>,
    /// 15 to 128 characters; not common, repetitive, nor holding the email,
    /// the person's or the company's name.
    #[schema(required = true, value_type = String, min_length = 15, max_length = 128)]
    pub new_password: Option<String>,
}

/// Which session survives the change: the API caller gets a new pair of
/// tokens, the dashboard keeps the session (by its id's hash).
pub enum Keep {
    Api,
    Dashboard(Vec<u8>),
}

fn person_actor(user: UserId) -> super::access::Actor {
    super::access::Actor {
        kind: ActorType::User,
        id: user.to_string(),
    }
}

/// Changes the person's password after checking the current one; every other
/// session and refresh token of the person ends. A wrong current password is
/// audited and answered by field.
pub async fn change_own(
    svc: &Services,
    meta: &RequestMeta,
    (user, enterprise): (UserId, EnterpriseId),
    input: PasswordChange,
    keep: Keep,
) -> Result<Option<TokenPair>, AppError> {
    let current = input.current_password.unwrap_or_default();
    let new = input.new_password.unwrap_or_default();
    if current.is_empty() || current.len() > password::MAX_BYTES {
        return Err(AppError::field(
            "current_password",
            "required",
            "current_password is required",
        ));
    }
    let record = svc
        .db
        .read(move |conn| store::users::find_login(conn, enterprise, user).map_err(AppError::from))
        .await?
        .ok_or_else(AppError::unauthenticated)?;
    let person = record.user.clone();
    let matches = svc
        .passwords
        .verify_all(current, &person.email, vec![record.password_hash.clone()])
        .await?;
    let now = svc.clock.now();
    let event = |outcome| {
        AuditEvent::new("user.password.change", outcome, person_actor(user))
            .in_enterprise(enterprise)
            .target("user", user)
    };
    if !matches.first().copied().unwrap_or(false) {
        audit::record(svc, event(Outcome::Failure).reason("wrong_password"), meta).await?;
        return Err(AppError::field(
            "current_password",
            "wrong_password",
            "current_password is not your current password",
        ));
    }
    let context = [person.email.as_str(), &person.name, &record.company_name];
    if let Some(weakness) = password::problem(&new, &context) {
        return Err(AppError::field(
            "new_password",
            "weak_password",
            format!("new_password {weakness}"),
        ));
    }
    let hash = svc.passwords.hash(new, &person.email).await?;
    let refresh = sessions::new_refresh_token()?;
    let (meta_c, refresh_c, ttl) = (meta.clone(), refresh.clone(), svc.tokens.refresh_ttl_secs);
    let family = uuid::Uuid::now_v7().to_string();
    let (family_c, success) = (family.clone(), event(Outcome::Success));
    let api = matches!(keep, Keep::Api);
    let version = svc
        .db
        .write(move |txn| {
            // The token version moves on (every access token and dashboard
            // session ends) and every refresh family is revoked...
            store::users::set_password(txn, user, &hash, now)?;
            store::refresh_tokens::revoke_all_of(txn, user, now)?;
            let version = store::users::token_version(txn, user)?;
            // ...but the session the change was made from.
            match &keep {
                Keep::Api => {
                    sessions::store_refresh(txn, ttl, &family_c, (user, version), &refresh_c, now)?
                }
                Keep::Dashboard(id_hash) => {
                    store::web_sessions::keep_across(txn, id_hash, version)?
                }
            }
            audit::append(txn, &success, &meta_c, now)?;
            Ok::<_, AppError>(version)
        })
        .await?;
    if !api {
        return Ok(None);
    }
    sessions::token_pair(svc, &person, (version, &family), refresh, now).map(Some)
}

#[derive(utoipa::ToSchema, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgotPassword {
    #[schema(required = true, value_type = String, min_length = 1, max_length = 254)]
    pub email: Option<String>,
}

/// Reset emails one account may get per hour, whoever asks.
const RESET_EMAILS_PER_HOUR: u32 = 3;

/// Sends a reset link to every active account of `email` that has a password
/// (one per enterprise, each naming its company). The caller answers the same
/// 202 at once whatever the email: the work runs after the answer, so neither
/// the answer nor its timing tells whether the email exists anywhere.
pub fn forgot(svc: std::sync::Arc<Services>, meta: RequestMeta, input: ForgotPassword) {
    let address = email::normalize(input.email.as_deref().unwrap_or_default());
    if address.is_empty() || address.len() > email::MAX_LEN {
        return;
    }
    tokio::spawn(async move {
        if let Err(error) = send_reset_links(&svc, &meta, address).await {
            tracing::warn!(error = %error, "a password reset request could not be handled");
        }
    });
}

async fn send_reset_links(
    svc: &Services,
    meta: &RequestMeta,
    address: String,
) -> Result<(), AppError> {
    let lookup = address.clone();
    let accounts = svc
        .db
        .read(move |conn| {
            store::users::find_logins_by_email(conn, &lookup, None).map_err(AppError::from)
        })
        .await?;
    let policy = Policy {
        name: "password-reset-emails-per-account",
        limit: RESET_EMAILS_PER_HOUR,
        window: std::time::Duration::from_secs(3600),
    };
    // One email per account the request may still send to; every request,
    // sent or throttled, audited in the account's enterprise. One
    // transaction for all of them.
    let mut recipients = Vec::new();
    let mut events = Vec::new();
    for account in accounts {
        let user = account.user;
        if !user.active || account.password_hash.is_none() {
            continue;
        }
        let allowed = svc
            .limits
            .check(Bucket::PasswordResetMail(user.id), policy)
            .is_ok();
        let outcome = if allowed {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let event = AuditEvent::new(
            "user.password.reset_requested",
            outcome,
            person_actor(user.id),
        )
        .in_enterprise(user.enterprise_account_id)
        .target("user", user.id);
        events.push(if allowed {
            event
        } else {
            event.reason("throttled")
        });
        if allowed {
            recipients.push((user.enterprise_account_id, user.id, user.email));
        }
    }
    if events.is_empty() {
        return Ok(());
    }
    let (meta, now, queued) = (meta.clone(), svc.clock.now(), !recipients.is_empty());
    svc.db
        .write(move |txn| {
            for (enterprise, id, to) in &recipients {
                emails::queue_password_reset(txn, *enterprise, *id, to, now)?;
            }
            for event in &events {
                audit::append(txn, event, &meta, now)?;
            }
            Ok::<_, AppError>(())
        })
        .await?;
    if queued {
        svc.outbound.wake_email();
    }
    Ok(())
}

/// The operator's reset link for the person of `email` in `enterprise` (or
/// the only enterprise that knows the email), for the day the last IT admin
/// is locked out. Audited; the link works once, for
/// `auth.password_reset_ttl_minutes`.
pub async fn operator_link(
    db: &Db,
    clock: &crate::clock::SharedClock,
    (base, ttl_minutes): (&str, u32),
    address: &str,
    enterprise: Option<EnterpriseId>,
) -> Result<(String, String), AppError> {
    let address = email::normalize(address);
    let (now, ttl) = (
        clock.now(),
        chrono::Duration::minutes(i64::from(ttl_minutes)),
    );
    let (token, company) = db
        .write(move |txn| {
            let accounts = store::users::find_logins_by_email(txn, &address, enterprise)?;
            let account = match accounts.as_slice() {
                [] => return Err(AppError::NotFound { resource: "person with this email" }),
                [one] => one,
                several => {
                    let names: Vec<String> = several
                        .iter()
                        .map(|a| format!("{} ({})", a.user.enterprise_account_id, a.company_name))
                        .collect();
                    return Err(AppError::field(
                        "enterprise",
                        "ambiguous",
                        format!(
                            "{address} has an account in several enterprises; name one with --enterprise: {}",
                            names.join(", ")
                        ),
                    ));
                }
            };
            let user = &account.user;
            if !user.active {
                return Err(AppError::Conflict {
                    code: "user_inactive",
                    field: None,
                    message: format!("{address} is deactivated in this enterprise"),
                });
            }
            let token = invitations::issue(
                txn,
                LinkPurpose::PasswordReset,
                user.enterprise_account_id,
                user.id,
                ttl,
                now,
            )?;
            let event = AuditEvent::new(
                "user.password.reset_link",
                Outcome::Success,
                super::access::Actor {
                    kind: ActorType::System,
                    id: "cli".into(),
                },
            )
            .in_enterprise(user.enterprise_account_id)
            .target("user", user.id);
            audit::append(txn, &event, &RequestMeta::default(), now)?;
            Ok((token, account.company_name.clone()))
        })
        .await?;
    Ok((
        invitations::link(LinkPurpose::PasswordReset, base, &token),
        company,
    ))
}
