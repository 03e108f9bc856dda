//! An enterprise's effective drop-directory settings: its profile (set through
//! the API, else written in the config file) over the appliance's `[dropdir]`
//! defaults.

use std::time::Duration;

use chrono::NaiveDate;
use encoding_rs::Encoding;
use serde::Serialize;

use super::formats::ReadOptions;
use crate::config::{CompletionPolicy, DropDirConfig};
use crate::domain::drop_profile::{delimiter_byte, DropProfile, Mapping, RowErrorPolicy};

/// Where an enterprise's profile comes from.
#[derive(utoipa::ToSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileSource {
    /// Set by an IT admin through `PUT /api/enterprise/drop-config`.
    Api,
    /// `[dropdir.profiles."<enterprise id>"]` in the config file.
    ConfigFile,
    /// Neither: the appliance's defaults.
    Defaults,
}

#[derive(Debug, Clone)]
pub struct DropSettings {
    pub profile: DropProfile,
    pub source: ProfileSource,
    pub completion: CompletionPolicy,
    pub quiet: Duration,
    pub fallback_encoding: &'static Encoding,
    pub users_files_are_full_exports: bool,
    pub full_export_name_contains: String,
    pub max_deactivate_percent: u32,
    pub max_deactivate_count: u32,
    pub delta_row_errors: RowErrorPolicy,
}

impl DropSettings {
    pub fn resolve(config: &DropDirConfig, profile: DropProfile, source: ProfileSource) -> Self {
        let fallback = profile
            .fallback_encoding
            .as_deref()
            .unwrap_or(&config.fallback_encoding);
        DropSettings {
            completion: profile.completion.unwrap_or(config.completion),
            quiet: Duration::from_secs(profile.quiet_secs.unwrap_or(config.quiet_secs)),
            fallback_encoding: Encoding::for_label(fallback.as_bytes())
                .unwrap_or(encoding_rs::WINDOWS_1252),
            users_files_are_full_exports: profile.users_files_are_full_exports,
            full_export_name_contains: profile
                .full_export_name_contains
                .clone()
                .unwrap_or_else(|| config.full_export_name_contains.clone()),
            max_deactivate_percent: profile
                .full_export_max_deactivate_percent
                .unwrap_or(config.full_export_max_deactivate_percent),
            max_deactivate_count: profile
                .full_export_max_deactivate_count
                .unwrap_or(config.full_export_max_deactivate_count),
            delta_row_errors: profile.delta_row_errors.unwrap_or_default(),
            profile,
            source,
        }
    }

    /// The config file's profile for the enterprise, or the defaults.
    pub fn from_config(config: &DropDirConfig, enterprise: &str) -> Self {
        match config.profiles.get(enterprise) {
            Some(profile) => Self::resolve(config, profile.clone(), ProfileSource::ConfigFile),
            None => Self::resolve(config, DropProfile::default(), ProfileSource::Defaults),
        }
    }

    pub fn read_options(&self, today: NaiveDate) -> ReadOptions<'_> {
        fn mapping(m: &Mapping) -> Option<&Mapping> {
            (!m.columns.is_empty() || m.dated_rows.is_some()).then_some(m)
        }
        let profile = &self.profile;
        ReadOptions {
            delimiter: profile.delimiter.as_deref().and_then(delimiter_byte),
            skip_top_lines: profile.skip_top_lines,
            skip_bottom_lines: profile.skip_bottom_lines,
            trim: profile.trim.unwrap_or(true),
            users: mapping(&profile.users),
            stores: mapping(&profile.stores),
            today,
        }
    }

    /// Whether a users file of this name is a full export.
    pub fn is_full_export(&self, file_name: &str) -> bool {
        let marker = self.full_export_name_contains.to_lowercase();
        self.users_files_are_full_exports
            || (!marker.is_empty() && file_name.to_lowercase().contains(&marker))
    }

    /// What the API shows as the settings in force.
    pub fn effective(&self) -> serde_json::Value {
        serde_json::json!({
            "completion": self.completion,
            "quiet_secs": self.quiet.as_secs(),
            "delimiter": self.profile.delimiter.clone().unwrap_or_else(|| "detected".into()),
            "fallback_encoding": self.fallback_encoding.name(),
            "skip_top_lines": self.profile.skip_top_lines,
            "skip_bottom_lines": self.profile.skip_bottom_lines,
            "trim": self.profile.trim.unwrap_or(true),
            "users_files_are_full_exports": self.users_files_are_full_exports,
            "full_export_name_contains": self.full_export_name_contains,
            "full_export_max_deactivate_percent": self.max_deactivate_percent,
            "full_export_max_deactivate_count": self.max_deactivate_count,
            "delta_row_errors": self.delta_row_errors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_fills_only_what_it_names() {
        let mut config = DropDirConfig::default();
        let profile: DropProfile = serde_json::from_value(serde_json::json!({
            "completion": "marker", "full_export_max_deactivate_count": 500
        }))
        .unwrap();
        config.profiles.insert("ent-1".into(), profile);
        let ours = DropSettings::from_config(&config, "ent-1");
        assert_eq!(ours.source, ProfileSource::ConfigFile);
        assert_eq!(ours.completion, CompletionPolicy::Marker);
        assert_eq!(ours.max_deactivate_count, 500);
        assert_eq!(
            ours.max_deactivate_percent,
            config.full_export_max_deactivate_percent
        );
        assert_eq!(ours.quiet, Duration::from_secs(config.quiet_secs));
        let theirs = DropSettings::from_config(&config, "ent-2");
        assert_eq!(theirs.source, ProfileSource::Defaults);
        assert_eq!(theirs.completion, config.completion);
        assert!(ours.is_full_export("users_FULL_1.csv"));
        assert!(!ours.is_full_export("users_delta.csv"));
    }
}
