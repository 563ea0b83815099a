//! Hardware-in-the-loop tests for grasp-edge. Tier 1 runs the real binaries against simulated
//! devices in CI; tier 2 runs on the robot. Filled by the deployment issue.
