//! The robot's devices, each behind a small trait with a real implementation and a fake or a
//! simulator beside it (as probe-rs does), and nothing else: no model, no inference, no decisions.
//! Used by the robot service (`grasp-edge`) and the calibration wizard (`grasp-calib`).
//! - [`camera`]: the [`camera::FrameSource`] trait, V4L2 cameras and replays, pixel-format
//!   negotiation and conversion (pure);
//! - [`link`]: serial ports and pseudo-terminals with a timeout on every read and write;
//! - [`arm`]: the [`arm::Arm`] trait, an in-memory fake, reconnection with back-off;
//! - [`grasp_line`]: our line protocol (codec, driver, simulated controller; spec in
//!   `devices/PROTOCOL.md`); [`dobot`]: the Dobot Magician's (codec, driver, simulator);
//! - [`config`]: the `[camera]` and `[arm]` sections of the robot's TOML configuration, with
//!   [`config::open_camera`] and [`config::open_arm`].
#![warn(missing_docs)]

pub mod arm;
pub mod camera;
pub mod config;
pub mod dobot;
pub mod grasp_line;
pub mod link;

#[cfg(test)]
mod fuzz;
