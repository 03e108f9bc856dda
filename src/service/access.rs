//! Who is calling, and the capabilities a permission check hands out. Admin
//! services take an [`AdminCtx`], which only [`Principal::require_admin`] makes,
//! so an admin operation cannot be reached without passing the check.

use crate::domain::audit::ActorType;
use crate::domain::{ApiKeyId, EnterpriseId, Role, Scope, ScopeSet, UserId};
use crate::AppError;

#[derive(Debug, Clone, Copy)]
pub enum Principal {
    User {
        user: UserId,
        enterprise: EnterpriseId,
        role: Role,
    },
    ApiKey {
        key: ApiKeyId,
        enterprise: EnterpriseId,
        scopes: ScopeSet,
    },
}

/// Proof that the caller is an IT admin of `enterprise`.
#[derive(Debug, Clone)]
pub struct AdminCtx {
    enterprise: EnterpriseId,
    user: UserId,
}

/// Proof that the caller may act within `enterprise` (a key holding the needed
/// scope, or one of its IT admins on a read route).
#[derive(Debug, Clone)]
pub struct EnterpriseCtx {
    enterprise: EnterpriseId,
    principal: Principal,
}

#[derive(Debug, Clone)]
pub struct Actor {
    pub kind: ActorType,
    pub id: String,
}

impl AdminCtx {
    pub fn enterprise(&self) -> EnterpriseId {
        self.enterprise
    }
    pub fn user(&self) -> UserId {
        self.user
    }
    pub fn actor(&self) -> Actor {
        Actor {
            kind: ActorType::User,
            id: self.user.to_string(),
        }
    }
}

impl EnterpriseCtx {
    pub fn enterprise(&self) -> EnterpriseId {
        self.enterprise
    }
    pub fn actor(&self) -> Actor {
        self.principal.actor()
    }
}

/// Scopes an IT admin's own session also grants: reading what the sync did.
const ADMIN_READABLE: [Scope; 3] = [Scope::UsersRead, Scope::StoresRead, Scope::SyncRead];

impl Principal {
    pub fn enterprise(&self) -> EnterpriseId {
        match self {
            Principal::User { enterprise, .. } | Principal::ApiKey { enterprise, .. } => {
                *enterprise
            }
        }
    }

    pub fn actor(&self) -> Actor {
        match self {
            Principal::User { user, .. } => Actor {
                kind: ActorType::User,
                id: user.to_string(),
            },
            Principal::ApiKey { key, .. } => Actor {
                kind: ActorType::ApiKey,
                id: key.to_string(),
            },
        }
    }

    pub fn require_admin(&self) -> Result<AdminCtx, AppError> {
        match self {
            Principal::User {
                user,
                enterprise,
                role: Role::ItAdmin,
            } => Ok(AdminCtx {
                enterprise: *enterprise,
                user: *user,
            }),
            Principal::User { .. } => Err(AppError::forbidden(
                "admin_only",
                "Only an IT administrator may call this endpoint",
            )),
            Principal::ApiKey { .. } => Err(AppError::forbidden(
                "admin_only",
                "API keys cannot call this endpoint; sign in as an IT administrator",
            )),
        }
    }

    pub fn require_scope(&self, scope: Scope) -> Result<EnterpriseCtx, AppError> {
        let allowed = match self {
            Principal::ApiKey { scopes, .. } => scopes.contains(scope),
            Principal::User { role, .. } => {
                *role == Role::ItAdmin && ADMIN_READABLE.contains(&scope)
            }
        };
        if !allowed {
            return Err(AppError::forbidden(
                "insufficient_scope",
                format!("This endpoint requires the {scope} scope"),
            ));
        }
        Ok(EnterpriseCtx {
            enterprise: self.enterprise(),
            principal: *self,
        })
    }

    /// A signed-in person (any role), as opposed to a machine key.
    pub fn require_user(&self) -> Result<(UserId, EnterpriseId), AppError> {
        match self {
            Principal::User {
                user, enterprise, ..
            } => Ok((*user, *enterprise)),
            Principal::ApiKey { .. } => Err(AppError::forbidden(
                "user_only",
                "This endpoint is for signed-in users, not API keys",
            )),
        }
    }
}
