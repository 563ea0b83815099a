//! [`Reconnecting`]: an arm that survives its port going away, with back-off between attempts.

use super::{Arm, ArmError, ArmPose, MotionId};
use std::time::{Duration, Instant};

/// Opens an arm (a port plus a driver); called again after the link is lost.
pub type ArmOpener = Box<dyn FnMut() -> Result<Box<dyn Arm>, ArmError> + Send>;

/// Back-off between reconnection attempts: doubles from `min` up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The first delay.
    pub min: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Backoff {
    /// The delay after `failures` failed attempts.
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.min(16)).unwrap_or(u32::MAX);
        self.min.saturating_mul(factor).min(self.max)
    }
}

/// An arm that survives its port going away: a link failure drops the driver; later calls
/// fail fast with `NotConnected` until [`Reconnecting::poll`] has reopened the port and started a
/// fresh session. Nothing queued before the loss is ever resent: the caller re-plans from new frames.
pub struct Reconnecting {
    opener: ArmOpener,
    port: String,
    inner: Option<Box<dyn Arm>>,
    failures: u32,
    next_try: Instant,
    backoff: Backoff,
    /// Completed reconnections (for stats and tests).
    pub reconnects: u64,
}

impl Reconnecting {
    /// An arm opened by `opener` on `port`, not connected until the first [`Reconnecting::poll`].
    pub fn new(port: &str, opener: ArmOpener, backoff: Backoff) -> Self {
        Reconnecting {
            opener,
            port: port.to_string(),
            inner: None,
            failures: 0,
            next_try: Instant::now(),
            backoff,
            reconnects: 0,
        }
    }

    /// Whether a session is up.
    pub fn is_connected(&self) -> bool {
        self.inner.is_some()
    }

    /// Tries to (re)connect when due; returns true when a new session has just started.
    pub fn poll(&mut self, now: Instant) -> bool {
        if self.inner.is_some() || now < self.next_try {
            return false;
        }
        let attempt = (self.opener)().and_then(|mut arm| {
            arm.start_session()?;
            Ok(arm)
        });
        match attempt {
            Ok(arm) => {
                log::info!("arm connected: {}", arm.describe());
                self.inner = Some(arm);
                if self.failures > 0 || self.reconnects > 0 {
                    self.reconnects += 1;
                }
                self.failures = 0;
                true
            }
            Err(e) => {
                let delay = self.backoff.delay(self.failures);
                self.failures += 1;
                log::warn!("arm {}: cannot connect ({e}); retrying in {:.1} s", self.port, delay.as_secs_f64());
                self.next_try = now + delay;
                false
            }
        }
    }

    fn with<T>(&mut self, f: impl FnOnce(&mut dyn Arm) -> Result<T, ArmError>) -> Result<T, ArmError> {
        let arm = self.inner.as_mut().ok_or_else(|| ArmError::NotConnected { port: self.port.clone() })?;
        let r = f(arm.as_mut());
        if let Err(e) = &r {
            if e.is_link_lost() {
                log::warn!("arm {}: {e}; dropping the link, will reconnect", self.port);
                self.inner = None;
                self.next_try = Instant::now() + self.backoff.min;
                self.failures = 1;
            }
        }
        r
    }
}

impl Arm for Reconnecting {
    fn describe(&self) -> String {
        self.inner.as_ref().map(|a| a.describe()).unwrap_or_else(|| format!("{} (disconnected)", self.port))
    }
    fn start_session(&mut self) -> Result<(), ArmError> {
        self.with(|a| a.start_session())
    }
    fn move_to(&mut self, pose: ArmPose) -> Result<MotionId, ArmError> {
        self.with(|a| a.move_to(pose))
    }
    fn grip(&mut self, opening_mm: f64) -> Result<MotionId, ArmError> {
        self.with(|a| a.grip(opening_mm))
    }
    fn home(&mut self) -> Result<MotionId, ArmError> {
        self.with(|a| a.home())
    }
    fn track(&mut self, pose: ArmPose, opening_mm: f64) -> Result<(), ArmError> {
        self.with(|a| a.track(pose, opening_mm))
    }
    fn wait_done(&mut self, id: MotionId, timeout: Duration) -> Result<(), ArmError> {
        self.with(|a| a.wait_done(id, timeout))
    }
    fn stop(&mut self) -> Result<(), ArmError> {
        self.with(|a| a.stop())
    }
    fn heartbeat(&mut self) -> Result<Duration, ArmError> {
        self.with(|a| a.heartbeat())
    }
    fn position(&mut self) -> Result<(ArmPose, f64), ArmError> {
        self.with(|a| a.position())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arm::{ArmCall, RecordingArm};
    use std::io;

    #[test]
    fn backoff_doubles_and_saturates() {
        let b = Backoff { min: Duration::from_millis(100), max: Duration::from_secs(2) };
        let ms: Vec<u128> = (0..8).map(|f| b.delay(f).as_millis()).collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        assert_eq!(b.delay(1000), Duration::from_secs(2));
    }

    #[test]
    fn reconnecting_fails_fast_while_down_then_starts_a_fresh_session() {
        let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let opens = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (c2, o2) = (calls.clone(), opens.clone());
        let opener: ArmOpener = Box::new(move || {
            // The first two attempts fail (port absent), the third works.
            if o2.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
                return Err(ArmError::LinkLost {
                    port: "/dev/fake".into(),
                    source: io::Error::new(io::ErrorKind::NotFound, "absent"),
                });
            }
            Ok(Box::new(RecordingArm::new(c2.clone())) as Box<dyn Arm>)
        });
        let mut arm = Reconnecting::new(
            "/dev/fake",
            opener,
            Backoff { min: Duration::from_millis(10), max: Duration::from_millis(40) },
        );
        let t0 = Instant::now();
        assert!(!arm.poll(t0));
        assert!(matches!(arm.home(), Err(ArmError::NotConnected { .. })));
        assert!(!arm.poll(t0), "attempt before the back-off elapsed");
        assert_eq!(opens.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(!arm.poll(t0 + Duration::from_millis(11)));
        assert!(arm.poll(t0 + Duration::from_millis(11 + 21)));
        assert_eq!(arm.reconnects, 1);
        arm.home().unwrap();
        assert_eq!(*calls.lock().unwrap(), vec![ArmCall::Session, ArmCall::Home]);
    }
}
