//! The grasp-line driver against the simulated controller through a real pseudo-terminal, with
//! injected faults: every intended command is executed exactly once, in order.

use grasp_devices::arm::{Arm, ArmPose};
use grasp_devices::grasp_line::codec::Command;
use grasp_devices::grasp_line::sim::{serve_pty, Faults, SimController};
use grasp_devices::grasp_line::{LineArm, LineTiming};
use grasp_devices::link::SerialLink;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn open(path: &std::path::Path, first_seq: u32) -> LineArm {
    let link = SerialLink::open(path.to_str().unwrap(), 115_200, Duration::from_millis(500)).unwrap();
    LineArm::new(
        Box::new(link),
        LineTiming { reply_timeout: Duration::from_millis(60), retries: 8, done_poll: Duration::from_millis(150) },
        first_seq,
    )
}

fn poses(n: usize) -> Vec<ArmPose> {
    (0..n)
        .map(|i| ArmPose { x: 150.0 + i as f64, y: -20.0 + 0.5 * i as f64, z: 40.0, yaw: (i as f64 * 7.0) % 90.0 })
        .collect()
}

fn run_sequence(faults: Faults, n: usize) -> (Vec<Command>, LineArm, grasp_devices::grasp_line::sim::SimServer) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("arm");
    let state = Arc::new(Mutex::new(SimController::new(Instant::now())));
    let server = serve_pty(&path, state.clone(), faults).unwrap();
    let mut arm = open(&path, 1);
    arm.start_session().unwrap();
    let mut intended = Vec::new();
    for p in poses(n) {
        let id = arm.move_to(p).unwrap();
        intended.push(Command::Move { x: p.x, y: p.y, z: p.z, yaw: p.yaw });
        arm.wait_done(id, Duration::from_secs(10)).unwrap();
        let id = arm.grip(30.0).unwrap();
        intended.push(Command::Grip { opening: 30.0 });
        arm.wait_done(id, Duration::from_secs(10)).unwrap();
    }
    arm.stop().unwrap();
    intended.push(Command::Stop);
    std::mem::forget(dir); // the server removes its symlink on drop
    (intended, arm, server)
}

fn executed_without_hello(server: &grasp_devices::grasp_line::sim::SimServer) -> Vec<Command> {
    let s = server.state.lock().unwrap();
    s.executed.iter().filter(|e| !matches!(e.command, Command::Hello { .. })).map(|e| e.command.clone()).collect()
}

#[test]
fn clean_link_executes_exactly_the_intended_commands() {
    let (intended, arm, server) = run_sequence(Faults::default(), 10);
    assert_eq!(executed_without_hello(&server), intended);
    assert_eq!(arm.retransmissions, 0);
    let (pose, opening) = {
        let mut a = arm;
        a.position().unwrap()
    };
    assert_eq!((pose.x, opening), (159.0, 30.0));
}

#[test]
fn drops_garbles_naks_and_delays_lose_or_duplicate_nothing() {
    let faults = Faults {
        drop_in: 0.1,
        drop_out: 0.1,
        garble_in: 0.1,
        garble_out: 0.1,
        nak_busy: 0.1,
        max_delay: Duration::from_millis(20),
        seed: 7,
        ..Default::default()
    };
    let (intended, arm, server) = run_sequence(faults, 25);
    let executed = executed_without_hello(&server);
    assert_eq!(executed.len(), intended.len(), "executed {executed:#?}");
    assert_eq!(executed, intended);
    assert!(arm.retransmissions > 5, "faults were injected: {} resends", arm.retransmissions);
    assert!(arm.garbled_replies > 0);
    assert!(server.state.lock().unwrap().rejected_lines > 0);
}

#[test]
fn unplugged_port_is_reopened_with_backoff_and_nothing_is_executed_twice() {
    use grasp_devices::arm::{ArmError, ArmOpener, Backoff, Reconnecting};
    use std::sync::atomic::AtomicU32;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("arm");
    let state = Arc::new(Mutex::new(SimController::new(Instant::now())));
    // Every 7th line the terminal goes away for 300 ms and comes back at the same path.
    let faults =
        Faults { disconnect_every: Some(7), down_for: Duration::from_millis(300), seed: 3, ..Default::default() };
    let server = serve_pty(&path, state.clone(), faults).unwrap();
    let seq = Arc::new(AtomicU32::new(1));
    let p2 = path.clone();
    let opener: ArmOpener = Box::new(move || {
        let link = SerialLink::open(p2.to_str().unwrap(), 115_200, Duration::from_millis(500))
            .map_err(|e| ArmError::LinkLost { port: p2.display().to_string(), source: e })?;
        Ok(Box::new(LineArm::with_counter(
            Box::new(link),
            LineTiming { reply_timeout: Duration::from_millis(60), retries: 3, done_poll: Duration::from_millis(150) },
            seq.clone(),
        )) as Box<dyn Arm>)
    });
    let mut arm = Reconnecting::new(
        path.to_str().unwrap(),
        opener,
        Backoff { min: Duration::from_millis(50), max: Duration::from_millis(400) },
    );
    let mut confirmed = Vec::new();
    for p in poses(20) {
        let t0 = Instant::now();
        while !arm.is_connected() {
            arm.poll(Instant::now());
            assert!(t0.elapsed() < Duration::from_secs(10), "never reconnected");
            std::thread::sleep(Duration::from_millis(10));
        }
        // Like the runtime: a move that fails is dropped, never resent on the new link.
        if let Ok(id) = arm.move_to(p) {
            if arm.wait_done(id, Duration::from_secs(5)).is_ok() {
                confirmed.push(Command::Move { x: p.x, y: p.y, z: p.z, yaw: p.yaw });
            }
        }
    }
    assert!(
        server.disconnects.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "disconnects {} reconnects {} confirmed {} executed {:?}",
        server.disconnects.load(std::sync::atomic::Ordering::SeqCst),
        arm.reconnects,
        confirmed.len(),
        executed_without_hello(&server)
    );
    assert!(arm.reconnects >= 2, "reconnected {} times", arm.reconnects);
    let executed = executed_without_hello(&server);
    let intended: Vec<Command> =
        poses(20).iter().map(|p| Command::Move { x: p.x, y: p.y, z: p.z, yaw: p.yaw }).collect();
    // Executed moves are intended moves, in order, none twice; every confirmed one was executed.
    let mut it = intended.iter();
    for e in &executed {
        assert!(it.any(|i| i == e), "{e:?} executed out of order or twice: {executed:#?}");
    }
    for c in &confirmed {
        assert!(executed.contains(c));
    }
    assert!(confirmed.len() >= 10, "only {} of 20 moves confirmed", confirmed.len());
}
