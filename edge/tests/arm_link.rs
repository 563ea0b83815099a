//! The grasp-line driver against the simulated controller through a real pseudo-terminal, with
//! injected faults: every intended command is executed exactly once, in order.

use grasp_edge::arm::{Arm, ArmPose, LineArm, LineTiming};
use grasp_edge::link::SerialLink;
use grasp_edge::protocol::Command;
use grasp_edge::sim::{serve_pty, Faults, SimController};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn open(path: &std::path::Path, first_seq: u32) -> LineArm {
    let link = SerialLink::open(path.to_str().unwrap(), 115_200, Duration::from_millis(500)).unwrap();
    LineArm::new(Box::new(link), LineTiming { reply_timeout: Duration::from_millis(60), retries: 8, done_poll: Duration::from_millis(150) }, first_seq)
}

fn poses(n: usize) -> Vec<ArmPose> {
    (0..n).map(|i| ArmPose { x: 150.0 + i as f64, y: -20.0 + 0.5 * i as f64, z: 40.0, yaw: (i as f64 * 7.0) % 90.0 }).collect()
}

fn run_sequence(faults: Faults, n: usize) -> (Vec<Command>, LineArm, grasp_edge::sim::SimServer) {
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

fn executed_without_hello(server: &grasp_edge::sim::SimServer) -> Vec<Command> {
    let s = server.state.lock().unwrap();
    s.executed.iter().filter(|e| !matches!(e.command, Command::Hello { .. })).map(|e| e.command.clone()).collect()
}

#[test]
fn clean_link_executes_exactly_the_intended_commands() {
    let (intended, arm, server) = run_sequence(Faults::default(), 10);
    assert_eq!(executed_without_hello(&server), intended);
    assert_eq!(arm.retransmissions, 0);
    let (pose, opening) = { let mut a = arm; a.position().unwrap() };
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
