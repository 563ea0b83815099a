//! systemd's notification protocol behind a trait ([`Notifier`]): READY, WATCHDOG, STATUS and
//! STOPPING, with a real implementation and a no-op one.

use std::time::{Duration, Instant};

/// systemd's notification socket, behind a trait so tests can watch it.
pub trait Notifier: Send {
    /// Camera, model and arm are up.
    fn ready(&mut self);
    /// Called from the loop itself on every iteration; implementations rate-limit.
    fn watchdog(&mut self);
    /// The service is shutting down.
    fn stopping(&mut self);
    /// A one-line status (the stats line).
    fn status(&mut self, text: &str);
}

/// `sd_notify` through `$NOTIFY_SOCKET` (a no-op outside systemd). Watchdog pings are sent at half
/// the service's `WatchdogSec`.
pub struct SdNotifier {
    watchdog_every: Option<Duration>,
    last_ping: Option<Instant>,
}

impl SdNotifier {
    /// The notifier of `$NOTIFY_SOCKET` and `$WATCHDOG_USEC`.
    pub fn from_env() -> Self {
        let mut usec = 0u64;
        let watchdog_every = sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec / 2));
        if let Some(d) = watchdog_every {
            log::info!("systemd watchdog enabled: pinging every {:.1} s", d.as_secs_f64());
        }
        SdNotifier { watchdog_every, last_ping: None }
    }

    fn send(&self, state: &[sd_notify::NotifyState]) {
        if let Err(e) = sd_notify::notify(false, state) {
            log::warn!("sd_notify failed: {e}");
        }
    }
}

impl Notifier for SdNotifier {
    fn ready(&mut self) {
        self.send(&[sd_notify::NotifyState::Ready]);
    }
    fn watchdog(&mut self) {
        let Some(every) = self.watchdog_every else { return };
        if self.last_ping.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last_ping = Some(Instant::now());
        self.send(&[sd_notify::NotifyState::Watchdog]);
    }
    fn stopping(&mut self) {
        self.send(&[sd_notify::NotifyState::Stopping]);
    }
    fn status(&mut self, text: &str) {
        self.send(&[sd_notify::NotifyState::Status(text)]);
    }
}

/// A notifier that does nothing (interactive runs).
pub struct NoNotifier;
impl Notifier for NoNotifier {
    fn ready(&mut self) {}
    fn watchdog(&mut self) {}
    fn stopping(&mut self) {}
    fn status(&mut self, _text: &str) {}
}
