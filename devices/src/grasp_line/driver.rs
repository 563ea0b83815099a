//! The host side of the grasp-line protocol ([`LineArm`], spec in `devices/PROTOCOL.md`).

use super::codec::{self, Command, NakCode, Reply, MAX_LINE};
use crate::arm::{Arm, ArmError, ArmPose, MotionId};
use crate::link::{LineEvent, LineReader, Link};
use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// The host side of the grasp-line protocol (`devices/PROTOCOL.md`): stop-and-wait, one
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
    /// When the last line was written: DONE polls are due `done_poll` after it, however the
    /// caller slices its waits, so the controller never sees more than `done_poll` of silence.
    last_tx: Instant,
    /// Garbled or unexpected lines received (for the stats line).
    pub garbled_replies: u64,
    /// Commands sent again after a missing or damaged reply.
    pub retransmissions: u64,
}

impl LineArm {
    /// A driver numbering its commands from `first_seq`.
    pub fn new(link: Box<dyn Link>, timing: LineTiming, first_seq: u32) -> Self {
        Self::with_counter(link, timing, Arc::new(AtomicU32::new(first_seq.max(1))))
    }

    /// A driver continuing a sequence counter shared with earlier connections.
    pub fn with_counter(link: Box<dyn Link>, timing: LineTiming, seq: Arc<AtomicU32>) -> Self {
        LineArm {
            link,
            reader: LineReader::new(MAX_LINE),
            timing,
            seq,
            pending: HashMap::new(),
            done: HashSet::new(),
            last_tx: Instant::now(),
            garbled_replies: 0,
            retransmissions: 0,
        }
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
        let line = codec::encode_command(seq, cmd);
        if line.len() > MAX_LINE {
            let command = line.trim_end().to_string();
            return Err(ArmError::LineTooLong { port: self.link.describe(), command, len: line.len(), max: MAX_LINE });
        }
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
            self.last_tx = Instant::now();
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
                    LineEvent::Line(bytes) => match codec::parse_reply(&bytes) {
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
                                return Err(ArmError::Refused {
                                    port: self.link.describe(),
                                    command: line.trim_end().to_string(),
                                    code: code.as_str(),
                                })
                            }
                            other => return Ok(other),
                        },
                        Ok((s, r)) => log::debug!("ignoring stale reply {r:?} for seq {s} (waiting for {seq})"),
                        Err(e) => {
                            self.garbled_replies += 1;
                            log::warn!(
                                "arm {}: garbled reply ({e}): {:?}",
                                self.link.describe(),
                                String::from_utf8_lossy(&bytes)
                            );
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
            (_, other) => Err(ArmError::Other {
                port: self.link.describe(),
                source: format!("unexpected reply {other:?} to {cmd:?}").into(),
            }),
        }
    }

    fn expect_ack(&mut self, cmd: Command) -> Result<(), ArmError> {
        match self.transact(&cmd, false)? {
            (_, Reply::Ack) => Ok(()),
            (_, other) => Err(ArmError::Other {
                port: self.link.describe(),
                source: format!("unexpected reply {other:?} to {cmd:?}").into(),
            }),
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
        self.expect_ack(Command::Hello { version: codec::PROTOCOL_VERSION })
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
        let mut next_poll = self.last_tx + self.timing.done_poll;
        loop {
            if self.done.remove(&seq) {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ArmError::MotionTimeout { port: self.link.describe(), id, timeout });
            }
            if now >= next_poll {
                match self.pending.get(&seq).cloned() {
                    Some(line) => {
                        // Answered by ACK (and DONE when finished), never executed twice.
                        self.exchange(seq, &line)?;
                        next_poll = self.last_tx + self.timing.done_poll;
                    }
                    None => next_poll = now + self.timing.done_poll,
                }
                continue;
            }
            let wait = next_poll.min(deadline) - now;
            match self.reader.read_line(self.link.as_mut(), wait).map_err(|e| self.lost(e))? {
                LineEvent::Line(bytes) => match codec::parse_reply(&bytes) {
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
            (_, other) => Err(ArmError::Other {
                port: self.link.describe(),
                source: format!("WHERE answered with {other:?}").into(),
            }),
        }
    }
}
