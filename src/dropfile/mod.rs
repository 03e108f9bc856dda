//! Reading drop files, below the services that own their lifecycle: formats
//! (CSV with detected delimiters, JSON, encodings, SAP-style dated rows),
//! column mapping by an enterprise's profile, streaming of large files in
//! bounded memory, each enterprise's effective settings, and the folder layout
//! under the drop root. No file here knows the watcher, the database or HTTP.

pub mod formats;
pub mod layout;
pub mod mapping;
pub mod open;
pub mod settings;
pub mod stream;
pub mod waiting;

/// Why a claimed file is not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Symlink,
    NotRegular(&'static str),
    HardLinked(u64),
    TooLarge { size: u64, limit: u64 },
    Unreadable(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Symlink => write!(f, "a symbolic link (never followed)"),
            Refusal::NotRegular(kind) => write!(f, "not a regular file but a {kind}"),
            Refusal::HardLinked(links) => write!(f, "a hard link ({links} names for one file)"),
            Refusal::TooLarge { size, limit } => write!(
                f,
                "{size} bytes, over the limit of {limit} (dropdir.max_file_bytes)"
            ),
            Refusal::Unreadable(why) => write!(f, "unreadable: {why}"),
        }
    }
}
