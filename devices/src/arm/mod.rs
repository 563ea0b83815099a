//! Arms behind one trait: [`Arm`], the pose and error types every driver shares, and an
//! in-memory fake ([`RecordingArm`]) for tests and dry runs. The drivers are
//! [`crate::grasp_line::LineArm`] and [`crate::dobot::MagicianArm`]; [`Reconnecting`] reopens a lost
//! port with back-off without ever replaying stale commands.

mod reconnect;
mod recording;

pub use reconnect::{ArmOpener, Backoff, Reconnecting};
pub use recording::{ArmCall, RecordingArm};

use std::io;
use std::time::Duration;

/// A tool pose in the robot base frame: mm and degrees (yaw about +z).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ArmPose {
    /// Forward, mm.
    pub x: f64,
    /// Left, mm.
    pub y: f64,
    /// Up, mm.
    pub z: f64,
    /// Rotation about +z, degrees.
    pub yaw: f64,
}

impl ArmPose {
    /// Euclidean distance between the positions, mm (yaw ignored).
    pub fn distance(&self, other: &ArmPose) -> f64 {
        ((self.x - other.x).powi(2) + (self.y - other.y).powi(2) + (self.z - other.z).powi(2)).sqrt()
    }
}

/// Identifies a queued motion until its completion.
pub type MotionId = u64;

/// Why an arm call failed; [`ArmError::is_link_lost`] tells whether to reconnect.
#[derive(Debug, thiserror::Error)]
pub enum ArmError {
    /// The port failed (closed, unplugged, I/O error).
    #[error("arm link {port} lost: {source}")]
    LinkLost {
        /// The serial port.
        port: String,
        /// The I/O error.
        source: io::Error,
    },
    /// Every attempt went unanswered or garbled.
    #[error("no valid reply from the arm controller on {port} to `{command}` after {attempts} attempt(s)")]
    NoReply {
        /// The serial port.
        port: String,
        /// The command line sent.
        command: String,
        /// How many times it was sent.
        attempts: u32,
    },
    /// The controller answered NAK with a permanent code.
    #[error("arm controller on {port} refused `{command}`: NAK {code}")]
    Refused {
        /// The serial port.
        port: String,
        /// The command line sent.
        command: String,
        /// The NAK code.
        code: &'static str,
    },
    /// A queued motion did not report completion in time.
    #[error("motion {id} on {port} not finished within {timeout:?}")]
    MotionTimeout {
        /// The serial port.
        port: String,
        /// The motion.
        id: MotionId,
        /// The whole wait.
        timeout: Duration,
    },
    /// A reply that makes no sense for the request.
    #[error("arm {port}: {source}")]
    Other {
        /// The serial port.
        port: String,
        /// What was wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A command would not fit the protocol's line; it was not sent.
    #[error("arm {port}: `{command}` is {len} bytes, over the protocol's {max}; not sent")]
    LineTooLong {
        /// The serial port.
        port: String,
        /// The command line.
        command: String,
        /// Its length, bytes.
        len: usize,
        /// The protocol's limit, bytes.
        max: usize,
    },
    /// The link is down and being reopened.
    #[error("arm not connected (reconnecting to {port})")]
    NotConnected {
        /// The serial port.
        port: String,
    },
}

impl ArmError {
    /// Whether the link itself is gone (reopen it) rather than one exchange failing.
    pub fn is_link_lost(&self) -> bool {
        matches!(self, ArmError::LinkLost { .. } | ArmError::NoReply { .. } | ArmError::NotConnected { .. })
    }
}

/// What the runtime needs from an arm controller. Every call returns within its timeouts.
pub trait Arm: Send {
    /// The driver and its port, for logs.
    fn describe(&self) -> String;
    /// Opens a session: the controller halts and forgets queued motions.
    fn start_session(&mut self) -> Result<(), ArmError>;
    /// Queues a Cartesian move.
    fn move_to(&mut self, pose: ArmPose) -> Result<MotionId, ArmError>;
    /// Queues a gripper opening in mm (0 closes).
    fn grip(&mut self, opening_mm: f64) -> Result<MotionId, ArmError>;
    /// Queues a move to the controller's home pose.
    fn home(&mut self) -> Result<MotionId, ArmError>;
    /// Replaces the servo target (stream mode); not queued.
    fn track(&mut self, pose: ArmPose, opening_mm: f64) -> Result<(), ArmError>;
    /// Waits up to `timeout` for a queued motion to finish.
    fn wait_done(&mut self, id: MotionId, timeout: Duration) -> Result<(), ArmError>;
    /// Halts now and clears the queue.
    fn stop(&mut self) -> Result<(), ArmError>;
    /// Round-trip time of a heartbeat.
    fn heartbeat(&mut self) -> Result<Duration, ArmError>;
    /// Current pose and gripper opening.
    fn position(&mut self) -> Result<(ArmPose, f64), ArmError>;
}
