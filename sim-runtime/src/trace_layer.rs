//! A `tracing` layer that folds events from the code under test into the run trace,
//! with their callsite's file and line, so a divergence in logged behaviour names the
//! line that logged it. `SEEDBANK_LOG` (an env-filter directive, e.g. `info` or
//! `engine=debug`) also prints them to stderr.

use crate::trace::{self, EventKind};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// Records `tracing` events at INFO and above into the trace.
struct TraceLayer;

/// An event's text as the trace records it: `LEVEL target: name=value …`, written
/// straight into the recorder's buffer.
struct Detail<'a, 'e>(&'a Event<'e>);

impl std::fmt::Display for Detail<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let meta = self.0.metadata();
        write!(f, "{} {}: ", meta.level(), meta.target())?;
        let mut fields = Fields {
            out: f,
            first: true,
            result: Ok(()),
        };
        self.0.record(&mut fields);
        fields.result
    }
}

struct Fields<'a, 'f> {
    out: &'a mut std::fmt::Formatter<'f>,
    first: bool,
    result: std::fmt::Result,
}

impl Visit for Fields<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        let sep = if std::mem::take(&mut self.first) {
            ""
        } else {
            " "
        };
        self.result = write!(self.out, "{sep}{}={:?}", field.name(), value);
    }
}

/// What [`TraceLayer`] records: events (never spans) at INFO and above, not madsim's.
/// Decided by metadata alone, so `tracing` caches it per callsite: with `SEEDBANK_LOG`
/// unset no span is ever created and no DEBUG event is built (the registry's span
/// bookkeeping was ~6% of a simulated cluster run).
fn recorded(meta: &tracing::Metadata<'_>) -> bool {
    meta.is_event() && *meta.level() <= Level::INFO && !meta.target().starts_with("madsim")
}

impl<S: Subscriber> Layer<S> for TraceLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !recorded(meta) {
            return;
        }
        trace::record_at(
            EventKind::Log,
            Detail(event),
            meta.file().unwrap_or("?"),
            meta.line().unwrap_or(0),
        );
    }
}

/// The subscriber a simulated run installs on its thread.
pub(crate) fn subscriber() -> impl Subscriber + Send + Sync {
    let filter = std::env::var("SEEDBANK_LOG").ok();
    let fmt = filter.as_ref().map(|_| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .without_time()
    });
    let env_filter = filter
        .map(tracing_subscriber::EnvFilter::new)
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("off"));
    tracing_subscriber::registry()
        .with(TraceLayer.with_filter(tracing_subscriber::filter::filter_fn(recorded)))
        .with(fmt.with_filter(env_filter))
}
