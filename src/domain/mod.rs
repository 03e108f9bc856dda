//! Plain types and validation shared by every layer. Nothing here does I/O.

pub mod api_key_token;
pub mod audit;
pub mod drop_profile;
pub mod email;
pub mod html;
pub mod ids;
pub mod import;
pub mod import_body;
pub mod net_guard;
pub mod notifications;
pub mod password;
pub mod records;
pub mod retry;
pub mod scim;
pub mod scope;
pub mod spreadsheet;
pub mod text;
pub mod webhook;

pub use ids::{ApiKeyId, EnterpriseId, StoreId, UserId, WebhookId};
pub use records::{Enterprise, EnterpriseSyncMode, FileState, RecordSyncMode, Role, Store, User};
pub use scope::{Scope, ScopeSet};
