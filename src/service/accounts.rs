//! Enterprise registration: the account and its first IT administrator.

use serde::{Deserialize, Serialize};

use super::access::Actor;
use super::audit::{self, AuditEvent};
use super::{registration_tokens, RequestMeta, Services};
use crate::config::RegistrationPolicy;
use crate::domain::audit::{ActorType, Outcome};
use crate::domain::{
    email, password, EnterpriseId, EnterpriseSyncMode, RecordSyncMode, Role, UserId,
};
use crate::error::FieldError;
use crate::store;
use crate::store::enterprises::NewEnterprise;
use crate::store::users::NewUser;
use crate::AppError;

/// The seed's registration body. Every field is optional here so that a missing
/// one is reported by name with the others, not as a parse failure.
#[derive(utoipa::ToSchema, Debug, Deserialize)]
pub struct Registration {
    #[schema(required = true, value_type = String, min_length = 1, max_length = 200, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub company_name: Option<String>,
    #[schema(required = true, value_type = String, format = Email, max_length = 254)]
    pub company_email: Option<String>,
    /// `api` (default), `scim` or `file`.
    #[schema(value_type = Option<EnterpriseSyncMode>)]
    pub sync_mode: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, max_length = 200, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub it_admin_name: Option<String>,
    #[schema(required = true, value_type = String, format = Email, max_length = 254)]
    pub it_admin_email: Option<String>,
    /// 15 to 128 characters, not common, repetitive, nor holding the email or
    /// the names.
    #[schema(required = true, value_type = String, min_length = 15, max_length = 128)]
    pub it_admin_password: Option<String>,
    /// Absent: the appliance's `accounts.default_seats` (1000 by default).
    #[schema(minimum = 0, maximum = 10_000_000)]
    pub seats_purchased: Option<i64>,
    /// An operator's one-time registration token, when registration is
    /// closed (also accepted as the `X-Registration-Token` header).
    pub registration_token: Option<String>,
}

#[derive(utoipa::ToSchema, Debug, Serialize)]
pub struct Registered {
    pub enterprise_account_id: EnterpriseId,
    pub it_admin_id: UserId,
    pub company_name: String,
    pub sync_mode: EnterpriseSyncMode,
    pub seats_purchased: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

struct ValidRegistration {
    company_name: String,
    company_email: String,
    sync_mode: EnterpriseSyncMode,
    admin_name: String,
    admin_email: String,
    admin_password: String,
    seats_purchased: i64,
}

pub use crate::domain::records::MAX_SEATS;

pub(crate) fn required_text(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<String>,
    max: usize,
) -> String {
    let value = value.unwrap_or_default().trim().to_string();
    if value.is_empty() {
        errors.push(FieldError::new(
            field,
            "required",
            format!("{field} is required"),
        ));
    } else if value.chars().any(char::is_control) {
        errors.push(FieldError::new(
            field,
            "invalid_value",
            format!("{field} must not contain control characters"),
        ));
    } else if value.chars().count() > max {
        errors.push(FieldError::new(
            field,
            "too_long",
            format!("{field} must be at most {max} characters"),
        ));
    }
    value
}

pub(crate) fn checked_email(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<String>,
) -> String {
    let normalized = email::normalize(value.as_deref().unwrap_or_default());
    if let Some(problem) = email::problem(&normalized) {
        errors.push(FieldError::new(
            field,
            "invalid_email",
            format!("{field} {problem}"),
        ));
    }
    normalized
}

fn validate(input: Registration, default_seats: i64) -> Result<ValidRegistration, AppError> {
    let mut errors = Vec::new();
    let company_name = required_text(&mut errors, "company_name", input.company_name, 200);
    let company_email = checked_email(&mut errors, "company_email", input.company_email);
    let sync_mode = match input.sync_mode.as_deref().map(str::trim) {
        None | Some("") => EnterpriseSyncMode::Api,
        Some(mode) => EnterpriseSyncMode::parse(mode).unwrap_or_else(|| {
            errors.push(FieldError::new(
                "sync_mode",
                "invalid_value",
                "sync_mode must be api, scim or file",
            ));
            EnterpriseSyncMode::Api
        }),
    };
    let admin_name = required_text(&mut errors, "it_admin_name", input.it_admin_name, 200);
    let admin_email = checked_email(&mut errors, "it_admin_email", input.it_admin_email);
    let admin_password = input.it_admin_password.unwrap_or_default();
    if let Some(problem) =
        password::problem(&admin_password, &[&admin_email, &admin_name, &company_name])
    {
        errors.push(FieldError::new(
            "it_admin_password",
            "weak_password",
            format!("it_admin_password {problem}"),
        ));
    }
    let seats_purchased = input.seats_purchased.unwrap_or(default_seats);
    if !(0..=MAX_SEATS).contains(&seats_purchased) {
        errors.push(FieldError::new(
            "seats_purchased",
            "out_of_range",
            format!("seats_purchased must be between 0 and {MAX_SEATS}"),
        ));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    Ok(ValidRegistration {
        company_name,
        company_email,
        sync_mode,
        admin_name,
        admin_email,
        admin_password,
        seats_purchased,
    })
}

fn registration_closed() -> AppError {
    AppError::forbidden(
        "registration_closed",
        "Registration is closed on this appliance: ask its operator for a registration \
         token (enterprise-sync registration-token)",
    )
}

/// Inserts the enterprise and its first IT admin (with a password, or none
/// yet when the operator creates it and invites them), audited.
fn create_in(
    txn: &rusqlite::Connection,
    valid: &ValidRegistration,
    (enterprise, admin): (EnterpriseId, UserId),
    password_hash: Option<&str>,
    actor: Actor,
    (meta, now): (&RequestMeta, chrono::DateTime<chrono::Utc>),
) -> Result<Registered, AppError> {
    store::enterprises::insert(
        txn,
        &NewEnterprise {
            id: enterprise,
            company_name: &valid.company_name,
            company_email: &valid.company_email,
            sync_mode: valid.sync_mode,
            seats_purchased: valid.seats_purchased,
            now,
        },
    )?;
    // A new enterprise has no one yet: its admin's email may belong to
    // people of other enterprises, and nothing here says whether it does.
    store::users::insert(
        txn,
        &NewUser {
            id: admin,
            enterprise_account_id: enterprise,
            email: &valid.admin_email,
            name: &valid.admin_name,
            role: Role::ItAdmin,
            store_id: None,
            manager_id: None,
            external_id: None,
            sync_mode: RecordSyncMode::Manual,
            password_hash,
            now,
        },
    )?;
    let event = AuditEvent::new("enterprise.register", Outcome::Success, actor)
        .in_enterprise(enterprise)
        .target("enterprise", enterprise)
        .changes(serde_json::json!({
            "sync_mode": valid.sync_mode.as_str(),
            "seats_purchased": valid.seats_purchased,
            "it_admin_id": admin,
        }));
    audit::append(txn, &event, meta, now)?;
    Ok(Registered {
        enterprise_account_id: enterprise,
        it_admin_id: admin,
        company_name: valid.company_name.clone(),
        sync_mode: valid.sync_mode,
        seats_purchased: valid.seats_purchased,
        created_at: now,
    })
}

/// `enterprise-sync create-enterprise`: the operator creates an enterprise and
/// its first IT admin without a password, whatever `allow_registration` says;
/// the admin sets one through the invitation link returned (valid
/// `auth.invitation_ttl_hours`).
pub async fn create_by_operator(
    db: &crate::store::Db,
    config: &crate::config::Config,
    now: chrono::DateTime<chrono::Utc>,
    input: Registration,
) -> Result<(Registered, String), AppError> {
    // No password: a placeholder that passes the policy keeps one validation.
    let input = Registration {
        it_admin_password: Some("operator-created account: invited".into()),
        ..input
    };
    let valid = validate(input, config.accounts.default_seats)?;
    let (enterprise, admin) = (EnterpriseId::generate(), UserId::generate());
    let ttl = config.auth.invitation_ttl_hours;
    let (registered, token) = db
        .write(move |txn| {
            let registered = create_in(
                txn,
                &valid,
                (enterprise, admin),
                None,
                Actor {
                    kind: ActorType::System,
                    id: "cli".into(),
                },
                (&RequestMeta::default(), now),
            )?;
            let token = super::invitations::issue(
                txn,
                super::invitations::LinkPurpose::Invitation,
                enterprise,
                admin,
                chrono::Duration::hours(i64::from(ttl)),
                now,
            )?;
            Ok::<_, AppError>((registered, token))
        })
        .await?;
    let base = public_base(config);
    Ok((
        registered,
        super::invitations::link(super::invitations::LinkPurpose::Invitation, &base, &token),
    ))
}

/// Where people reach the service, for links an operator command prints.
pub fn public_base(config: &crate::config::Config) -> String {
    config
        .public_base_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.listen))
}

pub async fn register(
    svc: &Services,
    meta: &RequestMeta,
    input: Registration,
) -> Result<Registered, AppError> {
    let policy = svc.settings().allow_registration;
    let token_hash = input
        .registration_token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 128)
        .map(registration_tokens::hash);
    if policy == RegistrationPolicy::Closed && token_hash.is_none() {
        return Err(registration_closed());
    }
    let valid = validate(input, svc.config.accounts.default_seats)?;
    let password_hash = svc
        .passwords
        .hash(valid.admin_password.clone(), &valid.admin_email)
        .await?;
    let now = svc.clock.now();
    let enterprise = EnterpriseId::generate();
    let admin = UserId::generate();
    let meta = meta.clone();
    let result = svc
        .db
        .write(move |txn| {
            // Decided inside the transaction: two "first" registrations at once
            // cannot both be the first.
            let open = match policy {
                RegistrationPolicy::Open => true,
                RegistrationPolicy::First => !store::enterprises::any(txn)?,
                RegistrationPolicy::Closed => false,
            };
            if !open {
                let spent = match &token_hash {
                    Some(hash) => store::registration_tokens::spend(txn, hash, enterprise, now)?,
                    None => false,
                };
                if !spent {
                    return Err(registration_closed());
                }
            }
            create_in(
                txn,
                &valid,
                (enterprise, admin),
                Some(&password_hash),
                Actor {
                    kind: ActorType::User,
                    id: admin.to_string(),
                },
                (&meta, now),
            )
        })
        .await;
    if let Ok(registered) = &result {
        tracing::info!(enterprise = %registered.enterprise_account_id, "enterprise registered");
        if svc.config.dropdir.enabled {
            // The drop folders exist as soon as the enterprise does, so the SFTP
            // account can be set up at once; the scanner starts watching them.
            let folders = crate::dropfile::layout::Folders::of(
                &svc.settings(),
                registered.enterprise_account_id,
            );
            match tokio::task::spawn_blocking(move || folders.provision()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "creating the drop folders failed"),
                Err(e) => tracing::warn!(error = %e, "creating the drop folders failed"),
            }
            if let Some(drop_dir) = svc.drop_dir.get() {
                drop_dir.wake();
            }
        }
    }
    result
}
