//! OpenTelemetry traces, by the standard `OTEL_*` variables: off unless an OTLP endpoint is given.

use super::{
    SettingsError,
    env::{Env, Out},
    var::{Described, Refused, Var},
};

static ENDPOINT: Var<Option<String>> = Var::optional_text(
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "Where traces go: an OTLP/HTTP receiver's base URL (`http://collector:4318`; `/v1/traces` is added), a collector, Jaeger, Tempo or any OTLP backend; none: no traces, at no cost",
);
static PROTOCOL: Var<OtlpProtocol> = Var::new(
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "http/protobuf",
    "`http/protobuf` or `http/json` (`grpc` is not built in: use the receiver's HTTP port, 4318)",
    |s| match s {
        "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
        "http/json" => Ok(OtlpProtocol::HttpJson),
        "grpc" => Err(Refused::new("gRPC is not built in: give the receiver's OTLP/HTTP endpoint (port 4318)")),
        _ => Err(Refused::new("expected http/protobuf or http/json")),
    },
    |p| p.as_str().to_owned(),
);
static SERVICE_NAME: Var<Option<String>> =
    Var::optional_text("OTEL_SERVICE_NAME", "The service name on the spans; none: `thumbq-api` or `thumbq-worker`");
static SAMPLER: Var<String> = Var::new(
    "OTEL_TRACES_SAMPLER",
    "parentbased_always_on",
    "Which uploads are traced: `always_on`, `always_off`, `traceidratio`, or `parentbased_` before one of them (a client's sampled `traceparent` decides)",
    |s| match s {
        "always_on"
        | "always_off"
        | "traceidratio"
        | "parentbased_always_on"
        | "parentbased_always_off"
        | "parentbased_traceidratio" => Ok(s.to_owned()),
        _ => Err(Refused::new("expected always_on, always_off, traceidratio or parentbased_ before one of them")),
    },
    String::clone,
);
static SAMPLER_ARG: Var<f64> = Var::new(
    "OTEL_TRACES_SAMPLER_ARG",
    "1.0",
    "The share of uploads a `traceidratio` sampler traces, 0 to 1",
    |s| match s.parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err(Refused::new("expected a number from 0 to 1")),
    },
    f64::to_string,
);

/// The variables of this module.
pub(super) static VARS: &[&dyn Described] = &[&ENDPOINT, &PROTOCOL, &SERVICE_NAME, &SAMPLER, &SAMPLER_ARG];

/// How spans travel to the OTLP receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// Protobuf over HTTP, OTLP's default.
    HttpProtobuf,
    /// JSON over HTTP.
    HttpJson,
}

impl OtlpProtocol {
    /// The variable's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpProtobuf => "http/protobuf",
            Self::HttpJson => "http/json",
        }
    }
}

/// OpenTelemetry settings.
#[derive(Clone, Debug, PartialEq)]
pub struct TelemetrySettings {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, default none (no traces): the OTLP/HTTP receiver's base URL.
    pub endpoint: Option<String>,
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, default `http/protobuf`.
    pub protocol: OtlpProtocol,
    /// `OTEL_SERVICE_NAME`, default none: the binary's name (`thumbq-api`, `thumbq-worker`).
    pub service_name: Option<String>,
    /// `OTEL_TRACES_SAMPLER`, default `parentbased_always_on`.
    pub sampler: String,
    /// `OTEL_TRACES_SAMPLER_ARG`, default `1.0`: the ratio of the `traceidratio` samplers.
    pub sampler_arg: f64,
}

impl TelemetrySettings {
    pub(super) fn read(env: &Env<'_>) -> Result<Self, SettingsError> {
        Ok(Self {
            endpoint: env.get(&ENDPOINT)?,
            protocol: env.get(&PROTOCOL)?,
            service_name: env.get(&SERVICE_NAME)?,
            sampler: env.get(&SAMPLER)?,
            sampler_arg: env.get(&SAMPLER_ARG)?,
        })
    }

    pub(super) fn write(&self, out: &mut Out) {
        out.put(&ENDPOINT, &self.endpoint);
        out.put(&PROTOCOL, &self.protocol);
        out.put(&SERVICE_NAME, &self.service_name);
        out.put(&SAMPLER, &self.sampler);
        out.put(&SAMPLER_ARG, &self.sampler_arg);
    }
}
