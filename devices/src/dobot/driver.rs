//! Host driver for a Dobot Magician ([`MagicianArm`]).
//!
//! Unlike grasp-line, the Magician protocol has no sequence numbers, so a queued command whose
//! reply is lost cannot be resent safely (it might run twice): the driver retries only reads, and
//! reports a lost reply to a queued command as an error (the runtime then stops and re-plans).

use super::codec::*;
use crate::arm::{Arm, ArmError, ArmPose, MotionId};
use crate::link::Link;
use std::time::{Duration, Instant};

/// Host driver for a Dobot Magician.
pub struct MagicianArm {
    link: Box<dyn Link>,
    buf: Vec<u8>,
    timeout: Duration,
    retries: u32,
    opening: f64,
}

impl MagicianArm {
    /// A driver on `link`: reads time out after `timeout` and are retried `retries` times.
    pub fn new(link: Box<dyn Link>, timeout: Duration, retries: u32) -> Self {
        MagicianArm { link, buf: Vec::new(), timeout, retries, opening: 0.0 }
    }

    fn lost(&self, e: std::io::Error) -> ArmError {
        ArmError::LinkLost { port: self.link.describe(), source: e }
    }

    fn read_reply(&mut self, id: u8) -> Result<Option<Packet>, ArmError> {
        let deadline = Instant::now() + self.timeout;
        let mut chunk = [0u8; 256];
        loop {
            match take_packet(&mut self.buf) {
                Some(Ok(f)) if f.id == id => return Ok(Some(f)),
                Some(Ok(f)) => log::debug!("magician: ignoring reply id {}", f.id),
                Some(Err(e)) => log::warn!("magician {}: {e}", self.link.describe()),
                None => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(None);
                    }
                    let n = self.link.read_timeout(&mut chunk, deadline - now).map_err(|e| self.lost(e))?;
                    self.buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }

    /// One request/reply. Only non-queued requests are resent (see the module comment).
    fn request(&mut self, id: u8, ctrl: u8, params: Vec<u8>) -> Result<Packet, ArmError> {
        let frame = encode(&Packet { id, ctrl, params });
        let attempts = if ctrl & CTRL_QUEUED != 0 { 1 } else { self.retries + 1 };
        for _ in 0..attempts {
            self.link.write_all_bytes(&frame).map_err(|e| self.lost(e))?;
            if let Some(reply) = self.read_reply(id)? {
                return Ok(reply);
            }
        }
        Err(ArmError::NoReply { port: self.link.describe(), command: format!("Magician id {id}"), attempts })
    }

    fn queued(&mut self, id: u8, params: Vec<u8>) -> Result<MotionId, ArmError> {
        let reply = self.request(id, CTRL_WRITE | CTRL_QUEUED, params)?;
        let bytes: [u8; 8] = reply.params.get(..8).and_then(|b| b.try_into().ok()).ok_or_else(|| ArmError::Other {
            port: self.link.describe(),
            source: format!("queued command {id} answered without a queue index ({} bytes)", reply.params.len()).into(),
        })?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn current_index(&mut self) -> Result<u64, ArmError> {
        let reply = self.request(GET_QUEUED_CMD_CURRENT_INDEX, 0, vec![])?;
        let bytes: [u8; 8] = reply.params.get(..8).and_then(|b| b.try_into().ok()).ok_or_else(|| ArmError::Other {
            port: self.link.describe(),
            source: "queue index reply too short".into(),
        })?;
        Ok(u64::from_le_bytes(bytes))
    }

    pub(crate) fn ptp(p: &ArmPose) -> Vec<u8> {
        let mut v = vec![PTP_MOVL_XYZ];
        for x in [p.x, p.y, p.z, p.yaw] {
            v.extend_from_slice(&(x as f32).to_le_bytes());
        }
        v
    }
}

impl Arm for MagicianArm {
    fn describe(&self) -> String {
        format!("Dobot Magician on {}", self.link.describe())
    }
    fn start_session(&mut self) -> Result<(), ArmError> {
        self.link.discard_input().map_err(|e| self.lost(e))?;
        self.buf.clear();
        self.request(QUEUED_CMD_FORCE_STOP_EXEC, CTRL_WRITE, vec![])?;
        self.request(QUEUED_CMD_CLEAR, CTRL_WRITE, vec![])?;
        self.request(QUEUED_CMD_START_EXEC, CTRL_WRITE, vec![])?;
        Ok(())
    }
    fn move_to(&mut self, pose: ArmPose) -> Result<MotionId, ArmError> {
        self.queued(SET_PTP_CMD, Self::ptp(&pose))
    }
    fn grip(&mut self, opening_mm: f64) -> Result<MotionId, ArmError> {
        // The Magician's gripper is open/closed: any positive opening opens it.
        self.opening = opening_mm;
        self.queued(END_EFFECTOR_GRIPPER, vec![1, u8::from(opening_mm <= 0.0)])
    }
    fn home(&mut self) -> Result<MotionId, ArmError> {
        self.queued(SET_HOME_CMD, vec![0, 0, 0, 0])
    }
    fn track(&mut self, pose: ArmPose, _opening_mm: f64) -> Result<(), ArmError> {
        // No servo mode: replace the queue with one move to the newest target.
        self.request(QUEUED_CMD_FORCE_STOP_EXEC, CTRL_WRITE, vec![])?;
        self.request(QUEUED_CMD_CLEAR, CTRL_WRITE, vec![])?;
        self.request(QUEUED_CMD_START_EXEC, CTRL_WRITE, vec![])?;
        self.queued(SET_PTP_CMD, Self::ptp(&pose)).map(|_| ())
    }
    fn wait_done(&mut self, id: MotionId, timeout: Duration) -> Result<(), ArmError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.current_index()? >= id {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ArmError::MotionTimeout { port: self.link.describe(), id, timeout });
            }
            std::thread::sleep(Duration::from_millis(20).min(timeout));
        }
    }
    fn stop(&mut self) -> Result<(), ArmError> {
        self.request(QUEUED_CMD_FORCE_STOP_EXEC, CTRL_WRITE, vec![])?;
        self.request(QUEUED_CMD_CLEAR, CTRL_WRITE, vec![])?;
        Ok(())
    }
    fn heartbeat(&mut self) -> Result<Duration, ArmError> {
        let t0 = Instant::now();
        self.current_index()?;
        Ok(t0.elapsed())
    }
    fn position(&mut self) -> Result<(ArmPose, f64), ArmError> {
        let reply = self.request(GET_POSE, 0, vec![])?;
        let v = f32s(&reply.params);
        if v.len() < 4 {
            return Err(ArmError::Other {
                port: self.link.describe(),
                source: format!("GET_POSE answered with {} bytes", reply.params.len()).into(),
            });
        }
        Ok((ArmPose { x: v[0] as f64, y: v[1] as f64, z: v[2] as f64, yaw: v[3] as f64 }, self.opening))
    }
}
