//! Checking an email and password: every account the email names, one argon2
//! run whatever their number, lockouts per client address first and
//! account-wide far later, failures audited in the account's enterprise.

use super::*;

/// Lockout after repeated failures: doubling from one minute, capped.
pub(super) fn lock_for(failures: u32, threshold: u32, max_secs: u64) -> Option<chrono::Duration> {
    if failures < threshold {
        return None;
    }
    let exponent = (failures - threshold).min(20);
    let secs = 60u64.saturating_mul(1 << exponent).min(max_secs);
    Some(chrono::Duration::seconds(
        i64::try_from(secs).unwrap_or(3600),
    ))
}

/// How many times an account's address-level threshold its account-wide
/// lockout waits for: a stranger guessing from a few addresses cannot lock a
/// real person out, a distributed guesser still meets a ceiling.
pub(super) const ACCOUNT_CEILING_FACTOR: u32 = 10;

/// How long an address stays shut out of an account after its failures.
pub(super) const ADDRESS_LOCKOUT: Duration = Duration::from_secs(15 * 60);

/// Accounts shut to one client address after repeated failed sign-ins from it.
#[derive(Default)]
pub struct AddressLockouts {
    /// Until when (monotonic), per account and address.
    locked: Mutex<HashMap<(UserId, IpAddr), Duration>>,
}

impl AddressLockouts {
    fn is_locked(&self, user: UserId, ip: IpAddr, now: Duration) -> bool {
        self.locked
            .lock()
            .map(|locked| locked.get(&(user, ip)).is_some_and(|until| *until > now))
            .unwrap_or(true)
    }

    fn lock(&self, user: UserId, ip: IpAddr, now: Duration) {
        if let Ok(mut locked) = self.locked.lock() {
            // Strangers choose the addresses: forget the lockouts that ended.
            if locked.len() > 10_000 {
                locked.retain(|_, until| *until > now);
            }
            locked.insert((user, ip), now + ADDRESS_LOCKOUT);
        }
    }
}

/// A person whose email and password matched.
pub(crate) struct Verified {
    pub user: User,
    pub token_version: i64,
    /// A new hash when the stored one used older parameters.
    pub rehash: Option<String>,
    pub now: DateTime<Utc>,
}

/// The enterprise a sign-in names, if any: a malformed id is the person's
/// typing, answered by field; a well-formed one that names nothing finds no
/// account, like a wrong password.
pub(super) fn named_enterprise(input: Option<&str>) -> Result<Option<EnterpriseId>, AppError> {
    match input.map(str::trim).filter(|id| !id.is_empty()) {
        None => Ok(None),
        Some(id) => id.parse().map(Some).map_err(|_| {
            AppError::field(
                "enterprise_id",
                "invalid",
                "enterprise_id is the id of an enterprise (a UUID)",
            )
        }),
    }
}

/// Checks an email and password against every account the email names (one
/// per enterprise at most): the account they open signs in; when they open
/// several, the person names the enterprise (only those are listed). Unknown
/// emails, wrong passwords and locked accounts get the same answer for the
/// same work — one argon2 run however many enterprises know the email (see
/// `passwords`) — so nothing tells whether the email exists, here or in
/// another enterprise. Repeated failures lock an account out for the address
/// they come from, and far later for everyone; failures are audited in the
/// account's enterprise. The caller records the success with
/// [`record_success`] in its own transaction.
pub(crate) async fn verify_password(
    svc: &Services,
    meta: &RequestMeta,
    input: Credentials,
) -> Result<Verified, AppError> {
    let email = email::normalize(input.email.as_deref().unwrap_or_default());
    let password = input.password.unwrap_or_default();
    if email.is_empty()
        || password.is_empty()
        || password.len() > password::MAX_BYTES
        || email.len() > email::MAX_LEN
    {
        return Err(AppError::invalid_credentials());
    }
    let enterprise = named_enterprise(input.enterprise_id.as_deref())?;
    let lookup = email.clone();
    let mut records: Vec<LoginRecord> = svc
        .db
        .read(move |conn| {
            store::users::find_logins_by_email(conn, &lookup, enterprise).map_err(AppError::from)
        })
        .await?;
    let now = svc.clock.now();
    let address = meta.ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let monotonic = svc.clock.monotonic();

    // Every stored hash is checked, locked or not, so the work does not
    // depend on an account's state.
    let stored = records.iter().map(|r| r.password_hash.clone()).collect();
    let matches = svc
        .passwords
        .verify_all(password.clone(), &email, stored)
        .await?;
    let address_locked: Vec<bool> = records
        .iter()
        .map(|r| {
            svc.address_lockouts
                .is_locked(r.user.id, address, monotonic)
        })
        .collect();
    let opens = |i: usize| {
        let record = &records[i];
        matches[i]
            && record.user.active
            && !address_locked[i]
            && record.locked_until.is_none_or(|until| until <= now)
    };
    let opened: Vec<usize> = (0..records.len()).filter(|&i| opens(i)).collect();

    if let [only] = opened[..] {
        let record = records.swap_remove(only);
        let rehash = match &record.password_hash {
            Some(hash) if svc.passwords.needs_rehash(hash, &email) => {
                Some(svc.passwords.hash(password, &email).await?)
            }
            _ => None,
        };
        return Ok(Verified {
            user: record.user,
            token_version: record.token_version,
            rehash,
            now,
        });
    }
    if opened.len() > 1 {
        // The person proved they hold each of these accounts.
        let choices = opened
            .iter()
            .map(|&i| crate::error::EnterpriseChoice {
                id: records[i].user.enterprise_account_id.to_string(),
                company_name: records[i].company_name.clone(),
            })
            .collect();
        return Err(AppError::EnterpriseRequired(choices));
    }

    if records.is_empty() {
        audit::record(
            svc,
            AuditEvent::anonymous("auth.login", Outcome::Failure).reason("unknown_email"),
            meta,
        )
        .await?;
        return Err(AppError::invalid_credentials());
    }
    let auth = &svc.config.auth;
    let threshold = auth.lockout_threshold.max(1);
    let mut failures = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let user = &record.user;
        let fail = |reason: &'static str| {
            AuditEvent::new("auth.login", Outcome::Failure, user_actor(user.id))
                .in_enterprise(user.enterprise_account_id)
                .target("user", user.id)
                .reason(reason)
        };
        if address_locked[i] || record.locked_until.is_some_and(|until| until > now) {
            let reason = if address_locked[i] {
                "address_locked"
            } else {
                "account_locked"
            };
            failures.push(AccountFailure {
                user: user.id,
                counted: None,
                events: vec![fail(reason)],
            });
            continue;
        }
        let reason = if !user.active {
            "inactive"
        } else if record.password_hash.is_none() {
            "no_password"
        } else {
            "wrong_password"
        };
        let count = record.failed_login_count.saturating_add(1);
        let mut events = vec![fail(reason)];
        // This address's failures first: after `threshold` of them in 15
        // minutes it is shut out of this account, the others are not.
        let address_policy = Policy {
            name: "login-failures-per-address",
            limit: threshold,
            window: ADDRESS_LOCKOUT,
        };
        match svc
            .limits
            .check(Bucket::LoginFailures(user.id, address), address_policy)
        {
            Ok(allowed) if allowed.remaining > 0 => {}
            // This failure used the address's last try (or it was over already).
            _ => {
                svc.address_lockouts.lock(user.id, address, monotonic);
                events.push(fail("lockout_started").changes(serde_json::json!({
                    "scope": "address",
                    "address": address.to_string(),
                    "locked_for_secs": ADDRESS_LOCKOUT.as_secs(),
                })));
            }
        }
        let locked_until = lock_for(
            count,
            threshold.saturating_mul(ACCOUNT_CEILING_FACTOR),
            auth.lockout_max_secs,
        )
        .map(|d| now + d);
        if let Some(until) = locked_until {
            events.push(fail("lockout_started").changes(serde_json::json!({
                "scope": "account",
                "failures": count,
                "locked_until": store::ts(until),
            })));
            tracing::warn!(user = %user.id, failures = count, "account temporarily locked after failed logins");
        }
        failures.push(AccountFailure {
            user: user.id,
            counted: Some((count, locked_until)),
            events,
        });
    }
    let meta_c = meta.clone();
    svc.db
        .write(move |txn| {
            for failure in &failures {
                if let Some((count, locked_until)) = failure.counted {
                    store::users::record_login_failure(txn, failure.user, count, locked_until)?;
                }
                for event in &failure.events {
                    audit::append(txn, event, &meta_c, now)?;
                }
            }
            Ok::<_, AppError>(())
        })
        .await?;
    Err(AppError::invalid_credentials())
}

/// What a failed sign-in leaves on one account: its failure count and
/// lockout (none while it is locked already) and the audit events.
pub(super) struct AccountFailure {
    user: UserId,
    counted: Option<(u32, Option<DateTime<Utc>>)>,
    events: Vec<AuditEvent>,
}

/// Inside the sign-in's transaction: failures reset, a newer hash stored, the
/// success audited (`via`: `api` or `dashboard`).
pub(crate) fn record_success(
    txn: &rusqlite::Connection,
    verified: &Verified,
    via: &str,
    meta: &RequestMeta,
) -> Result<(), AppError> {
    let user = &verified.user;
    store::users::record_login_success(txn, user.id)?;
    if let Some(hash) = &verified.rehash {
        store::users::replace_password_hash(txn, user.id, hash)?;
    }
    let event = AuditEvent::new("auth.login", Outcome::Success, user_actor(user.id))
        .in_enterprise(user.enterprise_account_id)
        .target("user", user.id)
        .changes(serde_json::json!({ "via": via }));
    audit::append(txn, &event, meta, verified.now)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_doubles_and_caps() {
        assert_eq!(lock_for(9, 10, 3600), None);
        assert_eq!(lock_for(10, 10, 3600), Some(chrono::Duration::seconds(60)));
        assert_eq!(lock_for(11, 10, 3600), Some(chrono::Duration::seconds(120)));
        assert_eq!(
            lock_for(40, 10, 3600),
            Some(chrono::Duration::seconds(3600))
        );
    }
}
