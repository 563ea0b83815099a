//! A simulated arm controller speaking the grasp-line protocol (and, through [`crate::dobot`], the
//! Dobot Magician's), served on a real pseudo-terminal with fault injection. It is the arm of the
//! demo, the tests and the hardware-in-the-loop suite's first tier.
//!
//! [`SimController`] is the pure state machine (lines in, lines out, time passed in);
//! [`serve_pty`] runs it on a pseudo-terminal whose path is published as a symlink, so a
//! "port unplugged" fault can close the terminal and bring a new one back at the same path.

use super::codec::{self as protocol, Command, NakCode, Reply, MAX_LINE, PROTOCOL_VERSION};
use crate::link::{pty_pair, LineEvent, LineReader, Link, SerialLink};
use rand::{Rng, SeedableRng};
use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The reachable box of the simulated arm (mm), a Dobot-Magician-like workspace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimLimits {
    /// Lowest reachable x, y, z, mm.
    pub min: [f64; 3],
    /// Highest reachable x, y, z, mm.
    pub max: [f64; 3],
    /// Widest gripper opening, mm.
    pub max_opening: f64,
}

impl Default for SimLimits {
    fn default() -> Self {
        SimLimits { min: [-400.0, -400.0, -150.0], max: [400.0, 400.0, 300.0], max_opening: 120.0 }
    }
}

/// Something the controller did, in order (what tests compare with what the host intended).
#[derive(Debug, Clone, PartialEq)]
pub struct Executed {
    /// Its sequence number.
    pub seq: u32,
    /// The command.
    pub command: Command,
}

/// The simulated controller's state.
pub struct SimController {
    /// What the simulated arm can reach.
    pub limits: SimLimits,
    /// Time one queued motion takes.
    pub motion_time: Duration,
    /// Halt when no valid line arrives for this long while moving.
    pub heartbeat_timeout: Duration,
    /// Queued motions beyond this are refused with NAK BUSY.
    pub queue_capacity: usize,
    session: bool,
    last_seq: Option<u32>,
    queue: VecDeque<(u32, Command)>,
    current: Option<(u32, Command, Instant)>,
    completed: HashSet<u32>,
    last_heard: Instant,
    /// Current x, y, z (mm) and yaw (degrees).
    pub pose: [f64; 4],
    /// Current gripper opening, mm.
    pub opening: f64,
    /// Every command executed (duplicates are not executed, so never appear twice).
    pub executed: Vec<Executed>,
    /// Lines refused for a bad CRC or syntax.
    pub rejected_lines: u64,
    /// Times the heartbeat timeout halted the arm.
    pub heartbeat_halts: u64,
}

/// Where HOME goes: x, y, z (mm), yaw (degrees).
pub const HOME_POSE: [f64; 4] = [200.0, 0.0, 100.0, 0.0];

impl SimController {
    /// A controller at home, idle, its heartbeat clock started at `now`.
    pub fn new(now: Instant) -> Self {
        SimController {
            limits: SimLimits::default(),
            motion_time: Duration::from_millis(30),
            heartbeat_timeout: Duration::from_secs(2),
            queue_capacity: 16,
            session: false,
            last_seq: None,
            queue: VecDeque::new(),
            current: None,
            completed: HashSet::new(),
            last_heard: now,
            pose: HOME_POSE,
            opening: 0.0,
            executed: Vec::new(),
            rejected_lines: 0,
            heartbeat_halts: 0,
        }
    }

    fn in_range(&self, p: [f64; 3]) -> bool {
        (0..3).all(|i| p[i] >= self.limits.min[i] && p[i] <= self.limits.max[i])
    }

    fn halt(&mut self) {
        self.queue.clear();
        self.current = None;
    }

    /// Handles one received line; returns the reply lines to send.
    pub fn handle_line(&mut self, line: &[u8], now: Instant) -> Vec<String> {
        let (seq, cmd) = match protocol::parse_command(line) {
            Ok(x) => x,
            Err(e) => {
                self.rejected_lines += 1;
                // A damaged line's sequence number cannot be trusted: NAK CRC with 0 (PROTOCOL.md).
                // A well-formed line with a bad verb or argument is refused under its own number.
                let (seq, code) = match e {
                    protocol::ParseError::CrcMismatch { .. }
                    | protocol::ParseError::NoCrc
                    | protocol::ParseError::NotAscii { .. }
                    | protocol::ParseError::TooLong(_)
                    | protocol::ParseError::BadSeq(_) => (0, NakCode::Crc),
                    protocol::ParseError::UnknownVerb(_)
                    | protocol::ParseError::Arity { .. }
                    | protocol::ParseError::BadNumber { .. } => {
                        (protocol::leading_seq(line).unwrap_or(0), NakCode::Syntax)
                    }
                };
                return vec![protocol::encode_reply(seq, &Reply::Nak(code))];
            }
        };
        self.last_heard = now;
        let reply = |r: Reply| protocol::encode_reply(seq, &r);
        if let Command::Hello { version } = cmd {
            if version != PROTOCOL_VERSION {
                return vec![reply(Reply::Nak(NakCode::Session))];
            }
            if self.last_seq == Some(seq) && self.session {
                return vec![reply(Reply::Ack)]; // a resent HELLO: already done
            }
            self.halt();
            self.session = true;
            self.last_seq = Some(seq);
            self.completed.clear();
            self.executed.push(Executed { seq, command: cmd });
            return vec![reply(Reply::Ack)];
        }
        if !self.session {
            return vec![reply(Reply::Nak(NakCode::Session))];
        }
        // Retransmission of something already handled: answer again, never execute again.
        if let Some(last) = self.last_seq {
            if seq <= last {
                let mut out = vec![];
                if let Command::Where = cmd {
                    out.push(self.pos_reply(seq));
                } else {
                    out.push(reply(Reply::Ack));
                }
                if self.completed.contains(&seq) {
                    out.push(reply(Reply::Done));
                }
                return out;
            }
        }
        let out = match &cmd {
            Command::Move { x, y, z, .. } if !self.in_range([*x, *y, *z]) => {
                return vec![reply(Reply::Nak(NakCode::Range))]
            }
            Command::Track { x, y, z, opening, .. }
                if !self.in_range([*x, *y, *z]) || *opening > self.limits.max_opening =>
            {
                return vec![reply(Reply::Nak(NakCode::Range))]
            }
            Command::Grip { opening } if *opening < 0.0 || *opening > self.limits.max_opening => {
                return vec![reply(Reply::Nak(NakCode::Range))]
            }
            Command::Move { .. } | Command::Grip { .. } | Command::Home => {
                if self.queue.len() >= self.queue_capacity {
                    return vec![reply(Reply::Nak(NakCode::Busy))];
                }
                self.queue.push_back((seq, cmd.clone()));
                vec![reply(Reply::Ack)]
            }
            Command::Track { x, y, z, yaw, opening } => {
                self.pose = [*x, *y, *z, *yaw];
                self.opening = *opening;
                vec![reply(Reply::Ack)]
            }
            Command::Stop => {
                self.halt();
                vec![reply(Reply::Ack)]
            }
            Command::Ping => vec![reply(Reply::Ack)],
            Command::Where => vec![self.pos_reply(seq)],
            Command::Hello { .. } => unreachable!("handled above"),
        };
        self.last_seq = Some(seq);
        if !matches!(cmd, Command::Ping | Command::Where) {
            self.executed.push(Executed { seq, command: cmd });
        }
        let mut out = out;
        out.extend(self.tick(now));
        out
    }

    fn pos_reply(&self, seq: u32) -> String {
        let [x, y, z, yaw] = self.pose;
        protocol::encode_reply(seq, &Reply::Pos { x, y, z, yaw, opening: self.opening })
    }

    /// Advances motions; returns DONE events.
    pub fn tick(&mut self, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        if (self.current.is_some() || !self.queue.is_empty())
            && now.duration_since(self.last_heard) > self.heartbeat_timeout
        {
            log::warn!("sim arm: no heartbeat for {:?}; halting", self.heartbeat_timeout);
            self.heartbeat_halts += 1;
            self.halt();
        }
        loop {
            match &self.current {
                Some((seq, cmd, until)) if now >= *until => {
                    match cmd {
                        Command::Move { x, y, z, yaw } => self.pose = [*x, *y, *z, *yaw],
                        Command::Grip { opening } => self.opening = *opening,
                        Command::Home => self.pose = HOME_POSE,
                        _ => {}
                    }
                    self.completed.insert(*seq);
                    out.push(protocol::encode_reply(*seq, &Reply::Done));
                    self.current = None;
                }
                Some(_) => break,
                None => match self.queue.pop_front() {
                    Some((seq, cmd)) => self.current = Some((seq, cmd, now + self.motion_time)),
                    None => break,
                },
            }
        }
        out
    }

    /// Commands that moved something (moves, grips, homes, tracks), in execution order.
    pub fn motions(&self) -> Vec<Executed> {
        self.executed
            .iter()
            .filter(|e| {
                matches!(e.command, Command::Move { .. } | Command::Grip { .. } | Command::Home | Command::Track { .. })
            })
            .cloned()
            .collect()
    }
}

/// Faults injected on the simulated link, each with its probability per line.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Received lines silently lost.
    pub drop_in: f64,
    /// Reply lines silently lost.
    pub drop_out: f64,
    /// Reply lines with one byte damaged.
    pub garble_out: f64,
    /// Received lines with one byte damaged (the controller then answers NAK CRC).
    pub garble_in: f64,
    /// Extra latency before a reply, drawn uniformly up to this.
    pub max_delay: Duration,
    /// Commands answered NAK BUSY instead of being handled.
    pub nak_busy: f64,
    /// After this many received lines, close the terminal (port unplugged) for `down_for`, then
    /// publish a new one at the same path. Repeats every `disconnect_every` lines.
    pub disconnect_every: Option<u64>,
    /// How long an unplugged port stays away.
    pub down_for: Duration,
    /// Seed of the fault dice.
    pub seed: u64,
}

/// A running simulated controller; dropping it stops the thread and removes the symlink.
pub struct SimServer {
    /// The symlink the pseudo-terminal is published at.
    pub path: PathBuf,
    /// The controller, shared with the test that inspects it.
    pub state: Arc<Mutex<SimController>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Times the terminal was closed by the disconnect fault.
    pub disconnects: Arc<std::sync::atomic::AtomicU64>,
}

impl SimServer {
    /// Stops serving and removes the symlink.
    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        unpublish(&self.path);
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Publishes the terminal `target` as the symlink `link_path`, atomically. Only a symlink (a
/// stale one of an earlier run) is ever replaced: a file or directory there is the user's.
fn publish(link_path: &Path, target: &str) -> std::io::Result<()> {
    let named = |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", link_path.display()));
    if let Ok(m) = std::fs::symlink_metadata(link_path) {
        if !m.file_type().is_symlink() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a symlink: refusing to replace it (choose another LINK)",
                    link_path.display()
                ),
            ));
        }
    }
    let tmp = link_path.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(named)?;
    std::fs::rename(&tmp, link_path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        named(e)
    })
}

/// Removes `link_path` if it is a symlink (never a file the user put there).
fn unpublish(link_path: &Path) {
    if std::fs::symlink_metadata(link_path).is_ok_and(|m| m.file_type().is_symlink()) {
        let _ = std::fs::remove_file(link_path);
    }
}

/// Serves `state` on a pseudo-terminal reachable at `link_path` (a symlink to /dev/pts/N).
pub fn serve_pty(link_path: &Path, state: Arc<Mutex<SimController>>, faults: Faults) -> std::io::Result<SimServer> {
    let (master, name) = pty_pair()?;
    publish(link_path, &name)?;
    let stop = Arc::new(AtomicBool::new(false));
    let disconnects = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (st, sp, dc, path) = (state.clone(), stop.clone(), disconnects.clone(), link_path.to_path_buf());
    let thread = std::thread::Builder::new().name("sim-arm".into()).spawn(move || {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(faults.seed);
        let mut link: Box<dyn Link> = Box::new(SerialLink::from_port(master, Duration::from_millis(500)));
        let mut reader = LineReader::new(MAX_LINE);
        let mut received = 0u64;
        while !sp.load(Ordering::SeqCst) {
            let ev = reader.read_line(link.as_mut(), Duration::from_millis(5));
            let mut out = Vec::new();
            match ev {
                Ok(LineEvent::Line(mut line)) => {
                    received += 1;
                    if let Some(every) = faults.disconnect_every {
                        if received.is_multiple_of(every) {
                            dc.fetch_add(1, Ordering::SeqCst);
                            log::info!("sim arm: unplugging {} for {:?}", path.display(), faults.down_for);
                            drop(std::mem::replace(&mut link, Box::new(crate::link::NullLink)));
                            unpublish(&path);
                            std::thread::sleep(faults.down_for);
                            match pty_pair() {
                                Ok((m, n)) => {
                                    link = Box::new(SerialLink::from_port(m, Duration::from_millis(500)));
                                    reader.clear();
                                    let _ = publish(&path, &n);
                                }
                                Err(e) => {
                                    log::error!("sim arm: cannot reopen a terminal: {e}");
                                    return;
                                }
                            }
                            continue;
                        }
                    }
                    if rng.gen_bool(faults.drop_in) {
                        continue;
                    }
                    if rng.gen_bool(faults.garble_in) && line.len() > 2 {
                        let i = rng.gen_range(0..line.len() - 1);
                        line[i] ^= 0x04;
                    }
                    let now = Instant::now();
                    let mut s = st.lock().unwrap();
                    if rng.gen_bool(faults.nak_busy) {
                        if let Ok((seq, _)) = protocol::parse_command(&line) {
                            s.last_heard = now;
                            out.push(protocol::encode_reply(seq, &Reply::Nak(NakCode::Busy)));
                        } else {
                            out = s.handle_line(&line, now);
                        }
                    } else {
                        out = s.handle_line(&line, now);
                    }
                }
                Ok(LineEvent::Overflow) => {
                    // PROTOCOL.md: a line over MAX_LINE is damaged: `0 NAK CRC`, so the host resends.
                    st.lock().unwrap().rejected_lines += 1;
                    out.push(protocol::encode_reply(0, &Reply::Nak(NakCode::Crc)));
                }
                Ok(LineEvent::Timeout) => {}
                Err(_) => {
                    // The host closed its end; wait for it to come back.
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            out.extend(st.lock().unwrap().tick(Instant::now()));
            for reply in out {
                if rng.gen_bool(faults.drop_out) {
                    continue;
                }
                let mut bytes = reply.into_bytes();
                if rng.gen_bool(faults.garble_out) && bytes.len() > 2 {
                    let i = rng.gen_range(0..bytes.len() - 1);
                    bytes[i] ^= 0x04;
                }
                if !faults.max_delay.is_zero() {
                    std::thread::sleep(faults.max_delay.mul_f64(rng.gen::<f64>()));
                }
                let _ = link.write_all_bytes(&bytes);
            }
        }
    })?;
    Ok(SimServer { path: link_path.to_path_buf(), state, stop, thread: Some(thread), disconnects })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(seq: u32, c: Command) -> Vec<u8> {
        protocol::encode_command(seq, &c).into_bytes()
    }

    #[test]
    fn duplicates_are_acknowledged_but_never_executed_twice() {
        let t0 = Instant::now();
        let mut sim = SimController::new(t0);
        assert_eq!(
            sim.handle_line(&cmd(1, Command::Ping), t0),
            vec![protocol::encode_reply(1, &Reply::Nak(NakCode::Session))]
        );
        assert_eq!(
            sim.handle_line(&cmd(1, Command::Hello { version: 1 }), t0),
            vec![protocol::encode_reply(1, &Reply::Ack)]
        );
        let mv = cmd(2, Command::Move { x: 100.0, y: 0.0, z: 50.0, yaw: 10.0 });
        assert_eq!(sim.handle_line(&mv, t0), vec![protocol::encode_reply(2, &Reply::Ack)]);
        assert_eq!(sim.handle_line(&mv, t0), vec![protocol::encode_reply(2, &Reply::Ack)]);
        let done = sim.tick(t0 + Duration::from_millis(31));
        assert_eq!(done, vec![protocol::encode_reply(2, &Reply::Done)]);
        // A resend after completion gets ACK and DONE again (lost DONE recovery), still one execution.
        assert_eq!(
            sim.handle_line(&mv, t0),
            vec![protocol::encode_reply(2, &Reply::Ack), protocol::encode_reply(2, &Reply::Done)]
        );
        assert_eq!(sim.motions().len(), 1);
        assert_eq!(sim.pose, [100.0, 0.0, 50.0, 10.0]);
    }

    #[test]
    fn refusals_name_their_reason() {
        let t0 = Instant::now();
        let mut sim = SimController::new(t0);
        sim.handle_line(&cmd(5, Command::Hello { version: 1 }), t0);
        assert_eq!(
            sim.handle_line(&cmd(6, Command::Move { x: 900.0, y: 0.0, z: 0.0, yaw: 0.0 }), t0),
            vec![protocol::encode_reply(6, &Reply::Nak(NakCode::Range))]
        );
        let mut bad = cmd(7, Command::Home);
        bad[3] ^= 0x01;
        assert_eq!(sim.handle_line(&bad, t0), vec![protocol::encode_reply(0, &Reply::Nak(NakCode::Crc))]);
        assert_eq!(
            sim.handle_line(&cmd(8, Command::Hello { version: 9 }), t0),
            vec![protocol::encode_reply(8, &Reply::Nak(NakCode::Session))]
        );
        assert!(sim.motions().is_empty());
        assert_eq!(sim.rejected_lines, 1);
    }

    #[test]
    fn stop_clears_the_queue_and_silence_halts() {
        let t0 = Instant::now();
        let mut sim = SimController::new(t0);
        sim.handle_line(&cmd(1, Command::Hello { version: 1 }), t0);
        sim.handle_line(&cmd(2, Command::Move { x: 1.0, y: 2.0, z: 3.0, yaw: 0.0 }), t0);
        sim.handle_line(&cmd(3, Command::Home), t0);
        sim.handle_line(&cmd(4, Command::Stop), t0);
        assert!(sim.tick(t0 + Duration::from_secs(1)).is_empty(), "nothing completes after STOP");
        sim.handle_line(&cmd(5, Command::Home), t0);
        assert!(sim.tick(t0 + Duration::from_secs(3)).is_empty(), "halted: no heartbeat for 3 s");
        assert_eq!(sim.heartbeat_halts, 1);
    }

    /// A line with a valid CRC around `body`.
    fn signed(body: &str) -> Vec<u8> {
        format!("{body} *{:04X}\n", protocol::crc16(body.as_bytes())).into_bytes()
    }

    #[test]
    fn refusals_follow_the_protocol_seq_rules() {
        let t0 = Instant::now();
        let mut sim = SimController::new(t0);
        sim.handle_line(&cmd(1, Command::Hello { version: 1 }), t0);
        // CRC holds, the verb does not: refused under its own number.
        assert_eq!(
            sim.handle_line(&signed("7 FROB"), t0),
            vec![protocol::encode_reply(7, &Reply::Nak(NakCode::Syntax))]
        );
        assert_eq!(
            sim.handle_line(&signed("8 MOVE 1 2"), t0),
            vec![protocol::encode_reply(8, &Reply::Nak(NakCode::Syntax))]
        );
        // A damaged line's number cannot be trusted: 0.
        let mut bad = cmd(9, Command::Ping);
        bad[3] ^= 0x04;
        assert_eq!(sim.handle_line(&bad, t0), vec![protocol::encode_reply(0, &Reply::Nak(NakCode::Crc))]);
        assert_eq!(sim.handle_line(&signed("x9 PING"), t0), vec![protocol::encode_reply(0, &Reply::Nak(NakCode::Crc))]);
    }

    #[test]
    fn an_over_long_line_is_answered_nak_crc_and_the_link_stays_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("arm");
        let state = Arc::new(Mutex::new(SimController::new(Instant::now())));
        let mut server = serve_pty(&path, state.clone(), Faults::default()).unwrap();
        let mut link = SerialLink::open(path.to_str().unwrap(), 115_200, Duration::from_millis(500)).unwrap();
        let mut reader = LineReader::new(MAX_LINE);
        let mut send = |link: &mut SerialLink, bytes: &[u8]| {
            link.write_all_bytes(bytes).unwrap();
            match reader.read_line(link, Duration::from_secs(2)).unwrap() {
                LineEvent::Line(l) => String::from_utf8(l).unwrap(),
                other => panic!("no reply: {other:?}"),
            }
        };
        let long = format!("{}\n", "1 MOVE 1.00".repeat(20));
        assert_eq!(send(&mut link, long.as_bytes()), protocol::encode_reply(0, &Reply::Nak(NakCode::Crc)));
        assert_eq!(send(&mut link, &cmd(1, Command::Hello { version: 1 })), protocol::encode_reply(1, &Reply::Ack));
        server.shutdown();
        assert!(!path.exists(), "its own symlink is removed on shutdown");
    }

    #[test]
    fn a_file_or_directory_at_the_link_path_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let state = || Arc::new(Mutex::new(SimController::new(Instant::now())));
        let file = dir.path().join("notes.txt");
        std::fs::write(&file, "mine").unwrap();
        let e = serve_pty(&file, state(), Faults::default()).err().expect("a regular file is refused");
        assert!(e.to_string().contains("notes.txt") && e.to_string().contains("not a symlink"), "{e}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert!(serve_pty(&sub, state(), Faults::default()).is_err());
        let missing = dir.path().join("no/such/dir/arm");
        let e = serve_pty(&missing, state(), Faults::default()).err().expect("a missing directory is refused");
        assert!(e.to_string().contains("no/such/dir/arm"), "{e}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 2, "no stray .new symlink: {left:?}");
        // A stale symlink of an earlier run is replaced.
        let link = dir.path().join("arm");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let mut server = serve_pty(&link, state(), Faults::default()).unwrap();
        assert!(std::fs::read_link(&link).unwrap().starts_with("/dev/pts"));
        server.shutdown();
    }
}
