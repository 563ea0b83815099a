//! The grasp-edge robot runtime: camera frames in, arm commands out. Detection itself (preprocess,
//! infer, decode) is `grasp_models::detector`; this crate adds what touches the robot, with every
//! device behind a small trait and a fake beside the real one:
//! - [`protocol`]: the grasp-line arm protocol codec (pure; spec in `edge/PROTOCOL.md`);
//! - [`link`]: serial ports and pseudo-terminals with timeouts; [`arm`]: arm drivers, reconnection;
//! - [`sim`]: the simulated controller with fault injection (demo, tests, HIL tier 1).
pub mod arm;
pub mod link;
pub mod protocol;
pub mod sim;
