//! The grasp-edge robot runtime: frames in, grasps out. [`detector`] turns an RGB frame into
//! ranked grasps in the frame's pixel coordinates with a grasp model on the chosen backend; later
//! stages (robot frame, safety filter, arm link) consume its output.

pub mod detector;
