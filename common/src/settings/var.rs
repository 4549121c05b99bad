//! The description of one environment variable ([`Var`]): name, default, one doc line, and the parser and renderer
//! of its value. Each concern's module declares its variables once as `static`s of this type; reading
//! ([`Settings::from_lookup`](super::Settings::from_lookup)), writing back ([`Settings::to_env`](super::Settings::to_env))
//! and the test that keeps README.md and `.env.example` in line all go through these descriptions.
//!
//! Why not clap's derive with `env = "THUMBQ_…"`: clap reads the process environment itself, while settings are
//! read through a lookup function so that tests parse many configurations side by side without touching the
//! process-wide environment; clap also reads an empty variable as unset, and `THUMBQ_PRESETS=` must mean "no
//! presets". The settings also hang together in ways a flat list of arguments does not (`THUMBQ_AUTH=auto` follows
//! `THUMBQ_BIND`; a signing key is checked only with signed URLs on), which the concern modules' `read` functions
//! express after each variable has been parsed on its own.

use std::{fmt::Display, str::FromStr, time::Duration};

/// One environment variable, described once.
pub struct Var<T: 'static> {
    /// Its name, `THUMBQ_…`.
    pub name: &'static str,
    /// Its default as it would be written in the environment; empty when there is none or it is worked out at
    /// start-up (the README's table says how).
    pub default: &'static str,
    /// What it does, in one line: the README's table row says exactly this.
    pub doc: &'static str,
    /// Whether an empty value is a value (`THUMBQ_PRESETS=`: no presets) rather than the default.
    pub(super) empty_is_value: bool,
    /// Text to value.
    pub(super) parse: fn(&str) -> Result<T, Refused>,
    /// Value to text, such that parsing it gives the value back.
    pub(super) render: fn(&T) -> String,
}

/// Name, default and doc line of a variable of any type, for listing them all.
pub trait Described: Sync {
    /// The variable's name.
    fn name(&self) -> &'static str;
    /// Its default as text (empty: none, or worked out at start-up).
    fn default(&self) -> &'static str;
    /// Its one doc line.
    fn doc(&self) -> &'static str;
}

impl<T: 'static> Described for Var<T> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn default(&self) -> &'static str {
        self.default
    }

    fn doc(&self) -> &'static str {
        self.doc
    }
}

/// Why a value was refused; the caller adds the variable's name.
pub(super) struct Refused {
    /// What is wrong with it.
    pub(super) reason: String,
    /// The value to show instead of the one given (`"(hidden)"` for a secret, `"0"` for a zero).
    pub(super) shown: Option<String>,
}

impl Refused {
    /// A refusal showing the value as given.
    pub(super) fn new(reason: impl Into<String>) -> Self {
        Self { reason: reason.into(), shown: None }
    }

    /// A refusal showing `shown` in place of the value.
    pub(super) fn showing(shown: &str, reason: impl Into<String>) -> Self {
        Self { reason: reason.into(), shown: Some(shown.to_owned()) }
    }
}

impl<T> Var<T> {
    /// A variable with its own parser and renderer.
    pub(super) const fn new(
        name: &'static str,
        default: &'static str,
        doc: &'static str,
        parse: fn(&str) -> Result<T, Refused>,
        render: fn(&T) -> String,
    ) -> Self {
        Self { name, default, doc, empty_is_value: false, parse, render }
    }
}

impl Var<String> {
    /// Free text, taken as it is.
    pub(super) const fn text(name: &'static str, default: &'static str, doc: &'static str) -> Self {
        Self::new(name, default, doc, |s| Ok(s.to_owned()), String::clone)
    }
}

impl Var<Option<String>> {
    /// Free text, none when empty.
    pub(super) const fn optional_text(name: &'static str, doc: &'static str) -> Self {
        Self::new(
            name,
            "",
            doc,
            |s| Ok(Some(s.to_owned()).filter(|s| !s.is_empty())),
            |v| v.clone().unwrap_or_default(),
        )
    }
}

impl<T: FromStr + Display> Var<T>
where
    T::Err: Display,
{
    /// A value of a type that parses itself (surrounding blanks ignored).
    pub(super) const fn parsed(name: &'static str, default: &'static str, doc: &'static str) -> Self {
        Self::new(name, default, doc, parse::<T>, T::to_string)
    }
}

impl<T: FromStr + Display + Default + PartialEq> Var<T>
where
    T::Err: Display,
{
    /// A number that must not be 0.
    pub(super) const fn positive(name: &'static str, default: &'static str, doc: &'static str) -> Self {
        Self::new(name, default, doc, positive::<T>, T::to_string)
    }
}

impl Var<Duration> {
    /// Milliseconds, more than 0.
    pub(super) const fn millis(name: &'static str, default: &'static str, doc: &'static str) -> Self {
        Self::new(name, default, doc, |s| positive::<u64>(s).map(Duration::from_millis), |d| d.as_millis().to_string())
    }

    /// Seconds, more than 0.
    pub(super) const fn secs(name: &'static str, default: &'static str, doc: &'static str) -> Self {
        Self::new(name, default, doc, |s| positive::<u64>(s).map(Duration::from_secs), |d| d.as_secs().to_string())
    }

    /// Seconds, 0 allowed.
    pub(super) const fn secs_or_zero(name: &'static str, default: &'static str, doc: &'static str) -> Self {
        Self::new(name, default, doc, |s| parse::<u64>(s).map(Duration::from_secs), |d| d.as_secs().to_string())
    }
}

impl Var<bool> {
    /// A yes/no setting: `1`, `true`, `yes` or `on`; `0`, `false`, `no` or `off`.
    pub(super) const fn flag(name: &'static str, default: &'static str, doc: &'static str) -> Self {
        Self::new(name, default, doc, flag, |on| if *on { "1" } else { "0" }.to_owned())
    }
}

/// A value of a type that parses itself, surrounding blanks ignored.
pub(super) fn parse<T: FromStr>(text: &str) -> Result<T, Refused>
where
    T::Err: Display,
{
    text.trim().parse().map_err(|e: T::Err| Refused::new(e.to_string()))
}

/// A number other than 0.
pub(super) fn positive<T: FromStr + Default + PartialEq>(text: &str) -> Result<T, Refused>
where
    T::Err: Display,
{
    let value = parse(text)?;
    if value == T::default() {
        return Err(Refused::showing("0", "must be greater than 0"));
    }
    Ok(value)
}

/// `1`, `true`, `yes` or `on`; `0`, `false`, `no` or `off`.
fn flag(text: &str) -> Result<bool, Refused> {
    let v = text.trim().to_ascii_lowercase();
    match v.as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Refused::showing(&v, "expected 1 or 0 (true/false, yes/no, on/off)")),
    }
}

/// The entries of a comma-separated list, blanks left out.
pub(super) fn list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|entry| !entry.is_empty())
}
