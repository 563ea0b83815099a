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
        let (radial, _) = self.radial(r2);
        (
            x * radial + 2.0 * self.p1 * x * y + self.p2 * (r2 + 2.0 * x * x),
            y * radial + self.p1 * (r2 + 2.0 * y * y) + 2.0 * self.p2 * x * y,
        )
    }

    /// The radial factor 1 + k1·r² + k2·r⁴ + k3·r⁶ at `r2` = r², and its derivative by r².
    fn radial(&self, r2: f64) -> (f64, f64) {
        (1.0 + r2 * (self.k1 + r2 * (self.k2 + r2 * self.k3)), self.k1 + r2 * (2.0 * self.k2 + 3.0 * r2 * self.k3))
    }

    /// Jacobian of [`Self::distort`] at (x, y): `[[∂xd/∂x, ∂xd/∂y], [∂yd/∂x, ∂yd/∂y]]`.
    fn distort_jacobian(&self, x: f64, y: f64) -> [[f64; 2]; 2] {
        let (radial, d_radial) = self.radial(x * x + y * y);
        let xy = 2.0 * x * y * d_radial;
        [
            [
                radial + 2.0 * x * x * d_radial + 2.0 * self.p1 * y + 6.0 * self.p2 * x,
                xy + 2.0 * self.p1 * x + 2.0 * self.p2 * y,
            ],
            [
                xy + 2.0 * self.p1 * x + 2.0 * self.p2 * y,
                radial + 2.0 * y * y * d_radial + 6.0 * self.p1 * y + 2.0 * self.p2 * x,
            ],
        ]
    }

    /// Inverse of [`Self::distort`] by Newton's method from the distorted point: the best
    /// estimate, unchecked (for rendering and solving; [`Self::try_undistort`] is the checked
    /// one). Near where the model folds back the old fixed-point iteration stalled and returned a
    /// point far from the true one; Newton's steps do not.
    pub fn undistort(&self, xd: f64, yd: f64) -> (f64, f64) {
        let (mut x, mut y) = (xd, yd);
        for _ in 0..UNDISTORT_ITERATIONS {
            let (dx, dy) = self.distort(x, y);
            let (ex, ey) = (xd - dx, yd - dy);
            if ex.abs().max(ey.abs()) < 1e-15 {
                break;
            }
            let [[a, b], [c, d]] = self.distort_jacobian(x, y);
            let det = a * d - b * c;
            if det.abs() < 1e-12 || !det.is_finite() {
                // Singular: a plain fixed-point step instead.
                x += ex;
                y += ey;
            } else {
                x += (d * ex - b * ey) / det;
                y += (a * ey - c * ex) / det;
            }
        }
        (x, y)
    }

    /// [`Self::undistort`], checked: None unless the result distorts back to the input within
    /// 10⁻⁹ (normalised units: far below a pixel) and the lens model is one-to-one there (the
    /// radial factor and its growth along the radius at least [`MIN_LENS_JACOBIAN`]). Beyond that a
    /// pixel can have two preimages, and the calibration says nothing reliable about its ray.
    pub fn try_undistort(&self, xd: f64, yd: f64) -> Option<(f64, f64)> {
        let (x, y) = self.undistort(xd, yd);
        let (dx, dy) = self.distort(x, y);
        let [[a, b], [c, d]] = self.distort_jacobian(x, y);
        let converged = (dx - xd).abs().max((dy - yd).abs()) < 1e-9;
        // The radial factor and its growth along the radius must both stay positive: past the
        // fold the image runs backwards, and further out it passes through the centre and comes
        // back on the other side (where the determinant is positive again: it alone is not enough).
        let r2 = x * x + y * y;
        let (radial, d_radial) = self.radial(r2);
        let radial_growth = radial + 2.0 * r2 * d_radial; // d(r · radial)/dr
        let one_to_one = radial >= MIN_LENS_JACOBIAN
            && radial_growth >= MIN_LENS_JACOBIAN
            && a * d - b * c >= MIN_LENS_JACOBIAN * MIN_LENS_JACOBIAN;
        (converged && one_to_one && x.is_finite() && y.is_finite()).then_some((x, y))
    }

    /// Camera-frame point → pixel; None behind the camera.
    pub fn project(&self, p: &Vector3<f64>) -> Option<(f64, f64)> {
        if !(p.z > 1e-9) {
            return None; // behind the camera, or NaN
        }
        let (x, y) = self.distort(p.x / p.z, p.y / p.z);
        Some((self.fx * x + self.cx, self.fy * y + self.cy))
    }

    /// Pixel → direction of its ray in the camera frame (z = 1); unchecked, as [`Self::undistort`].
    pub fn ray(&self, u: f64, v: f64) -> Vector3<f64> {
        let (x, y) = self.undistort((u - self.cx) / self.fx, (v - self.cy) / self.fy);
        Vector3::new(x, y, 1.0)
    }

    /// [`Self::ray`], checked: None where [`Self::try_undistort`] is.
    pub fn try_ray(&self, u: f64, v: f64) -> Option<Vector3<f64>> {
        let (x, y) = self.try_undistort((u - self.cx) / self.fx, (v - self.cy) / self.fy)?;
        Some(Vector3::new(x, y, 1.0))
    }
}

/// How much of an image the lens model maps to trusted rays ([`Intrinsics::coverage`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LensCoverage {
    /// Pixels sampled.
    pub sampled: usize,
    /// Of those, pixels [`Intrinsics::try_ray`] refuses.
    pub refused: usize,
    /// The first refused pixel, row by row.
    pub first_refused: Option<(f64, f64)>,
}

impl Intrinsics {
    /// Samples a `width`×`height` image every `step` pixels, its last row and column included
    /// (the corners are where a fold shows first), and counts the pixels without a trusted ray.
    /// A calibration whose distortion folds back inside its own image was fitted without markers
    /// out there: grasps seen there are refused at run time ([`TransformError::OutsideLensModel`]).
    pub fn coverage(&self, width: u32, height: u32, step: usize) -> LensCoverage {
        let axis = |n: u32| {
            let last = n.saturating_sub(1) as usize;
            let mut v: Vec<usize> = (0..=last).step_by(step.max(1)).collect();
            if v.last() != Some(&last) {
                v.push(last);
            }
            v
        };
        let (us, vs) = (axis(width), axis(height));
        let mut c = LensCoverage { sampled: us.len() * vs.len(), refused: 0, first_refused: None };
        for &v in &vs {
            for &u in &us {
                if self.try_ray(u as f64, v as f64).is_none() {
                    c.refused += 1;
                    c.first_refused.get_or_insert((u as f64, v as f64));
                }
            }
        }
        c
    }
}

/// Newton steps of [`Intrinsics::undistort`] at most (it converges in a handful).
const UNDISTORT_ITERATIONS: usize = 50;

/// The smallest stretch of the distortion model (radial factor, and its growth along the radius)
/// at which a pixel's ray is trusted: 1 is an undistorted lens, 0 is where strong barrel
/// distortion folds the image back on itself (two directions, one pixel). Below 0.2 a pixel's
/// position moves the ray five times as much as on an ideal lens, so a sub-pixel error would
/// already be a large one on the table.
pub const MIN_LENS_JACOBIAN: f64 = 0.2;

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
    /// The pixel lies where the calibration's lens model is not one-to-one (strong distortion at
    /// the image edge): its ray is not determined.
    #[error("pixel ({u:.1}, {v:.1}): outside the region the calibration's lens distortion model covers (the model folds back there)")]
    OutsideLensModel {
        /// Pixel column.
        u: f64,
        /// Pixel row.
        v: f64,
    },
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
        let ray = self.intrinsics.try_ray(u, v).ok_or(TransformError::OutsideLensModel { u, v })?;
        let dir = self.pose.rotation * ray;
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

    /// Strong barrel distortion (k1 −0.088, k2 −0.044, from a case the property below drew in a
    /// cold CI run): the radial map folds back at normalised radius 1.27.
    fn strong_barrel_lens() -> Intrinsics {
        Intrinsics {
            k1: -0.08816816189668349,
            k2: -0.04406732205321921,
            ..Intrinsics::pinhole(400.0, 380.0, 352.0, 200.0)
        }
    }

    /// Near the fold of [`strong_barrel_lens`] the old fixed-point undistortion stalled
    /// (contraction 1 − growth per step); Newton's steps converge, and pixels where the map is
    /// that flat are refused rather than trusted.
    #[test]
    fn near_the_lens_models_fold_pixels_are_solved_exactly_or_refused() {
        let k = strong_barrel_lens();
        let growth = |r: f64| 1.0 + r * r * (3.0 * k.k1 + 5.0 * k.k2 * r * r);
        // Radii where the radial map grows at 0.5 and at 0.1 (fold at growth 0).
        let solve = |g: f64| {
            let (mut lo, mut hi) = (0.0, 1.27);
            for _ in 0..60 {
                let mid = (lo + hi) / 2.0;
                if growth(mid) > g {
                    lo = mid
                } else {
                    hi = mid
                }
            }
            lo
        };
        for (g, trusted) in [(0.5, true), (0.1, false)] {
            let r = solve(g);
            let (x, y) = (r * 0.6, r * 0.8);
            let (xd, yd) = k.distort(x, y);
            let (xu, yu) = k.undistort(xd, yd);
            assert!((xu - x).abs() < 1e-9 && (yu - y).abs() < 1e-9, "growth {g}: ({xu}, {yu}) for ({x}, {y})");
            assert_eq!(k.try_undistort(xd, yd).is_some(), trusted, "growth {g}");
        }
    }

    #[test]
    fn coverage_counts_the_pixels_past_the_lens_models_fold() {
        // The strong barrel lens above on a 704×400 image: its corners lie past the fold.
        let strong = strong_barrel_lens();
        let c = strong.coverage(704, 400, 8);
        assert_eq!(c.sampled, 89 * 51);
        assert!(c.refused > 0 && c.refused < c.sampled / 4, "{c:?}");
        assert_eq!(c.first_refused, Some((0.0, 0.0)), "the top-left corner is refused first");
        assert!(strong.try_ray(352.0, 200.0).is_some() && strong.try_ray(0.0, 0.0).is_none());
        // A typical webcam lens covers its image, and a pinhole any image.
        let mild = Intrinsics { k1: -0.2, k2: 0.05, ..Intrinsics::pinhole(600.0, 600.0, 320.0, 240.0) };
        assert_eq!(mild.coverage(640, 480, 8).refused, 0);
        let pinhole = Intrinsics::pinhole(300.0, 300.0, 320.0, 240.0);
        assert_eq!(pinhole.coverage(640, 480, 1), LensCoverage { sampled: 640 * 480, refused: 0, first_refused: None });
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
            // Where the lens model is well inside its one-to-one region the ray must come back
            // exact; elsewhere the answer is the true point or a refusal, never another point.
            let c = cam.pose.to_camera(&p.coords);
            let (x, y) = (c.x / c.z, c.y / c.z);
            let k = &cam.intrinsics;
            let r2 = x * x + y * y;
            let growth = 1.0 + r2 * (3.0 * k.k1 + r2 * (5.0 * k.k2 + 7.0 * r2 * k.k3));
            // Past the fold (growth < 0) the model sends the point to a pixel that belongs to
            // another, nearer ray: no lens a calibration is valid for images such a point.
            prop_assume!(growth > 0.0);
            match cam.pixel_to_robot(u, v, Some(z)) {
                Ok(back) => prop_assert!((back - p).norm() < 1e-6, "{p} -> ({u}, {v}) -> {back}"),
                Err(TransformError::OutsideLensModel { .. }) => {
                    prop_assert!(growth < 2.0 * MIN_LENS_JACOBIAN, "refused a pixel the model covers (growth {growth})")
                }
                Err(e) => prop_assert!(false, "{e}"),
            }
        }

        #[test]
        fn distortion_inverts(cam in arb_camera(), x in -0.4f64..0.4, y in -0.3f64..0.3) {
            let (xd, yd) = cam.intrinsics.distort(x, y);
            let (xu, yu) = cam.intrinsics.undistort(xd, yd);
            prop_assert!((xu - x).abs() < 1e-9 && (yu - y).abs() < 1e-9);
        }
    }
}
