//! What the service reports outward: systemd readiness and watchdog ([`Notifier`]), the operator's
//! stats line ([`Stats`]), annotated frames ([`write_annotated`]) and the flight recorder
//! ([`Recorder`]).

mod annotate;
mod notify;
mod recorder;
mod stats;

pub use annotate::write_annotated;
pub use notify::{NoNotifier, Notifier, SdNotifier};
pub use recorder::{RecordedFrame, Recorder};
pub use stats::{LatencyHistogram, Stage, Stats, HISTOGRAM_MAX_MS};
