//! The grasp-edge robot runtime: frames in, arm commands out. Detection itself (preprocess, infer,
//! decode) is `grasp_models::detector`; this crate adds what touches the robot.
