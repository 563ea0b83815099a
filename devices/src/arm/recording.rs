//! [`RecordingArm`]: an in-memory arm that records every call (tests and dry runs).

use super::{Arm, ArmError, ArmPose, MotionId};
use std::time::Duration;

/// One call made on a [`RecordingArm`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum ArmCall {
    /// `start_session`.
    Session,
    /// `move_to`.
    Move(ArmPose),
    /// `grip`, opening in mm.
    Grip(f64),
    /// `home`.
    Home,
    /// `track`, pose and opening in mm.
    Track(ArmPose, f64),
    /// `stop`.
    Stop,
}

/// An in-memory arm that records every call and completes motions at once (tests and dry runs).
#[derive(Default)]
pub struct RecordingArm {
    /// Every call so far, shared with the test that watches it.
    pub calls: std::sync::Arc<std::sync::Mutex<Vec<ArmCall>>>,
    next: MotionId,
    pose: Option<ArmPose>,
    opening: f64,
}

impl RecordingArm {
    /// An arm recording into `calls` (shared, so a test keeps a handle across reconnects).
    pub fn new(calls: std::sync::Arc<std::sync::Mutex<Vec<ArmCall>>>) -> Self {
        RecordingArm { calls, ..Default::default() }
    }

    fn record(&mut self, c: ArmCall) -> MotionId {
        self.calls.lock().unwrap().push(c);
        self.next += 1;
        self.next
    }
}

impl Arm for RecordingArm {
    fn describe(&self) -> String {
        "recording arm (in memory)".into()
    }
    fn start_session(&mut self) -> Result<(), ArmError> {
        self.record(ArmCall::Session);
        Ok(())
    }
    fn move_to(&mut self, pose: ArmPose) -> Result<MotionId, ArmError> {
        self.pose = Some(pose);
        Ok(self.record(ArmCall::Move(pose)))
    }
    fn grip(&mut self, opening_mm: f64) -> Result<MotionId, ArmError> {
        self.opening = opening_mm;
        Ok(self.record(ArmCall::Grip(opening_mm)))
    }
    fn home(&mut self) -> Result<MotionId, ArmError> {
        Ok(self.record(ArmCall::Home))
    }
    fn track(&mut self, pose: ArmPose, opening_mm: f64) -> Result<(), ArmError> {
        self.pose = Some(pose);
        self.record(ArmCall::Track(pose, opening_mm));
        Ok(())
    }
    fn wait_done(&mut self, _id: MotionId, _timeout: Duration) -> Result<(), ArmError> {
        Ok(())
    }
    fn stop(&mut self) -> Result<(), ArmError> {
        self.record(ArmCall::Stop);
        Ok(())
    }
    fn heartbeat(&mut self) -> Result<Duration, ArmError> {
        Ok(Duration::ZERO)
    }
    fn position(&mut self) -> Result<(ArmPose, f64), ArmError> {
        Ok((self.pose.unwrap_or(ArmPose { x: 0.0, y: 0.0, z: 0.0, yaw: 0.0 }), self.opening))
    }
}
