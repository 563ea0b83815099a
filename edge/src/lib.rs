//! The grasp-edge robot runtime: camera frames in, arm commands out. Detection itself (preprocess,
//! infer, decode) is `grasp_models::detector`; the devices (cameras, serial links, arm drivers and
//! their simulators) are `grasp_devices`. This crate adds the decisions, in pure modules, and the
//! loop that joins them:
//! - [`control`]: safety filter, stream-mode tracker, pick-mode planner (pure);
//! - [`runtime`]: the loop; [`service`]: systemd notification, stats, annotation, flight recorder;
//! - [`config`]: the TOML configuration; [`app`]: config → running pipeline.
#![warn(missing_docs)]
pub mod app;
pub mod config;
pub mod control;
pub mod runtime;
pub mod service;
