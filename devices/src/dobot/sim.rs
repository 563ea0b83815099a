//! A simulated Magician ([`MagicianSim`], [`serve_magician_pty`]) that the public `pydobot`
//! package drives in a test.

use super::codec::*;
use crate::link::{pty_pair, Link, SerialLink};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A simulated Magician: queued commands run one after another, `motion_time` each.
pub struct MagicianSim {
    /// How long each queued command takes.
    pub motion_time: Duration,
    /// x, y, z (mm) and r (degrees).
    pub pose: [f32; 4],
    /// Whether the gripper is closed.
    pub gripped: bool,
    next_index: u64,
    /// Index of the last queued command executed.
    pub current_index: u64,
    running: bool,
    queue: VecDeque<(u64, Packet)>,
    busy_until: Option<Instant>,
    /// Every queued command executed, in order.
    pub executed: Vec<Packet>,
    /// Damaged packets received, and queued commands too short to execute.
    pub bad_packets: u64,
}

impl Default for MagicianSim {
    fn default() -> Self {
        MagicianSim {
            motion_time: Duration::from_millis(50),
            pose: [200.0, 0.0, 50.0, 0.0],
            gripped: false,
            next_index: 0,
            current_index: 0,
            running: true,
            queue: VecDeque::new(),
            busy_until: None,
            executed: Vec::new(),
            bad_packets: 0,
        }
    }
}

impl MagicianSim {
    /// Answers one packet; queued commands join the queue.
    pub fn handle(&mut self, f: &Packet, now: Instant) -> Packet {
        let reply = |params: Vec<u8>| Packet { id: f.id, ctrl: f.ctrl, params };
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
                // The command in progress goes with the queue.
                self.queue.clear();
                self.busy_until = None;
                reply(vec![])
            }
            _ => reply(vec![]), // parameter setters: accepted
        }
    }

    /// Runs the queue up to `now`.
    pub fn tick(&mut self, now: Instant) {
        while self.running {
            match self.busy_until {
                Some(t) if now < t => return,
                Some(_) => {
                    self.busy_until = None;
                    let Some((index, f)) = self.queue.pop_front() else { return };
                    match f.id {
                        SET_PTP_CMD => match f32s(f.params.get(1..).unwrap_or_default())[..] {
                            [x, y, z, r, ..] => self.pose = [x, y, z, r],
                            // A short PTP packet is executed as a no-op, never a panic.
                            _ => self.bad_packets += 1,
                        },
                        SET_HOME_CMD => self.pose = [200.0, 0.0, 50.0, 0.0],
                        END_EFFECTOR_GRIPPER => self.gripped = f.params.get(1) == Some(&1),
                        _ => {}
                    }
                    self.current_index = index;
                    self.executed.push(f);
                }
                None if !self.queue.is_empty() => self.busy_until = Some(now + self.motion_time),
                None => return,
            }
        }
    }
}

/// Serves a [`MagicianSim`] on a pseudo-terminal published at `link_path`; runs until `stop`.
pub fn serve_magician_pty(
    link_path: &Path,
    sim: Arc<Mutex<MagicianSim>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
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
            while let Some(r) = take_packet(&mut buf) {
                let mut s = sim.lock().unwrap();
                match r {
                    Ok(f) => {
                        let reply = s.handle(&f, Instant::now());
                        let _ = link.write_all_bytes(&encode(&reply));
                    }
                    Err(e) => {
                        s.bad_packets += 1;
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
    use crate::arm::{Arm, ArmPose};
    use crate::dobot::MagicianArm;

    #[test]
    fn checksum_is_twos_complement_of_the_sum() {
        // GET_POSE request as the Magician manual shows it: AA AA 02 0A 00 F6.
        assert_eq!(encode(&Packet { id: GET_POSE, ctrl: 0, params: vec![] }), vec![0xAA, 0xAA, 0x02, 0x0A, 0x00, 0xF6]);
        let f = Packet {
            id: SET_PTP_CMD,
            ctrl: 3,
            params: MagicianArm::ptp(&ArmPose { x: 200.0, y: 10.0, z: -20.0, yaw: 45.0 }),
        };
        let bytes = encode(&f);
        let sum: u32 = bytes[3..].iter().map(|b| *b as u32).sum();
        assert_eq!(sum % 256, 0, "payload plus checksum sums to 0 mod 256");
        let mut buf = [vec![0x00, 0x13, 0xAA], bytes.clone()].concat();
        assert_eq!(take_packet(&mut buf), Some(Ok(f)));
        assert!(buf.is_empty());
    }

    #[test]
    fn a_bare_queue_clear_mid_motion_and_short_packets_never_panic() {
        let mut sim = MagicianSim::default();
        let t0 = Instant::now();
        let ptp = Packet {
            id: SET_PTP_CMD,
            ctrl: CTRL_WRITE | CTRL_QUEUED,
            params: MagicianArm::ptp(&ArmPose { x: 210.0, y: 5.0, z: 20.0, yaw: 0.0 }),
        };
        sim.handle(&ptp, t0);
        // The motion is running; the client clears the queue without a force-stop first.
        sim.handle(&Packet { id: QUEUED_CMD_CLEAR, ctrl: CTRL_WRITE, params: vec![] }, t0);
        sim.tick(t0 + Duration::from_secs(1));
        assert!(sim.executed.is_empty(), "the cleared motion never runs");
        // A PTP command too short to hold a pose is counted, not executed.
        sim.handle(&Packet { id: SET_PTP_CMD, ctrl: CTRL_WRITE | CTRL_QUEUED, params: vec![PTP_MOVL_XYZ, 0, 0] }, t0);
        sim.tick(t0 + Duration::from_secs(2));
        sim.tick(t0 + Duration::from_secs(3));
        assert_eq!(sim.bad_packets, 1);
        assert_eq!(sim.pose, [200.0, 0.0, 50.0, 0.0], "pose unchanged");
        // The simulator still works afterwards.
        sim.handle(&ptp, t0 + Duration::from_secs(3));
        sim.tick(t0 + Duration::from_secs(4));
        sim.tick(t0 + Duration::from_secs(5));
        assert_eq!(sim.pose, [210.0, 5.0, 20.0, 0.0]);
    }

    #[test]
    fn damaged_and_partial_packets() {
        let bytes = encode(&Packet { id: GET_QUEUED_CMD_CURRENT_INDEX, ctrl: 0, params: vec![1, 2, 3] });
        let mut partial = bytes[..4].to_vec();
        assert_eq!(take_packet(&mut partial), None);
        let mut bad = bytes.clone();
        bad[6] ^= 0xFF;
        assert!(matches!(
            take_packet(&mut bad),
            Some(Err(PacketError::Checksum { id: GET_QUEUED_CMD_CURRENT_INDEX, .. }))
        ));
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
