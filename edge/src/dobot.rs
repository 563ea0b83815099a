//! The Dobot Magician serial protocol: frame codec (pure), host driver [`MagicianArm`], and a
//! simulated Magician ([`MagicianSim`], [`serve_magician_pty`]) that the public `pydobot` package
//! drives in a test.
//!
//! Frame: `AA AA len id ctrl params… checksum`, `len` = 2 + params, checksum = two's complement of
//! the byte sum of id, ctrl and params. `ctrl` bit 0 = write, bit 1 = queued. Queued commands are
//! answered with their 64-bit queue index; completion is polled with GET_QUEUED_CMD_CURRENT_INDEX.
//!
//! Unlike grasp-line, the Magician protocol has no sequence numbers, so a queued command whose
//! reply is lost cannot be resent safely (it might run twice): the driver retries only reads, and
//! reports a lost reply to a queued command as an error (the runtime then stops and re-plans).

use crate::arm::{Arm, ArmError, ArmPose, MotionId};
use crate::link::{pty_pair, Link, SerialLink};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const GET_POSE: u8 = 10;
pub const SET_HOME_CMD: u8 = 31;
pub const END_EFFECTOR_SUCTION_CUP: u8 = 62;
pub const END_EFFECTOR_GRIPPER: u8 = 63;
pub const PTP_JOINT_PARAMS: u8 = 80;
pub const PTP_COORDINATE_PARAMS: u8 = 81;
pub const PTP_JUMP_PARAMS: u8 = 82;
pub const PTP_COMMON_PARAMS: u8 = 83;
pub const SET_PTP_CMD: u8 = 84;
pub const QUEUED_CMD_START_EXEC: u8 = 240;
pub const QUEUED_CMD_STOP_EXEC: u8 = 241;
pub const QUEUED_CMD_FORCE_STOP_EXEC: u8 = 242;
pub const QUEUED_CMD_CLEAR: u8 = 245;
pub const GET_QUEUED_CMD_CURRENT_INDEX: u8 = 246;
/// PTP mode 2: linear move to a Cartesian point (MOVL_XYZ).
pub const PTP_MOVL_XYZ: u8 = 2;
pub const CTRL_WRITE: u8 = 0x01;
pub const CTRL_QUEUED: u8 = 0x02;
/// Longest `len` byte of any Magician message (the largest, GET_POSE's reply, has 2 + 32).
pub const MAX_LEN: u8 = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub id: u8,
    pub ctrl: u8,
    pub params: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("bad checksum 0x{got:02X} (expected 0x{want:02X}) in frame id {id}")]
    Checksum { id: u8, got: u8, want: u8 },
    #[error("length byte {0} is below 2")]
    Length(u8),
}

pub fn checksum(id: u8, ctrl: u8, params: &[u8]) -> u8 {
    let sum = params.iter().fold(id.wrapping_add(ctrl), |a, b| a.wrapping_add(*b));
    sum.wrapping_neg()
}

pub fn encode(f: &Frame) -> Vec<u8> {
    let mut out = vec![0xAA, 0xAA, (2 + f.params.len()) as u8, f.id, f.ctrl];
    out.extend_from_slice(&f.params);
    out.push(checksum(f.id, f.ctrl, &f.params));
    out
}

/// Extracts the next frame from a byte buffer, dropping garbage before the header. Returns `None`
/// when more bytes are needed; `Some(Err)` for a damaged frame (its bytes are consumed).
pub fn take_frame(buf: &mut Vec<u8>) -> Option<Result<Frame, FrameError>> {
    loop {
        let start = buf.windows(2).position(|w| w == [0xAA, 0xAA])?;
        buf.drain(..start);
        if buf.len() < 3 {
            return None;
        }
        let len = buf[2];
        if !(2..=MAX_LEN).contains(&len) {
            // Not a header (e.g. the second AA of garbage before the real one): resync one byte on.
            buf.drain(..1);
            if len < 2 {
                return Some(Err(FrameError::Length(len)));
            }
            continue;
        }
        let total = 3 + len as usize + 1;
        if buf.len() < total {
            return None;
        }
        let (id, ctrl, params) = (buf[3], buf[4], buf[5..total - 1].to_vec());
        let (got, want) = (buf[total - 1], checksum(id, ctrl, &params));
        if got != want {
            // Resync one byte on: a damaged frame must not swallow the next one's header.
            buf.drain(..1);
            return Some(Err(FrameError::Checksum { id, got, want }));
        }
        buf.drain(..total);
        return Some(Ok(Frame { id, ctrl, params }));
    }
}

fn f32s(params: &[u8]) -> Vec<f32> {
    params.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Host driver for a Dobot Magician.
pub struct MagicianArm {
    link: Box<dyn Link>,
    buf: Vec<u8>,
    timeout: Duration,
    retries: u32,
    opening: f64,
}

impl MagicianArm {
    pub fn new(link: Box<dyn Link>, timeout: Duration, retries: u32) -> Self {
        MagicianArm { link, buf: Vec::new(), timeout, retries, opening: 0.0 }
    }

    fn lost(&self, e: std::io::Error) -> ArmError {
        ArmError::LinkLost { port: self.link.describe(), source: e }
    }

    fn read_reply(&mut self, id: u8) -> Result<Option<Frame>, ArmError> {
        let deadline = Instant::now() + self.timeout;
        let mut chunk = [0u8; 256];
        loop {
            match take_frame(&mut self.buf) {
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
    fn request(&mut self, id: u8, ctrl: u8, params: Vec<u8>) -> Result<Frame, ArmError> {
        let frame = encode(&Frame { id, ctrl, params });
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
        let bytes: [u8; 8] = reply.params.get(..8).and_then(|b| b.try_into().ok()).ok_or_else(|| ArmError::Other { port: self.link.describe(), source: format!("queued command {id} answered without a queue index ({} bytes)", reply.params.len()).into() })?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn current_index(&mut self) -> Result<u64, ArmError> {
        let reply = self.request(GET_QUEUED_CMD_CURRENT_INDEX, 0, vec![])?;
        let bytes: [u8; 8] = reply.params.get(..8).and_then(|b| b.try_into().ok()).ok_or_else(|| ArmError::Other { port: self.link.describe(), source: "queue index reply too short".into() })?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn ptp(p: &ArmPose) -> Vec<u8> {
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
            return Err(ArmError::Other { port: self.link.describe(), source: format!("GET_POSE answered with {} bytes", reply.params.len()).into() });
        }
        Ok((ArmPose { x: v[0] as f64, y: v[1] as f64, z: v[2] as f64, yaw: v[3] as f64 }, self.opening))
    }
}

/// A simulated Magician: queued commands run one after another, `motion_time` each.
pub struct MagicianSim {
    pub motion_time: Duration,
    pub pose: [f32; 4],
    pub gripped: bool,
    next_index: u64,
    pub current_index: u64,
    running: bool,
    queue: VecDeque<(u64, Frame)>,
    busy_until: Option<Instant>,
    /// Every queued command executed, in order.
    pub executed: Vec<Frame>,
    pub bad_frames: u64,
}

impl Default for MagicianSim {
    fn default() -> Self {
        MagicianSim { motion_time: Duration::from_millis(50), pose: [200.0, 0.0, 50.0, 0.0], gripped: false, next_index: 0, current_index: 0, running: true, queue: VecDeque::new(), busy_until: None, executed: Vec::new(), bad_frames: 0 }
    }
}

impl MagicianSim {
    pub fn handle(&mut self, f: &Frame, now: Instant) -> Frame {
        let reply = |params: Vec<u8>| Frame { id: f.id, ctrl: f.ctrl, params };
        if f.ctrl & CTRL_QUEUED != 0 {
            self.next_index += 1;
            self.queue.push_back((self.next_index, f.clone()));
            self.tick(now);
            return reply(self.next_index.to_le_bytes().to_vec());
        }
        match f.id {
            GET_POSE => {
                let mut p = Vec::new();
                for v in self.pose.iter().chain([0.0f32; 4].iter()) {
                    p.extend_from_slice(&v.to_le_bytes());
                }
                reply(p)
            }
            GET_QUEUED_CMD_CURRENT_INDEX => {
                self.tick(now);
                reply(self.current_index.to_le_bytes().to_vec())
            }
            QUEUED_CMD_START_EXEC => {
                self.running = true;
                reply(vec![])
            }
            QUEUED_CMD_STOP_EXEC | QUEUED_CMD_FORCE_STOP_EXEC => {
                self.running = false;
                self.busy_until = None;
                reply(vec![])
            }
            QUEUED_CMD_CLEAR => {
                self.queue.clear();
                reply(vec![])
            }
            _ => reply(vec![]), // parameter setters: accepted
        }
    }

    pub fn tick(&mut self, now: Instant) {
        while self.running {
            match self.busy_until {
                Some(t) if now < t => return,
                Some(_) => {
                    let (index, f) = self.queue.pop_front().expect("busy implies a running command");
                    match f.id {
                        SET_PTP_CMD => {
                            let v = f32s(&f.params[1..]);
                            self.pose = [v[0], v[1], v[2], v[3]];
                        }
                        SET_HOME_CMD => self.pose = [200.0, 0.0, 50.0, 0.0],
                        END_EFFECTOR_GRIPPER => self.gripped = f.params.get(1) == Some(&1),
                        _ => {}
                    }
                    self.current_index = index;
                    self.executed.push(f);
                    self.busy_until = None;
                }
                None if !self.queue.is_empty() => self.busy_until = Some(now + self.motion_time),
                None => return,
            }
        }
    }
}

/// Serves a [`MagicianSim`] on a pseudo-terminal published at `link_path`; runs until `stop`.
pub fn serve_magician_pty(link_path: &Path, sim: Arc<Mutex<MagicianSim>>, stop: Arc<AtomicBool>) -> std::io::Result<std::thread::JoinHandle<()>> {
    let (master, name) = pty_pair()?;
    let _ = std::fs::remove_file(link_path);
    std::os::unix::fs::symlink(&name, link_path)?;
    Ok(std::thread::spawn(move || {
        let mut link = SerialLink::from_port(master, Duration::from_millis(500));
        let mut buf = Vec::new();
        let mut chunk = [0u8; 256];
        while !stop.load(Ordering::SeqCst) {
            let n = match link.read_timeout(&mut chunk, Duration::from_millis(10)) {
                Ok(n) => n,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(10));
                    0
                }
            };
            buf.extend_from_slice(&chunk[..n]);
            while let Some(r) = take_frame(&mut buf) {
                let mut s = sim.lock().unwrap();
                match r {
                    Ok(f) => {
                        let reply = s.handle(&f, Instant::now());
                        let _ = link.write_all_bytes(&encode(&reply));
                    }
                    Err(e) => {
                        s.bad_frames += 1;
                        log::warn!("sim magician: {e}");
                    }
                }
            }
            sim.lock().unwrap().tick(Instant::now());
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_twos_complement_of_the_sum() {
        // GET_POSE request as the Magician manual shows it: AA AA 02 0A 00 F6.
        assert_eq!(encode(&Frame { id: GET_POSE, ctrl: 0, params: vec![] }), vec![0xAA, 0xAA, 0x02, 0x0A, 0x00, 0xF6]);
        let f = Frame { id: SET_PTP_CMD, ctrl: 3, params: MagicianArm::ptp(&ArmPose { x: 200.0, y: 10.0, z: -20.0, yaw: 45.0 }) };
        let bytes = encode(&f);
        let sum: u32 = bytes[3..].iter().map(|b| *b as u32).sum();
        assert_eq!(sum % 256, 0, "payload plus checksum sums to 0 mod 256");
        let mut buf = [vec![0x00, 0x13, 0xAA], bytes.clone()].concat();
        assert_eq!(take_frame(&mut buf), Some(Ok(f)));
        assert!(buf.is_empty());
    }

    #[test]
    fn damaged_and_partial_frames() {
        let bytes = encode(&Frame { id: GET_QUEUED_CMD_CURRENT_INDEX, ctrl: 0, params: vec![1, 2, 3] });
        let mut partial = bytes[..4].to_vec();
        assert_eq!(take_frame(&mut partial), None);
        let mut bad = bytes.clone();
        bad[6] ^= 0xFF;
        assert!(matches!(take_frame(&mut bad), Some(Err(FrameError::Checksum { id: GET_QUEUED_CMD_CURRENT_INDEX, .. }))));
    }

    #[test]
    fn driver_against_the_simulator_over_a_pty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("magician");
        let sim = Arc::new(Mutex::new(MagicianSim::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let t = serve_magician_pty(&path, sim.clone(), stop.clone()).unwrap();
        let link = SerialLink::open(path.to_str().unwrap(), 115_200, Duration::from_millis(500)).unwrap();
        let mut arm = MagicianArm::new(Box::new(link), Duration::from_millis(300), 3);
        arm.start_session().unwrap();
        let target = ArmPose { x: 220.0, y: -30.0, z: 10.0, yaw: 15.0 };
        let id = arm.move_to(target).unwrap();
        let g = arm.grip(0.0).unwrap();
        assert_eq!(g, id + 1);
        arm.wait_done(g, Duration::from_secs(5)).unwrap();
        let (pose, _) = arm.position().unwrap();
        assert_eq!((pose.x, pose.y, pose.z, pose.yaw), (220.0, -30.0, 10.0, 15.0));
        assert!(sim.lock().unwrap().gripped);
        assert_eq!(sim.lock().unwrap().executed.len(), 2);
        stop.store(true, Ordering::SeqCst);
        t.join().unwrap();
    }
}
