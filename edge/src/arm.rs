//! Arms behind one trait: the grasp-line protocol driver ([`LineArm`]), the Dobot Magician driver
//! ([`crate::dobot::MagicianArm`]), an in-memory fake ([`RecordingArm`]) for tests, and
//! [`Reconnecting`], which reopens a lost port with back-off without ever replaying stale commands.

use crate::link::{LineEvent, LineReader, Link};
use crate::protocol::{self, Command, NakCode, Reply, MAX_LINE};
use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A tool pose in the robot base frame: mm and degrees (yaw about +z).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ArmPose {
    pub x: f64,
    pub y: f64,
    pub z: f64,
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

#[derive(Debug, thiserror::Error)]
pub enum ArmError {
    #[error("arm link {port} lost: {source}")]
    LinkLost { port: String, source: io::Error },
    #[error("no valid reply from the arm controller on {port} to `{command}` after {attempts} attempt(s)")]
    NoReply { port: String, command: String, attempts: u32 },
    #[error("arm controller on {port} refused `{command}`: NAK {code}")]
    Refused { port: String, command: String, code: &'static str },
    #[error("motion {id} on {port} not finished within {timeout:?}")]
    MotionTimeout { port: String, id: MotionId, timeout: Duration },
    #[error("arm {port}: {source}")]
    Other { port: String, #[source] source: Box<dyn std::error::Error + Send + Sync> },
    #[error("arm not connected (reconnecting to {port})")]
    NotConnected { port: String },
}

impl ArmError {
    /// Whether the link itself is gone (reopen it) rather than one exchange failing.
    pub fn is_link_lost(&self) -> bool {
        matches!(self, ArmError::LinkLost { .. } | ArmError::NoReply { .. } | ArmError::NotConnected { .. })
    }
}

/// What the runtime needs from an arm controller. Every call returns within its timeouts.
pub trait Arm: Send {
    fn describe(&self) -> String;
    /// Opens a session: the controller halts and forgets queued motions.
    fn start_session(&mut self) -> Result<(), ArmError>;
    /// Queues a Cartesian move.
    fn move_to(&mut self, pose: ArmPose) -> Result<MotionId, ArmError>;
    /// Queues a gripper opening in mm (0 closes).
    fn grip(&mut self, opening_mm: f64) -> Result<MotionId, ArmError>;
    fn home(&mut self) -> Result<MotionId, ArmError>;
    /// Replaces the servo target (stream mode); not queued.
    fn track(&mut self, pose: ArmPose, opening_mm: f64) -> Result<(), ArmError>;
    fn wait_done(&mut self, id: MotionId, timeout: Duration) -> Result<(), ArmError>;
    /// Halts now and clears the queue.
    fn stop(&mut self) -> Result<(), ArmError>;
    /// Round-trip time of a heartbeat.
    fn heartbeat(&mut self) -> Result<Duration, ArmError>;
    /// Current pose and gripper opening.
    fn position(&mut self) -> Result<(ArmPose, f64), ArmError>;
}

/// Timing of the grasp-line driver.
#[derive(Debug, Clone, Copy)]
pub struct LineTiming {
    /// How long to wait for an ACK before resending.
    pub reply_timeout: Duration,
    /// Resends of one command before giving up (the link is then considered lost).
    pub retries: u32,
    /// While waiting for DONE, the command is resent this often: a duplicate is answered with ACK
    /// (and DONE if finished) without being executed again, so a lost DONE is recovered, and the
    /// resends keep the controller's heartbeat alive.
    pub done_poll: Duration,
}

impl Default for LineTiming {
    fn default() -> Self {
        LineTiming { reply_timeout: Duration::from_millis(150), retries: 5, done_poll: Duration::from_millis(400) }
    }
}

/// The host side of the grasp-line protocol (`edge/PROTOCOL.md`): stop-and-wait, one
/// outstanding command, retransmission with the same sequence number.
pub struct LineArm {
    link: Box<dyn Link>,
    reader: LineReader,
    timing: LineTiming,
    /// Shared across reconnects, so late replies of an old link can never match a new command.
    seq: Arc<AtomicU32>,
    /// Lines of queued motions not yet DONE, by sequence (resent while waiting).
    pending: HashMap<u32, String>,
    done: HashSet<u32>,
    /// Garbled or unexpected lines received (for the stats line).
    pub garbled_replies: u64,
    pub retransmissions: u64,
}

impl LineArm {
    /// A driver numbering its commands from `first_seq`.
    pub fn new(link: Box<dyn Link>, timing: LineTiming, first_seq: u32) -> Self {
        Self::with_counter(link, timing, Arc::new(AtomicU32::new(first_seq.max(1))))
    }

    /// A driver continuing a sequence counter shared with earlier connections.
    pub fn with_counter(link: Box<dyn Link>, timing: LineTiming, seq: Arc<AtomicU32>) -> Self {
        LineArm { link, reader: LineReader::new(MAX_LINE), timing, seq, pending: HashMap::new(), done: HashSet::new(), garbled_replies: 0, retransmissions: 0 }
    }

    fn peek_seq(&self) -> u32 {
        self.seq.load(Ordering::SeqCst).max(1)
    }

    fn lost(&self, e: io::Error) -> ArmError {
        ArmError::LinkLost { port: self.link.describe(), source: e }
    }

    /// Sends `cmd` until its own reply arrives; DONE events seen meanwhile are remembered.
    /// Numbers, encodes and exchanges a new command; `pending` keeps the line of a queued motion
    /// for the DONE polls.
    fn transact(&mut self, cmd: &Command, pending: bool) -> Result<(u32, Reply), ArmError> {
        let seq = self.peek_seq();
        self.seq.store(seq.wrapping_add(1).max(1), Ordering::SeqCst);
        let line = protocol::encode_command(seq, cmd);
        let reply = self.exchange(seq, &line);
        if pending && matches!(reply, Ok(Reply::Ack)) {
            self.pending.insert(seq, line);
        }
        Ok((seq, reply?))
    }

    fn exchange(&mut self, seq: u32, line: &str) -> Result<Reply, ArmError> {
        let attempts = self.timing.retries + 1;
        for attempt in 0..attempts {
            if attempt > 0 {
                self.retransmissions += 1;
                log::debug!("resending {} (attempt {})", line.trim_end(), attempt + 1);
            }
            self.link.write_all_bytes(line.as_bytes()).map_err(|e| self.lost(e))?;
            let deadline = Instant::now() + self.timing.reply_timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match self.reader.read_line(self.link.as_mut(), left).map_err(|e| self.lost(e))? {
                    LineEvent::Timeout => break,
                    LineEvent::Overflow => {
                        self.garbled_replies += 1;
                        log::warn!("arm {}: over-long reply dropped", self.link.describe());
                    }
                    LineEvent::Line(bytes) => match protocol::parse_reply(&bytes) {
                        Ok((s, Reply::Done)) => {
                            self.pending.remove(&s);
                            self.done.insert(s);
                        }
                        Ok((s, reply)) if s == seq => match reply {
                            Reply::Nak(code) if code.is_transient() => {
                                log::debug!("arm NAK {} for seq {seq}; resending", code.as_str());
                                if code == NakCode::Busy {
                                    std::thread::sleep(self.timing.reply_timeout / 2);
                                }
                                break;
                            }
                            Reply::Nak(code) => {
                                return Err(ArmError::Refused { port: self.link.describe(), command: line.trim_end().to_string(), code: code.as_str() })
                            }
                            other => return Ok(other),
                        },
                        Ok((s, r)) => log::debug!("ignoring stale reply {r:?} for seq {s} (waiting for {seq})"),
                        Err(e) => {
                            self.garbled_replies += 1;
                            log::warn!("arm {}: garbled reply ({e}): {:?}", self.link.describe(), String::from_utf8_lossy(&bytes));
                            // A damaged reply may have been ours: resend now; duplicates are harmless.
                            break;
                        }
                    },
                }
            }
        }
        Err(ArmError::NoReply { port: self.link.describe(), command: line.trim_end().to_string(), attempts })
    }

    fn queue(&mut self, cmd: Command) -> Result<MotionId, ArmError> {
        match self.transact(&cmd, true)? {
            (seq, Reply::Ack) => Ok(seq as MotionId),
            (_, other) => Err(ArmError::Other { port: self.link.describe(), source: format!("unexpected reply {other:?} to {cmd:?}").into() }),
        }
    }

    fn expect_ack(&mut self, cmd: Command) -> Result<(), ArmError> {
        match self.transact(&cmd, false)? {
            (_, Reply::Ack) => Ok(()),
            (_, other) => Err(ArmError::Other { port: self.link.describe(), source: format!("unexpected reply {other:?} to {cmd:?}").into() }),
        }
    }
}

impl Arm for LineArm {
    fn describe(&self) -> String {
        format!("grasp-line on {}", self.link.describe())
    }

    fn start_session(&mut self) -> Result<(), ArmError> {
        self.link.discard_input().map_err(|e| self.lost(e))?;
        self.reader.clear();
        self.pending.clear();
        self.done.clear();
        self.expect_ack(Command::Hello { version: protocol::PROTOCOL_VERSION })
    }

    fn move_to(&mut self, p: ArmPose) -> Result<MotionId, ArmError> {
        self.queue(Command::Move { x: p.x, y: p.y, z: p.z, yaw: p.yaw })
    }

    fn grip(&mut self, opening_mm: f64) -> Result<MotionId, ArmError> {
        self.queue(Command::Grip { opening: opening_mm })
    }

    fn home(&mut self) -> Result<MotionId, ArmError> {
        self.queue(Command::Home)
    }

    fn track(&mut self, p: ArmPose, opening_mm: f64) -> Result<(), ArmError> {
        self.expect_ack(Command::Track { x: p.x, y: p.y, z: p.z, yaw: p.yaw, opening: opening_mm })
    }

    fn wait_done(&mut self, id: MotionId, timeout: Duration) -> Result<(), ArmError> {
        let seq = id as u32;
        let deadline = Instant::now() + timeout;
        let mut next_poll = Instant::now() + self.timing.done_poll;
        loop {
            if self.done.remove(&seq) {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ArmError::MotionTimeout { port: self.link.describe(), id, timeout });
            }
            if now >= next_poll {
                if let Some(line) = self.pending.get(&seq).cloned() {
                    // Answered by ACK (and DONE when finished), never executed twice.
                    self.exchange(seq, &line)?;
                }
                next_poll = Instant::now() + self.timing.done_poll;
                continue;
            }
            let wait = next_poll.min(deadline) - now;
            match self.reader.read_line(self.link.as_mut(), wait).map_err(|e| self.lost(e))? {
                LineEvent::Line(bytes) => match protocol::parse_reply(&bytes) {
                    Ok((s, Reply::Done)) => {
                        self.pending.remove(&s);
                        self.done.insert(s);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.garbled_replies += 1;
                        log::warn!("arm {}: garbled event ({e})", self.link.describe());
                    }
                },
                LineEvent::Overflow => self.garbled_replies += 1,
                LineEvent::Timeout => {}
            }
        }
    }

    fn stop(&mut self) -> Result<(), ArmError> {
        self.pending.clear();
        self.expect_ack(Command::Stop)
    }

    fn heartbeat(&mut self) -> Result<Duration, ArmError> {
        let t0 = Instant::now();
        self.expect_ack(Command::Ping)?;
        Ok(t0.elapsed())
    }

    fn position(&mut self) -> Result<(ArmPose, f64), ArmError> {
        match self.transact(&Command::Where, false)? {
            (_, Reply::Pos { x, y, z, yaw, opening }) => Ok((ArmPose { x, y, z, yaw }, opening)),
            (_, other) => Err(ArmError::Other { port: self.link.describe(), source: format!("WHERE answered with {other:?}").into() }),
        }
    }
}

/// One call made on a [`RecordingArm`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum ArmCall {
    Session,
    Move(ArmPose),
    Grip(f64),
    Home,
    Track(ArmPose, f64),
    Stop,
}

/// An in-memory arm that records every call and completes motions at once (tests and dry runs).
#[derive(Default)]
pub struct RecordingArm {
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

/// Opens an arm (a port plus a driver); called again after the link is lost.
pub type ArmOpener = Box<dyn FnMut() -> Result<Box<dyn Arm>, ArmError> + Send>;

/// Back-off between reconnection attempts: doubles from `min` up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
}

impl Backoff {
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
    pub fn new(port: &str, opener: ArmOpener, backoff: Backoff) -> Self {
        Reconnecting { opener, port: port.to_string(), inner: None, failures: 0, next_try: Instant::now(), backoff, reconnects: 0 }
    }

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
                return Err(ArmError::LinkLost { port: "/dev/fake".into(), source: io::Error::new(io::ErrorKind::NotFound, "absent") });
            }
            Ok(Box::new(RecordingArm::new(c2.clone())) as Box<dyn Arm>)
        });
        let mut arm = Reconnecting::new("/dev/fake", opener, Backoff { min: Duration::from_millis(10), max: Duration::from_millis(40) });
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
