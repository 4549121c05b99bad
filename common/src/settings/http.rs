//! The API's HTTP listener: address, public URL, time bounds and connection caps.

use std::{net::SocketAddr, time::Duration};

use super::{
    SettingsError,
    env::{Env, Out},
    var::{Described, Var},
};

static BIND: Var<SocketAddr> = Var::parsed("THUMBQ_BIND", "127.0.0.1:8000", "API listen address");
static PUBLIC_URL: Var<String> = Var::new(
    "THUMBQ_PUBLIC_URL",
    "http://127.0.0.1:8000",
    "Base of the absolute URLs the API returns",
    |s| Ok(s.trim_end_matches('/').to_owned()),
    String::clone,
);
static REQUEST_TIMEOUT: Var<Duration> =
    Var::secs("THUMBQ_REQUEST_TIMEOUT_SECS", "60", "Requests running longer get `408`");
static HEADER_READ_TIMEOUT: Var<Duration> = Var::secs(
    "THUMBQ_HEADER_READ_TIMEOUT_SECS",
    "10",
    "A connection must send a whole request head within this; else it is closed (slow-header clients)",
);
static IDLE_TIMEOUT: Var<Duration> = Var::secs(
    "THUMBQ_IDLE_TIMEOUT_SECS",
    "60",
    "A connection from which nothing arrives for this long is closed (idle keep-alive, stalled bodies)",
);
static MAX_CONNECTIONS: Var<usize> = Var::positive(
    "THUMBQ_MAX_CONNECTIONS",
    "1024",
    "Open connections at most; further ones wait in the listen backlog",
);
static MAX_CONNECTIONS_PER_CLIENT: Var<usize> = Var::positive(
    "THUMBQ_MAX_CONNECTIONS_PER_CLIENT",
    "64",
    "Open connections from one client address at most (trusted proxies excepted); more get `429` and are closed",
);

/// The variables of this module.
pub(super) static VARS: &[&dyn Described] = &[
    &BIND,
    &PUBLIC_URL,
    &REQUEST_TIMEOUT,
    &HEADER_READ_TIMEOUT,
    &IDLE_TIMEOUT,
    &MAX_CONNECTIONS,
    &MAX_CONNECTIONS_PER_CLIENT,
];

/// HTTP settings of the API.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpSettings {
    /// `THUMBQ_BIND`, default `127.0.0.1:8000`.
    pub bind: SocketAddr,
    /// `THUMBQ_PUBLIC_URL`, default `http://127.0.0.1:8000`: the base of the absolute URLs the API hands out.
    pub public_url: String,
    /// `THUMBQ_REQUEST_TIMEOUT_SECS`, default `60`: requests running longer are answered 408 (above the 30 s
    /// long-poll bound).
    pub request_timeout: Duration,
    /// `THUMBQ_HEADER_READ_TIMEOUT_SECS`, default `10`: a connection that has not sent a whole request head this
    /// long after it opened (or after its previous request began) is closed.
    pub header_read_timeout: Duration,
    /// `THUMBQ_IDLE_TIMEOUT_SECS`, default `60`: a connection from which nothing arrives for this long is closed
    /// (an idle keep-alive connection, or a client that stalls mid-body).
    pub idle_timeout: Duration,
    /// `THUMBQ_MAX_CONNECTIONS`, default `1024`: open connections at most; more wait in the listen backlog.
    pub max_connections: usize,
    /// `THUMBQ_MAX_CONNECTIONS_PER_CLIENT`, default `64`: open connections from one client address at most (the
    /// proxies of `THUMBQ_TRUSTED_PROXIES` excepted); more are answered `429` and closed, so one client cannot
    /// hold every slot of `THUMBQ_MAX_CONNECTIONS`.
    pub max_connections_per_client: usize,
}

impl HttpSettings {
    /// `THUMBQ_BIND` alone: the access settings' defaults follow it.
    pub(super) fn bind(env: &Env<'_>) -> Result<SocketAddr, SettingsError> {
        env.get(&BIND)
    }

    pub(super) fn read(env: &Env<'_>) -> Result<Self, SettingsError> {
        Ok(Self {
            bind: env.get(&BIND)?,
            public_url: env.get(&PUBLIC_URL)?,
            request_timeout: env.get(&REQUEST_TIMEOUT)?,
            header_read_timeout: env.get(&HEADER_READ_TIMEOUT)?,
            idle_timeout: env.get(&IDLE_TIMEOUT)?,
            max_connections: env.get(&MAX_CONNECTIONS)?,
            max_connections_per_client: env.get(&MAX_CONNECTIONS_PER_CLIENT)?,
        })
    }

    pub(super) fn write(&self, out: &mut Out) {
        out.put(&BIND, &self.bind);
        out.put(&PUBLIC_URL, &self.public_url);
        out.put(&REQUEST_TIMEOUT, &self.request_timeout);
        out.put(&HEADER_READ_TIMEOUT, &self.header_read_timeout);
        out.put(&IDLE_TIMEOUT, &self.idle_timeout);
        out.put(&MAX_CONNECTIONS, &self.max_connections);
        out.put(&MAX_CONNECTIONS_PER_CLIENT, &self.max_connections_per_client);
    }
}
