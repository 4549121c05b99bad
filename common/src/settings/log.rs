//! Log output: the filter and the format.

use super::{
    SettingsError,
    env::{Env, Out},
    var::{Described, Refused, Var},
};

static FILTER: Var<String> =
    Var::text("THUMBQ_LOG", "info", "Log filter (`EnvFilter` syntax, e.g. `info,thumbq_worker=debug`)");
static FORMAT: Var<bool> = Var::new(
    "LOG_FORMAT",
    "text",
    "`text` or `json`",
    |s| match s {
        "text" => Ok(false),
        "json" => Ok(true),
        _ => Err(Refused::new("expected `text` or `json`")),
    },
    |json| if *json { "json" } else { "text" }.to_owned(),
);

/// The variables of this module.
pub(super) static VARS: &[&dyn Described] = &[&FILTER, &FORMAT];

/// Log output settings.
#[derive(Clone, Debug, PartialEq)]
pub struct LogSettings {
    /// `THUMBQ_LOG`, default `info`: an `EnvFilter` directive such as `info,thumbq_worker=debug`.
    pub filter: String,
    /// `LOG_FORMAT`, default `text`: `text` for people, `json` for log collectors.
    pub json: bool,
}

impl LogSettings {
    pub(super) fn read(env: &Env<'_>) -> Result<Self, SettingsError> {
        Ok(Self { filter: env.get(&FILTER)?, json: env.get(&FORMAT)? })
    }

    pub(super) fn write(&self, out: &mut Out) {
        out.put(&FILTER, &self.filter);
        out.put(&FORMAT, &self.json);
    }
}
