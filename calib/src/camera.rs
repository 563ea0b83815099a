//! The camera model and the image-to-robot transform (paper eq. 1: robot = t_RC(t_CI(image))).
//!
//! Pinhole intrinsics with Brown–Conrady distortion (radial k1, k2, k3; tangential p1, p2, as
//! OpenCV), the camera pose in the robot base frame, and the work-surface plane z = table_z.
//! A pixel becomes a robot point by undistorting it, casting its ray and intersecting the ray with
//! the table (or with another height, e.g. from the auxiliary depth head). A grasp's yaw and
//! opening come from projecting both jaw ends, so cameras need not look straight down.
//! Everything here is allocation-free: the edge binary calls it every frame.

use nalgebra::{Matrix3, Point3, Rotation3, Vector3};

/// Pinhole intrinsics with Brown–Conrady distortion (OpenCV's model and names).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intrinsics {
    /// Focal length along x, pixels.
    pub fx: f64,
    /// Focal length along y, pixels.
    pub fy: f64,
    /// Principal point x, pixels.
    pub cx: f64,
    /// Principal point y, pixels.
    pub cy: f64,
    /// Radial, r².
    #[serde(default)]
    pub k1: f64,
    /// Radial, r⁴.
    #[serde(default)]
    pub k2: f64,
    /// Tangential.
    #[serde(default)]
    pub p1: f64,
    /// Tangential.
    #[serde(default)]
    pub p2: f64,
    /// Radial, r⁶.
    #[serde(default)]
    pub k3: f64,
}

impl Intrinsics {
    /// Intrinsics without distortion.
    pub fn pinhole(fx: f64, fy: f64, cx: f64, cy: f64) -> Self {
        Intrinsics { fx, fy, cx, cy, k1: 0.0, k2: 0.0, p1: 0.0, p2: 0.0, k3: 0.0 }
    }

    /// The camera matrix K.
    pub fn k(&self) -> Matrix3<f64> {
        Matrix3::new(self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0)
    }

    /// Normalised undistorted coordinates → normalised distorted coordinates.
    pub fn distort(&self, x: f64, y: f64) -> (f64, f64) {
        let r2 = x * x + y * y;
        let radial = 1.0 + r2 * (self.k1 + r2 * (self.k2 + r2 * self.k3));
        (
            x * radial + 2.0 * self.p1 * x * y + self.p2 * (r2 + 2.0 * x * x),
            y * radial + self.p1 * (r2 + 2.0 * y * y) + 2.0 * self.p2 * x * y,
        )
    }

    /// Inverse of [`Self::distort`] by fixed-point iteration (converges for the moderate distortion
    /// of ordinary lenses; the residual is checked by the caller's round-trip tests).
    pub fn undistort(&self, xd: f64, yd: f64) -> (f64, f64) {
        let (mut x, mut y) = (xd, yd);
        for _ in 0..30 {
            let (dx, dy) = self.distort(x, y);
            x += xd - dx;
            y += yd - dy;
        }
        (x, y)
    }

    /// Camera-frame point → pixel; None behind the camera.
    pub fn project(&self, p: &Vector3<f64>) -> Option<(f64, f64)> {
        if !(p.z > 1e-9) {
            return None; // behind the camera, or NaN
        }
        let (x, y) = self.distort(p.x / p.z, p.y / p.z);
        Some((self.fx * x + self.cx, self.fy * y + self.cy))
    }

    /// Pixel → direction of its ray in the camera frame (z = 1).
    pub fn ray(&self, u: f64, v: f64) -> Vector3<f64> {
        let (x, y) = self.undistort((u - self.cx) / self.fx, (v - self.cy) / self.fy);
        Vector3::new(x, y, 1.0)
    }
}

/// The camera in the robot base frame: p_robot = rotation · p_camera + translation, millimetres.
/// `translation` is the camera's optical centre in robot coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CameraPose {
    /// Camera axes in robot coordinates.
    pub rotation: Rotation3<f64>,
    /// Camera centre in the robot frame, mm.
    pub translation: Vector3<f64>,
}

impl CameraPose {
    /// Camera frame → robot frame.
    pub fn to_robot(&self, p_cam: &Vector3<f64>) -> Vector3<f64> {
        self.rotation * p_cam + self.translation
    }
    /// Robot frame → camera frame.
    pub fn to_camera(&self, p_robot: &Vector3<f64>) -> Vector3<f64> {
        self.rotation.inverse() * (p_robot - self.translation)
    }
}

/// A grasp in the robot base frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RobotGrasp {
    /// Grasp centre, millimetres.
    pub x: f64,
    /// Grasp centre y, mm.
    pub y: f64,
    /// Grasp centre z, mm.
    pub z: f64,
    /// Rotation of the opening direction about the robot's z axis, radians in (−π/2, π/2].
    pub yaw: f64,
    /// Distance between the jaw ends, millimetres.
    pub opening_mm: f64,
}

/// Why a pixel has no robot point.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransformError {
    /// The pixel's ray does not meet the plane in front of the camera.
    #[error("pixel ({u:.1}, {v:.1}): its ray does not meet the plane z = {z:.1} mm in front of the camera")]
    NoIntersection {
        /// Pixel column.
        u: f64,
        /// Pixel row.
        v: f64,
        /// Height of the plane, mm.
        z: f64,
    },
    /// A value is NaN or infinite.
    #[error("non-finite input")]
    NonFinite,
}

/// Intrinsics + pose + table: everything the image-to-robot transform needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CameraModel {
    /// The lens.
    pub intrinsics: Intrinsics,
    /// Where the camera is.
    pub pose: CameraPose,
    /// Height of the work surface in the robot frame, millimetres.
    pub table_z: f64,
}

impl CameraModel {
    /// Robot point → pixel.
    pub fn project(&self, p: &Point3<f64>) -> Option<(f64, f64)> {
        self.intrinsics.project(&self.pose.to_camera(&p.coords))
    }

    /// Pixel → the point where its ray meets the plane z = `z` (default: the table).
    pub fn pixel_to_robot(&self, u: f64, v: f64, z: Option<f64>) -> Result<Point3<f64>, TransformError> {
        if !(u.is_finite() && v.is_finite()) {
            return Err(TransformError::NonFinite);
        }
        let z = z.unwrap_or(self.table_z);
        let dir = self.pose.rotation * self.intrinsics.ray(u, v);
        let origin = self.pose.translation;
        if dir.z.abs() < 1e-12 {
            return Err(TransformError::NoIntersection { u, v, z });
        }
        let s = (z - origin.z) / dir.z;
        if !(s > 0.0) || !s.is_finite() {
            return Err(TransformError::NoIntersection { u, v, z });
        }
        Ok(Point3::from(origin + dir * s))
    }

    /// A grasp in pixels (centre, angle Φ counter-clockwise on screen, opening in pixels) → robot
    /// pose, by projecting the centre and both jaw ends onto the plane z = `z` (default: table).
    pub fn grasp_to_robot(
        &self,
        u: f64,
        v: f64,
        angle: f64,
        opening_px: f64,
        z: Option<f64>,
    ) -> Result<RobotGrasp, TransformError> {
        if !(angle.is_finite() && opening_px.is_finite()) {
            return Err(TransformError::NonFinite);
        }
        let c = self.pixel_to_robot(u, v, z)?;
        // The opening runs along (cos Φ, −sin Φ) in pixels (see grasp_models::decode).
        let (du, dv) = (angle.cos() * opening_px / 2.0, -angle.sin() * opening_px / 2.0);
        let a = self.pixel_to_robot(u - du, v - dv, z)?;
        let b = self.pixel_to_robot(u + du, v + dv, z)?;
        let d = b - a;
        Ok(RobotGrasp { x: c.x, y: c.y, z: c.z, yaw: wrap_yaw(d.y.atan2(d.x)), opening_mm: d.norm() })
    }
}

/// A parallel gripper's yaw (the same under a half turn) in (−π/2, π/2]; `a` must be finite.
pub(crate) fn wrap_yaw(a: f64) -> f64 {
    let pi = std::f64::consts::PI;
    let yaw = (a + std::f64::consts::FRAC_PI_2).rem_euclid(pi) - std::f64::consts::FRAC_PI_2;
    if yaw <= -std::f64::consts::FRAC_PI_2 {
        yaw + pi
    } else {
        yaw
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A camera `height` mm above the origin looking straight down, image x along robot +x and
    /// image y along robot −y (so robot y points "up" the image).
    pub fn top_down(height: f64) -> CameraModel {
        let rotation = Rotation3::from_matrix_unchecked(Matrix3::new(1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0));
        CameraModel {
            intrinsics: Intrinsics::pinhole(600.0, 600.0, 320.0, 240.0),
            pose: CameraPose { rotation, translation: Vector3::new(0.0, 0.0, height) },
            table_z: 0.0,
        }
    }

    #[test]
    fn straight_down_camera_by_hand() {
        let cam = top_down(600.0);
        // 600 px focal length at 600 mm: one pixel is one millimetre on the table.
        let p = cam.pixel_to_robot(420.0, 140.0, None).unwrap();
        assert!((p.x - 100.0).abs() < 1e-9 && (p.y - 100.0).abs() < 1e-9 && p.z.abs() < 1e-9, "{p}");
        // A grasp opening along the image x axis opens along robot x; at +90° (up the image) along robot +y.
        let g = cam.grasp_to_robot(320.0, 240.0, 0.0, 50.0, None).unwrap();
        assert!(g.yaw.abs() < 1e-9 && (g.opening_mm - 50.0).abs() < 1e-9);
        let g = cam.grasp_to_robot(320.0, 240.0, std::f64::consts::FRAC_PI_2, 50.0, None).unwrap();
        assert!((g.yaw - std::f64::consts::FRAC_PI_2).abs() < 1e-9, "{}", g.yaw);
        // Higher plane (z = 300 mm, half way up): half the size.
        let g = cam.grasp_to_robot(320.0, 240.0, 0.0, 50.0, Some(300.0)).unwrap();
        assert!((g.opening_mm - 25.0).abs() < 1e-9 && (g.z - 300.0).abs() < 1e-9);
        // A plane above the camera is never met in front of it.
        assert!(cam.pixel_to_robot(320.0, 240.0, Some(700.0)).is_err());
        assert!(cam.pixel_to_robot(f64::NAN, 240.0, None).is_err());
    }

    pub fn arb_camera() -> impl Strategy<Value = CameraModel> {
        (
            (400.0f64..900.0, 0.95f64..1.05, 280.0f64..360.0, 200.0f64..280.0),
            (-0.2f64..0.2, -0.05f64..0.05, -0.002f64..0.002, -0.002f64..0.002),
            (-0.4f64..0.4, -0.4f64..0.4, -3.1f64..3.1, 400.0f64..900.0, -100.0f64..100.0, -100.0f64..100.0),
        )
            .prop_map(|((f, aspect, cx, cy), (k1, k2, p1, p2), (tilt_x, tilt_y, yaw, h, tx, ty))| {
                let down =
                    Rotation3::from_matrix_unchecked(Matrix3::new(1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0));
                let rotation = Rotation3::from_euler_angles(tilt_x, tilt_y, yaw) * down;
                CameraModel {
                    intrinsics: Intrinsics { fx: f, fy: f * aspect, cx, cy, k1, k2, p1, p2, k3: 0.0 },
                    pose: CameraPose { rotation, translation: Vector3::new(tx, ty, h) },
                    table_z: 0.0,
                }
            })
    }

    proptest! {
        #[test]
        fn robot_pixel_robot_round_trip(cam in arb_camera(), x in -150.0f64..150.0, y in -150.0f64..150.0, z in 0.0f64..80.0) {
            let p = Point3::new(x, y, z);
            let Some((u, v)) = cam.project(&p) else { return Ok(()) };
            prop_assume!((0.0..640.0).contains(&u) && (0.0..480.0).contains(&v));
            let back = cam.pixel_to_robot(u, v, Some(z)).unwrap();
            prop_assert!((back - p).norm() < 1e-6, "{p} -> ({u}, {v}) -> {back}");
        }

        #[test]
        fn distortion_inverts(cam in arb_camera(), x in -0.4f64..0.4, y in -0.3f64..0.3) {
            let (xd, yd) = cam.intrinsics.distort(x, y);
            let (xu, yu) = cam.intrinsics.undistort(xd, yd);
            prop_assert!((xu - x).abs() < 1e-9 && (yu - y).abs() < 1e-9);
        }
    }
}
