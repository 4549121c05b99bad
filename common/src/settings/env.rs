//! Reads described variables through a lookup function, and writes them back as `(name, value)` pairs; every
//! error names its variable.

use super::{
    SettingsError,
    var::{Refused, Var},
};

/// Typed reads of described variables.
pub(super) struct Env<'a>(pub(super) &'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// The value of `var`: its default when unset or empty (unless empty is a value for it), parsed.
    pub(super) fn get<T>(&self, var: &Var<T>) -> Result<T, SettingsError> {
        let text = match (self.0)(var.name) {
            Some(value) if !value.is_empty() || var.empty_is_value => value,
            _ => var.default.to_owned(),
        };
        (var.parse)(&text)
            .map_err(|Refused { reason, shown }| self.error(var.name, shown.as_deref().unwrap_or(&text), &reason))
    }

    /// A variable that is not thumbq's own (a cloud tool's credentials), as it is; none when unset or empty.
    pub(super) fn foreign(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.is_empty())
    }

    pub(super) fn error(&self, var: &'static str, value: &str, reason: &str) -> SettingsError {
        SettingsError { var, value: value.to_owned(), reason: reason.to_owned() }
    }
}

/// The variables [`Settings::to_env`](super::Settings::to_env) writes, in the order of their descriptions.
#[derive(Default)]
pub(super) struct Out(pub(super) Vec<(String, String)>);

impl Out {
    /// `var` set to `value`.
    pub(super) fn put<T>(&mut self, var: &Var<T>, value: &T) {
        self.0.push((var.name.to_owned(), (var.render)(value)));
    }

    /// `var` at its default: a setting that its current value does not use (the TTL of redirects that are off).
    pub(super) fn put_default<T>(&mut self, var: &Var<T>) {
        self.0.push((var.name.to_owned(), var.default.to_owned()));
    }

    /// `var` set to `value`, in place of what an earlier concern wrote for it (a variable two concerns share).
    pub(super) fn replace<T>(&mut self, var: &Var<T>, value: &T) {
        self.0.retain(|(name, _)| name != var.name);
        self.put(var, value);
    }

    /// A variable that is not thumbq's own, unless an earlier concern wrote it (the cloud tools' credentials are
    /// shared by the file store and the import store).
    pub(super) fn put_foreign(&mut self, name: &str, value: &str) {
        if !self.0.iter().any(|(written, _)| written == name) {
            self.0.push((name.to_owned(), value.to_owned()));
        }
    }
}
