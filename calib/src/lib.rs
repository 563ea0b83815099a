//! Calibration for grasp-edge: the pinhole camera model with distortion and the image-to-robot
//! transform the edge binary calls every frame ([`camera`], paper eq. 1), the calibration file
//! with its plausibility checks ([`file`]), and the solvers that estimate a camera from
//! pixel ↔ robot correspondences ([`solve`]), the gripper marker's detector ([`marker`]) and the
//! ROS `camera_info` import ([`camera_info`]), and the table view that warps the table region
//! to a fixed scale through the calibration ([`view`]). All pure computation, no I/O but file
//! reading.
//! The `grasp-calib` wizard (package `grasp-calib-cli` in `calib/cli`, which also uses the edge
//! crate's camera and arm) collects the correspondences on the robot.
#![warn(missing_docs)]

pub mod camera;
pub mod camera_info;
pub mod file;
pub mod marker;
pub mod solve;
pub mod view;

pub use camera::{CameraModel, CameraPose, Intrinsics, RobotGrasp, TransformError};
pub use file::{CalibFileError, CalibrationFile, InvalidField};
pub use solve::{solve_full, solve_planar, Correspondence, Solution, SolveError};
pub use view::{TableView, ViewError, ViewRegion};
