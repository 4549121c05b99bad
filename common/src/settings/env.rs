//! Typed reads of environment variables with defaults; every error names its variable.

use std::{str::FromStr, time::Duration};

use super::SettingsError;

/// Typed reads of variables with defaults.
pub(super) struct Env<'a>(pub(super) &'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    pub(super) fn string(&self, var: &str, default: &str) -> String {
        (self.0)(var).filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
    }

    pub(super) fn parse<T: FromStr>(&self, var: &'static str, default: T) -> Result<T, SettingsError>
    where
        T::Err: std::fmt::Display,
    {
        match (self.0)(var).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(value) => value.trim().parse().map_err(|e: T::Err| self.error(var, &value, &e.to_string())),
        }
    }

    pub(super) fn positive<T: FromStr + Default + PartialEq>(
        &self,
        var: &'static str,
        default: T,
    ) -> Result<T, SettingsError>
    where
        T::Err: std::fmt::Display,
    {
        let value = self.parse(var, default)?;
        if value == T::default() {
            return Err(self.error(var, "0", "must be greater than 0"));
        }
        Ok(value)
    }

    /// A yes/no setting: `1`, `true`, `yes` or `on`; `0`, `false`, `no` or `off`.
    pub(super) fn flag(&self, var: &'static str, default: bool) -> Result<bool, SettingsError> {
        match (self.0)(var).filter(|v| !v.is_empty()).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
            Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
            Some(v) => Err(self.error(var, &v, "expected 1 or 0 (true/false, yes/no, on/off)")),
        }
    }

    pub(super) fn millis(&self, var: &'static str, default: u64) -> Result<Duration, SettingsError> {
        self.positive(var, default).map(Duration::from_millis)
    }

    pub(super) fn error(&self, var: &'static str, value: &str, reason: &str) -> SettingsError {
        SettingsError { var, value: value.to_owned(), reason: reason.to_owned() }
    }
}
