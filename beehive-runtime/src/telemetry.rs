//! Process-wide observability: log output, the Prometheus recorder, OpenTelemetry export and the
//! admin HTTP server with `/metrics` and `/healthz`.

use std::net::SocketAddr;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{Config, LogFormat};

/// Bucket bounds of the duration histograms, in milliseconds.
pub const DURATION_BUCKETS_MS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

/// A failure to set up logs, metrics, export or the admin server.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log.level `{level}`: {source}")]
    LogLevel {
        level: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("cannot install the log subscriber: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
    #[error("cannot start the OTLP exporter for {endpoint}: {source}")]
    Otlp {
        endpoint: String,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    #[error("cannot install the Prometheus recorder: {0}")]
    Metrics(String),
    #[error("cannot bind the admin server to {address}: {source}")]
    AdminBind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Keeps the OpenTelemetry exporter running; dropping it flushes and stops the export.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    tracer_provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.tracer_provider.take()
            && let Err(err) = provider.shutdown()
        {
            tracing::warn!(error = %err, "failed to flush OpenTelemetry spans");
        }
    }
}

/// Installs the global log subscriber from `log.*` and `telemetry.*`, and the slow-call threshold.
///
/// Logs go to stdout as JSON lines (or pretty text); when `telemetry.otlp_endpoint` is set, spans
/// are also exported over OTLP/gRPC. Fails if a global subscriber is already installed.
pub fn init(config: &Config, service_name: &str) -> Result<TelemetryGuard, TelemetryError> {
    crate::observe::set_slow_call_threshold(std::time::Duration::from_millis(
        config.log.slow_call_ms,
    ));
    let filter =
        EnvFilter::try_new(&config.log.level).map_err(|source| TelemetryError::LogLevel {
            level: config.log.level.clone(),
            source,
        })?;

    let mut guard = TelemetryGuard::default();
    let otel_layer = match &config.telemetry.otlp_endpoint {
        Some(endpoint) => {
            let provider = tracer_provider(endpoint, service_name)?;
            let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "beehive");
            guard.tracer_provider = Some(provider);
            SPANS_EXPORTED.store(true, std::sync::atomic::Ordering::Relaxed);
            Some(tracing_opentelemetry::layer().with_tracer(tracer))
        }
        None => None,
    };

    let (json, pretty) = match config.log.format {
        LogFormat::Json => (
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            ),
            None,
        ),
        LogFormat::Pretty => (None, Some(tracing_subscriber::fmt::layer().pretty())),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(otel_layer)
        .with(json)
        .with(pretty)
        .try_init()?;

    if config.uses_dev_secret() {
        tracing::warn!(
            key = "auth.jwt_secret",
            "using the public development JWT secret: anyone can forge tokens; set auth.jwt_secret"
        );
    }
    Ok(guard)
}

fn tracer_provider(
    endpoint: &str,
    service_name: &str,
) -> Result<opentelemetry_sdk::trace::SdkTracerProvider, TelemetryError> {
    use opentelemetry_otlp::WithExportConfig;

    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|source| TelemetryError::Otlp {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(format!("beehive-{service_name}"))
        .build();
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// Whether [`init`] set up OTLP export, so per-call spans are worth their cost at INFO.
static SPANS_EXPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Returns whether spans are exported over OTLP.
pub fn spans_exported() -> bool {
    SPANS_EXPORTED.load(std::sync::atomic::Ordering::Relaxed)
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Returns whether [`metrics_handle`] has installed the process's Prometheus recorder.
pub fn metrics_installed() -> bool {
    METRICS_INSTALLED.load(std::sync::atomic::Ordering::Acquire)
}

static METRICS_INSTALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Installs the Prometheus recorder once per process and returns its handle.
///
/// Later calls return the first handle. Fails when another `metrics` recorder is installed.
pub fn metrics_handle() -> Result<PrometheusHandle, TelemetryError> {
    if let Some(handle) = PROMETHEUS.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets(DURATION_BUCKETS_MS)
        .map_err(|err| TelemetryError::Metrics(err.to_string()))?
        .build_recorder();
    let handle = recorder.handle();
    if PROMETHEUS.set(handle.clone()).is_err() {
        // Another thread installed it between the check and here; use that one.
        return PROMETHEUS
            .get()
            .cloned()
            .ok_or_else(|| TelemetryError::Metrics("recorder vanished".to_owned()));
    }
    metrics::set_global_recorder(recorder)
        .map_err(|err| TelemetryError::Metrics(err.to_string()))?;
    METRICS_INSTALLED.store(true, std::sync::atomic::Ordering::Release);
    spawn_upkeep(handle.clone());
    Ok(handle)
}

/// Runs the recorder's periodic upkeep (histogram bucket draining) when a runtime is present.
fn spawn_upkeep(handle: PrometheusHandle) {
    const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let mut interval = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                interval.tick().await;
                handle.run_upkeep();
            }
        });
    }
}

/// The running admin HTTP server.
#[derive(Debug)]
pub struct AdminServer {
    local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl AdminServer {
    /// Binds `address` (port 0 picks a free port) and serves `/metrics` and `/healthz`.
    pub async fn start(address: SocketAddr) -> Result<Self, TelemetryError> {
        let handle = metrics_handle()?;
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| TelemetryError::AdminBind { address, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| TelemetryError::AdminBind { address, source })?;
        tracing::info!(address = %local_addr, "admin server listening");
        let task = tokio::spawn(serve_admin(listener, handle));
        Ok(Self { local_addr, task })
    }

    /// Returns the address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting admin connections.
    pub fn stop(self) {
        self.task.abort();
    }
}

async fn serve_admin(listener: TcpListener, handle: PrometheusHandle) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "admin server failed to accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let response = admin_response(&request, &handle);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(err) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(peer = %peer, error = %err, "admin connection ended with an error");
            }
        });
    }
}

fn admin_response<B>(
    request: &http::Request<B>,
    handle: &PrometheusHandle,
) -> http::Response<String> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&http::Method::GET, "/metrics") => (
            http::StatusCode::OK,
            "text/plain; version=0.0.4",
            handle.render(),
        ),
        (&http::Method::GET, "/healthz") => (http::StatusCode::OK, "text/plain", "ok\n".to_owned()),
        _ => (
            http::StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics or /healthz\n".to_owned(),
        ),
    };
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}
