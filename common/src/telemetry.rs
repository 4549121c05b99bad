//! OpenTelemetry traces: the spans of `tracing` exported over OTLP/HTTP (tracing-opentelemetry's layer, the SDK's
//! batch processor), and the W3C trace context carried from a client's `traceparent` through the API into the
//! AMQP message headers, so the worker's spans join the upload's trace. A retry is published from inside the
//! attempt that failed, so the next attempt's span is that one's child: one trace, the attempts chained.
//!
//! Off (no `OTEL_EXPORTER_OTLP_ENDPOINT`), nothing is installed and every function here returns at once.

use std::sync::atomic::{AtomicBool, Ordering};

use lapin::{
    BasicProperties,
    types::{AMQPValue, FieldTable, LongString},
};
use opentelemetry::{
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{Sampler, SdkTracerProvider},
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{Layer, Registry};

use crate::settings::{OtlpProtocol, TelemetrySettings};

/// Whether traces are on in this process (set once, by [`layer`]).
static ON: AtomicBool = AtomicBool::new(false);

/// The export of this process's spans; [`Telemetry::shutdown`] sends what is still buffered.
pub struct Telemetry(Option<SdkTracerProvider>);

impl Telemetry {
    /// Flushes and stops the export (bounded by the exporter's timeout); nothing when off.
    pub fn shutdown(self) {
        if let Some(provider) = self.0
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "the last spans were not exported");
        }
    }
}

/// A boxed layer of the global subscriber.
pub(crate) type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// The layer exporting spans to the OTLP receiver, and the handle that flushes it; no layer without an endpoint.
/// `service` names the process when `OTEL_SERVICE_NAME` does not.
pub(crate) fn layer(settings: &TelemetrySettings, service: &str) -> (Option<BoxedLayer>, Telemetry) {
    let Some(endpoint) = &settings.endpoint else { return (None, Telemetry(None)) };
    let protocol = match settings.protocol {
        OtlpProtocol::HttpProtobuf => Protocol::HttpBinary,
        OtlpProtocol::HttpJson => Protocol::HttpJson,
    };
    // OTEL_EXPORTER_OTLP_ENDPOINT is a base URL: the traces' path is added, as the specification says.
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().with_endpoint(url).with_protocol(protocol);
    let exporter = match exporter.build() {
        Ok(exporter) => exporter,
        Err(e) => {
            // Logging is not up yet: say it where the process's output goes, and run without traces.
            eprintln!("OpenTelemetry traces are off: the OTLP exporter could not be built: {e}");
            return (None, Telemetry(None));
        }
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler(&settings.sampler, settings.sampler_arg))
        .with_resource(
            Resource::builder().with_service_name(settings.service_name.clone().unwrap_or(service.to_owned())).build(),
        )
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    ON.store(true, Ordering::Relaxed);
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("thumbq")).boxed();
    (Some(layer), Telemetry(Some(provider)))
}

/// The sampler `OTEL_TRACES_SAMPLER` names (its values are checked by the settings).
fn sampler(name: &str, ratio: f64) -> Sampler {
    let root = |name: &str| match name {
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatioBased(ratio),
        _ => Sampler::AlwaysOn,
    };
    match name.strip_prefix("parentbased_") {
        Some(root_name) => Sampler::ParentBased(Box::new(root(root_name))),
        None => root(name),
    }
}

/// Makes `span` (a request's) a child of the trace a client's `traceparent` header names, and records its trace
/// id in its `trace_id` field for the logs.
pub fn continue_from_http(span: &Span, headers: &http::HeaderMap) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&HttpHeaders(headers));
    let _ = span.set_parent(parent);
    record_trace_id(span);
}

/// Makes `span` (a delivery's) a child of the span that published the message, from its headers, and records
/// its trace id in its `trace_id` field for the logs.
pub fn continue_from_amqp(span: &Span, headers: Option<&FieldTable>) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    if let Some(headers) = headers {
        let parent = TraceContextPropagator::new().extract(&AmqpHeaders(headers));
        let _ = span.set_parent(parent);
    }
    record_trace_id(span);
}

/// `properties` with the current span's trace context in their headers (`traceparent`, `tracestate`); unchanged
/// when off.
pub fn with_trace_context(properties: BasicProperties) -> BasicProperties {
    if !ON.load(Ordering::Relaxed) {
        return properties;
    }
    let mut headers = properties.headers().clone().unwrap_or_default();
    TraceContextPropagator::new().inject_context(&Span::current().context(), &mut AmqpHeadersMut(&mut headers));
    properties.with_headers(headers)
}

fn record_trace_id(span: &Span) {
    let context = span.context();
    let trace = context.span().span_context().trace_id();
    span.record("trace_id", tracing::field::display(trace));
}

/// What no library offers: W3C trace context in and out of lapin's header table (opentelemetry-http covers HTTP
/// headers only).
struct AmqpHeaders<'a>(&'a FieldTable);

impl Extractor for AmqpHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match self.0.inner().get(key)? {
            AMQPValue::LongString(value) => std::str::from_utf8(value.as_bytes()).ok(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.0.inner().keys().map(|key| key.as_str()).collect()
    }
}

struct AmqpHeadersMut<'a>(&'a mut FieldTable);

impl Injector for AmqpHeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.into(), AMQPValue::LongString(LongString::from(value)));
    }
}

/// A request's headers for the propagator.
struct HttpHeaders<'a>(&'a http::HeaderMap);

impl Extractor for HttpHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_context_goes_through_amqp_headers_unchanged() {
        let mut headers = FieldTable::default();
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        AmqpHeadersMut(&mut headers).set("traceparent", traceparent.to_owned());
        let context = TraceContextPropagator::new().extract(&AmqpHeaders(&headers));
        let span = context.span();
        assert_eq!(span.span_context().trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(span.span_context().is_sampled());
        let mut out = FieldTable::default();
        TraceContextPropagator::new().inject_context(&context, &mut AmqpHeadersMut(&mut out));
        assert_eq!(AmqpHeaders(&out).get("traceparent"), Some(traceparent));
    }

    #[test]
    fn the_sampler_is_the_one_named() {
        assert!(matches!(sampler("always_off", 1.0), Sampler::AlwaysOff));
        assert!(matches!(sampler("traceidratio", 0.5), Sampler::TraceIdRatioBased(r) if r == 0.5));
        assert!(matches!(sampler("parentbased_always_on", 1.0), Sampler::ParentBased(_)));
    }
}
