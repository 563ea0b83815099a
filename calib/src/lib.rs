//! Calibration for grasp-edge: the pinhole camera model, the image-to-robot transform (paper eq. 1)
//! and its solver. The library is filled by the calibration issue; the crate exists so the
//! workspace layout the user fixed is in place.
