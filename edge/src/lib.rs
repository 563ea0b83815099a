//! The grasp-edge robot runtime: camera frames in, arm commands out. Detection itself (preprocess,
//! infer, decode) is `grasp_models::detector`; this crate adds what touches the robot, with every
//! device behind a small trait and a fake beside the real one, and the decisions in pure modules:
//! - [`frames`]: V4L2 camera and replay sources, pixel-format negotiation and conversion;
//! - [`control`]: safety filter, stream-mode tracker, pick-mode planner (pure);
//! - [`protocol`]: the grasp-line arm protocol codec (pure; spec in `edge/PROTOCOL.md`);
//! - [`link`]: serial ports and pseudo-terminals with timeouts; [`arm`]: arm drivers and
//!   reconnection; [`dobot`]: the Dobot Magician protocol, driver and simulator;
//! - [`sim`]: the simulated grasp-line controller with fault injection (demo, tests, HIL tier 1);
//! - [`runtime`]: the loop; [`service`]: systemd notification, stats, annotation, flight recorder;
//! - [`config`]: the TOML configuration; [`app`]: config → running pipeline.
pub mod app;
pub mod arm;
pub mod config;
pub mod control;
pub mod dobot;
pub mod frames;
pub mod link;
pub mod protocol;
pub mod runtime;
pub mod service;
pub mod sim;
