//! Solving the camera from correspondences (pixel ↔ robot point, millimetres).
//!
//! Full mode: ≥ 6 non-coplanar points → normalised DLT for the 3×4 projection, RQ decomposition
//! into K, R, t, then Levenberg–Marquardt on the reprojection error (focal lengths, principal
//! point, pose; distortion too when there are ≥ 12 points). Planar mode: points on one plane with
//! known intrinsics → homography → pose, refined likewise. Ill-conditioned sets are refused with
//! advice. Quality: RMS reprojection error (px) and leave-one-out RMS position error (mm).

use crate::camera::{CameraModel, CameraPose, Intrinsics};
use levenberg_marquardt::{LeastSquaresProblem, LevenbergMarquardt};
use nalgebra::{DMatrix, DVector, Dyn, Matrix3, Matrix3x4, Owned, Point3, Rotation3, Vector3};

/// One observation: where the marker was seen, and where the robot says it was.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Correspondence {
    /// Pixel column.
    pub u: f64,
    /// Pixel row.
    pub v: f64,
    /// The robot point seen there, mm.
    pub robot: Point3<f64>,
}

/// Points the full solve needs (not all on one plane).
pub const MIN_POINTS_FULL: usize = 6;
/// Points the planar solve needs (on the table).
pub const MIN_POINTS_PLANAR: usize = 4;
/// Largest |pixel coordinate| accepted (any real image is far smaller).
pub const MAX_PIXEL: f64 = 100_000.0;
/// Largest |robot coordinate| accepted, mm.
pub const MAX_ROBOT_MM: f64 = 100_000.0;
/// Points held out one at a time for the leave-one-out error, at most: more only costs time
/// (a full leave-one-out made the solve quadratic in the number of points).
pub const MAX_HELD_OUT: usize = 12;
/// Distortion is estimated only with at least this many points.
pub const MIN_POINTS_DISTORTION: usize = 12;

/// Why no camera could be solved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SolveError {
    /// Too few points.
    #[error("{got} points are too few: the {mode} mode needs at least {need}; add poses spread over the work area")]
    TooFew {
        /// Points given.
        got: usize,
        /// Points needed.
        need: usize,
        /// `full` or `planar`.
        mode: &'static str,
    },
    /// The points lie on one line.
    #[error("the robot points are (nearly) collinear: move the marker across the work area, not along one line")]
    Collinear,
    /// The full solve got points on one plane.
    #[error("the robot points all lie on one plane: the full mode needs at least two heights (or use the planar mode with known intrinsics)")]
    Coplanar,
    /// The planar solve got points off one plane.
    #[error("the planar mode needs every robot point on one horizontal plane (z spread {spread:.2} mm)")]
    NotPlanar {
        /// Their spread off the plane, mm.
        spread: f64,
    },
    /// Point n has a NaN or infinite value.
    #[error("non-finite value in correspondence {0}")]
    NonFinite(usize),
    /// Point n has a pixel or a robot coordinate no camera or arm produces.
    #[error("correspondence {index}: {what} is out of range (|pixel| ≤ {MAX_PIXEL}, |robot mm| ≤ {MAX_ROBOT_MM})")]
    OutOfRange {
        /// Which point (0-based).
        index: usize,
        /// The value, named.
        what: String,
    },
    /// Known intrinsics that no camera has.
    #[error("the known intrinsics are unusable: {0}")]
    BadIntrinsics(String),
    /// The geometry gives no camera (what failed).
    #[error("the solution is degenerate ({0}); check that pixels and robot points belong together")]
    Degenerate(String),
}

/// A solved camera and how well it fits.
#[derive(Debug, Clone, PartialEq)]
pub struct Solution {
    /// The camera.
    pub model: CameraModel,
    /// RMS reprojection error, pixels.
    pub rms_reprojection_px: f64,
    /// Leave-one-out: each point predicted by a camera solved without it (NaN if not computed).
    pub rms_position_mm: f64,
    /// Points used.
    pub points: usize,
}

fn check_finite(points: &[Correspondence]) -> Result<(), SolveError> {
    for (i, p) in points.iter().enumerate() {
        if !(p.u.is_finite() && p.v.is_finite() && p.robot.coords.iter().all(|c| c.is_finite())) {
            return Err(SolveError::NonFinite(i));
        }
        if p.u.abs() > MAX_PIXEL || p.v.abs() > MAX_PIXEL {
            return Err(SolveError::OutOfRange { index: i, what: format!("pixel ({}, {})", p.u, p.v) });
        }
        if p.robot.coords.iter().any(|c| c.abs() > MAX_ROBOT_MM) {
            return Err(SolveError::OutOfRange { index: i, what: format!("robot point {}", p.robot) });
        }
    }
    Ok(())
}

/// The solution of `model` (leave-one-out not yet computed), if it sees every point it was solved
/// from in front of it.
fn solution(model: CameraModel, points: &[Correspondence]) -> Result<Solution, SolveError> {
    check_in_front(&model, points)?;
    Ok(Solution {
        model,
        rms_reprojection_px: rms_reprojection(&model, points),
        rms_position_mm: f64::NAN,
        points: points.len(),
    })
}

/// A solution must see every point it was solved from in front of it.
fn check_in_front(model: &CameraModel, points: &[Correspondence]) -> Result<(), SolveError> {
    let behind = points.iter().filter(|p| model.project(&p.robot).is_none()).count();
    if behind > 0 {
        return Err(SolveError::Degenerate(format!(
            "{behind} of {} points lie behind the solved camera",
            points.len()
        )));
    }
    Ok(())
}

/// Singular values of the centred robot points, largest first.
fn spread(points: &[Correspondence]) -> [f64; 3] {
    let n = points.len() as f64;
    let c = points.iter().fold(Vector3::zeros(), |a, p| a + p.robot.coords) / n;
    let m = DMatrix::from_fn(points.len(), 3, |i, j| points[i].robot.coords[j] - c[j]);
    let mut s: Vec<f64> = m.singular_values().iter().copied().collect();
    s.sort_by(|a, b| b.total_cmp(a));
    [s[0], s.get(1).copied().unwrap_or(0.0), s.get(2).copied().unwrap_or(0.0)]
}

fn rms_reprojection(model: &CameraModel, points: &[Correspondence]) -> f64 {
    let sum: f64 = points
        .iter()
        .map(|p| match model.project(&p.robot) {
            Some((u, v)) => (u - p.u).powi(2) + (v - p.v).powi(2),
            None => 1e12,
        })
        .sum();
    (sum / points.len() as f64).sqrt()
}

/// Normalised DLT: the 3×4 projection with ‖P‖ = 1.
fn dlt(points: &[Correspondence]) -> Matrix3x4<f64> {
    let n = points.len() as f64;
    let (cu, cv) = points.iter().fold((0.0, 0.0), |(a, b), p| (a + p.u / n, b + p.v / n));
    let du = points.iter().map(|p| ((p.u - cu).powi(2) + (p.v - cv).powi(2)).sqrt()).sum::<f64>() / n;
    let si = 2f64.sqrt() / du.max(1e-12);
    let cw = points.iter().fold(Vector3::zeros(), |a, p| a + p.robot.coords) / n;
    let dw = points.iter().map(|p| (p.robot.coords - cw).norm()).sum::<f64>() / n;
    let sw = 3f64.sqrt() / dw.max(1e-12);
    let mut a = DMatrix::zeros(2 * points.len(), 12);
    for (i, p) in points.iter().enumerate() {
        let x = (p.robot.coords - cw) * sw;
        let (u, v) = ((p.u - cu) * si, (p.v - cv) * si);
        let xh = [x.x, x.y, x.z, 1.0];
        for k in 0..4 {
            a[(2 * i, k)] = xh[k];
            a[(2 * i, 8 + k)] = -u * xh[k];
            a[(2 * i + 1, 4 + k)] = xh[k];
            a[(2 * i + 1, 8 + k)] = -v * xh[k];
        }
    }
    // The null vector of A: the right singular vector of its smallest singular value.
    let ata = a.transpose() * &a;
    let eig = ata.symmetric_eigen();
    let (imin, _) =
        eig.eigenvalues.iter().enumerate().fold((0, f64::MAX), |acc, (i, &v)| if v < acc.1 { (i, v) } else { acc });
    let h = eig.eigenvectors.column(imin);
    let pn = Matrix3x4::from_row_slice(h.as_slice());
    let mut t_world = nalgebra::Matrix4::identity() * sw;
    t_world[(3, 3)] = 1.0;
    t_world[(0, 3)] = -sw * cw.x;
    t_world[(1, 3)] = -sw * cw.y;
    t_world[(2, 3)] = -sw * cw.z;
    // t_img is a scaling by si > 0 (pixels are bounded and not all equal): always invertible.
    let t_img_inv = Matrix3::new(1.0 / si, 0.0, cu, 0.0, 1.0 / si, cv, 0.0, 0.0, 1.0);
    let p = t_img_inv * pn * t_world;
    p / p.norm()
}

/// P = K [R | −R C] → (K, world→camera R, camera centre C).
/// K (upper triangular), R and t of a projection matrix.
type Decomposition = (Matrix3<f64>, Matrix3<f64>, Vector3<f64>);

fn decompose(p: &Matrix3x4<f64>) -> Result<Decomposition, SolveError> {
    let mut p = *p;
    let m: Matrix3<f64> = p.fixed_view::<3, 3>(0, 0).into();
    if m.determinant() < 0.0 {
        p = -p; // the overall sign of P is free; choose the one with the camera in front
    }
    let m: Matrix3<f64> = p.fixed_view::<3, 3>(0, 0).into();
    let minv = m.try_inverse().ok_or_else(|| SolveError::Degenerate("singular projection".into()))?;
    let c = -minv * p.column(3);
    // RQ decomposition via QR of the flipped transpose.
    let flip = Matrix3::new(0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0);
    let qr = (flip * m).transpose().qr();
    let (q, r) = (qr.q(), qr.r());
    let mut k = flip * r.transpose() * flip;
    let mut rot = flip * q.transpose();
    for i in 0..3 {
        if k[(i, i)] < 0.0 {
            k.column_mut(i).neg_mut();
            rot.row_mut(i).neg_mut();
        }
    }
    if rot.determinant() < 0.0 {
        return Err(SolveError::Degenerate("reflection in the decomposed rotation".into()));
    }
    let k = k / k[(2, 2)];
    Ok((k, rot, c))
}

/// Parameters: [fx, fy, cx, cy, k1, k2, p1, p2, rx, ry, rz, Cx, Cy, Cz]; `free` masks which vary.
struct Reprojection<'a> {
    points: &'a [Correspondence],
    params: DVector<f64>,
    free: [bool; 14],
    table_z: f64,
}

fn model_from(p: &DVector<f64>, table_z: f64) -> CameraModel {
    let world_to_cam = Rotation3::from_scaled_axis(Vector3::new(p[8], p[9], p[10]));
    CameraModel {
        intrinsics: Intrinsics {
            fx: p[0],
            fy: p[1],
            cx: p[2],
            cy: p[3],
            k1: p[4],
            k2: p[5],
            p1: p[6],
            p2: p[7],
            k3: 0.0,
        },
        pose: CameraPose { rotation: world_to_cam.inverse(), translation: Vector3::new(p[11], p[12], p[13]) },
        table_z,
    }
}

fn params_from(m: &CameraModel) -> DVector<f64> {
    let k = &m.intrinsics;
    let r = m.pose.rotation.inverse().scaled_axis();
    let c = m.pose.translation;
    DVector::from_vec(vec![k.fx, k.fy, k.cx, k.cy, k.k1, k.k2, k.p1, k.p2, r.x, r.y, r.z, c.x, c.y, c.z])
}

impl Reprojection<'_> {
    fn free_indices(&self) -> Vec<usize> {
        (0..14).filter(|&i| self.free[i]).collect()
    }
    fn residuals_at(&self, full: &DVector<f64>) -> DVector<f64> {
        let m = model_from(full, self.table_z);
        DVector::from_iterator(
            2 * self.points.len(),
            self.points.iter().flat_map(|p| match m.intrinsics.project(&m.pose.to_camera(&p.robot.coords)) {
                Some((u, v)) if u.is_finite() && v.is_finite() => [u - p.u, v - p.v],
                _ => [1e6, 1e6], // behind the camera or diverged: a large, finite penalty
            }),
        )
    }
}

impl LeastSquaresProblem<f64, Dyn, Dyn> for Reprojection<'_> {
    type ResidualStorage = Owned<f64, Dyn>;
    type JacobianStorage = Owned<f64, Dyn, Dyn>;
    type ParameterStorage = Owned<f64, Dyn>;

    fn set_params(&mut self, x: &DVector<f64>) {
        for (j, i) in self.free_indices().into_iter().enumerate() {
            self.params[i] = x[j];
        }
    }
    fn params(&self) -> DVector<f64> {
        DVector::from_iterator(self.free_indices().len(), self.free_indices().into_iter().map(|i| self.params[i]))
    }
    fn residuals(&self) -> Option<DVector<f64>> {
        Some(self.residuals_at(&self.params))
    }
    fn jacobian(&self) -> Option<DMatrix<f64>> {
        // Central differences: 14 parameters and a cheap model make this exact enough and simple.
        let idx = self.free_indices();
        let mut j = DMatrix::zeros(2 * self.points.len(), idx.len());
        for (col, &i) in idx.iter().enumerate() {
            let h = 1e-6 * self.params[i].abs().max(1e-3);
            let (mut a, mut b) = (self.params.clone(), self.params.clone());
            a[i] += h;
            b[i] -= h;
            j.set_column(col, &((self.residuals_at(&a) - self.residuals_at(&b)) / (2.0 * h)));
        }
        Some(j)
    }
}

fn refine(points: &[Correspondence], start: &CameraModel, free: [bool; 14]) -> CameraModel {
    let problem = Reprojection { points, params: params_from(start), free, table_z: start.table_z };
    let (solved, _report) = LevenbergMarquardt::new().with_patience(100).minimize(problem);
    model_from(&solved.params, start.table_z)
}

/// Full calibration from ≥ 6 non-coplanar correspondences.
pub fn solve_full(points: &[Correspondence], table_z: f64) -> Result<Solution, SolveError> {
    let mut s = solve_full_no_loo(points, table_z)?;
    s.rms_position_mm = leave_one_out(points, |rest| solve_full_no_loo(rest, table_z).map(|s| s.model));
    Ok(s)
}

fn solve_full_no_loo(points: &[Correspondence], table_z: f64) -> Result<Solution, SolveError> {
    check_finite(points)?;
    if points.len() < MIN_POINTS_FULL {
        return Err(SolveError::TooFew { got: points.len(), need: MIN_POINTS_FULL, mode: "full" });
    }
    let [s0, s1, s2] = spread(points);
    if s1 < 1e-3 * s0 {
        return Err(SolveError::Collinear);
    }
    if s2 < 1e-2 * s0 {
        return Err(SolveError::Coplanar);
    }
    let (k, r, c) = decompose(&dlt(points))?;
    let start = CameraModel {
        intrinsics: Intrinsics::pinhole(k[(0, 0)], k[(1, 1)], k[(0, 2)], k[(1, 2)]),
        pose: CameraPose { rotation: Rotation3::from_matrix(&r).inverse(), translation: c },
        table_z,
    };
    let distortion = points.len() >= MIN_POINTS_DISTORTION;
    let free =
        [true, true, true, true, distortion, distortion, distortion, distortion, true, true, true, true, true, true];
    let model = refine(points, &start, free);
    if !(model.intrinsics.fx > 0.0 && model.intrinsics.fy > 0.0) {
        return Err(SolveError::Degenerate(format!(
            "focal lengths {:.1}, {:.1}",
            model.intrinsics.fx, model.intrinsics.fy
        )));
    }
    solution(model, points)
}

/// Planar calibration: every robot point on the table plane, intrinsics known.
pub fn solve_planar(points: &[Correspondence], intrinsics: &Intrinsics) -> Result<Solution, SolveError> {
    let mut s = solve_planar_no_loo(points, intrinsics)?;
    s.rms_position_mm = leave_one_out(points, |rest| solve_planar_no_loo(rest, intrinsics).map(|s| s.model));
    Ok(s)
}

fn solve_planar_no_loo(points: &[Correspondence], intrinsics: &Intrinsics) -> Result<Solution, SolveError> {
    check_finite(points)?;
    let k = intrinsics;
    if [k.fx, k.fy, k.cx, k.cy, k.k1, k.k2, k.p1, k.p2, k.k3].iter().any(|v| !v.is_finite()) {
        return Err(SolveError::BadIntrinsics("every value must be a finite number".into()));
    }
    if !(k.fx > 0.0 && k.fy > 0.0) {
        return Err(SolveError::BadIntrinsics(format!("focal lengths fx {} and fy {} must be positive", k.fx, k.fy)));
    }
    if points.len() < MIN_POINTS_PLANAR {
        return Err(SolveError::TooFew { got: points.len(), need: MIN_POINTS_PLANAR, mode: "planar" });
    }
    let zs = points.iter().map(|p| p.robot.z);
    let (zmin, zmax) = zs.fold((f64::MAX, f64::MIN), |(a, b), z| (a.min(z), b.max(z)));
    if zmax - zmin > 0.5 {
        return Err(SolveError::NotPlanar { spread: zmax - zmin });
    }
    let [s0, s1, _] = spread(points);
    if s1 < 1e-3 * s0 {
        return Err(SolveError::Collinear);
    }
    let table_z = points.iter().map(|p| p.robot.z).sum::<f64>() / points.len() as f64;
    // Homography from (x, y) on the plane to undistorted normalised image coordinates, solved in
    // centred and scaled plane coordinates (Hartley): raw millimetres make A badly conditioned.
    let n = points.len() as f64;
    let (mx, my) = points.iter().fold((0.0, 0.0), |(a, b), p| (a + p.robot.x / n, b + p.robot.y / n));
    let mean_dist =
        points.iter().map(|p| ((p.robot.x - mx).powi(2) + (p.robot.y - my).powi(2)).sqrt()).sum::<f64>() / n;
    let sc = 2f64.sqrt() / mean_dist.max(1e-12);
    let norm = Matrix3::new(sc, 0.0, -sc * mx, 0.0, sc, -sc * my, 0.0, 0.0, 1.0);
    let mut a = DMatrix::zeros(2 * points.len(), 9);
    for (i, p) in points.iter().enumerate() {
        let r = intrinsics.ray(p.u, p.v);
        let (x, y) = ((p.robot.x - mx) * sc, (p.robot.y - my) * sc);
        let row = [x, y, 1.0];
        for k in 0..3 {
            a[(2 * i, k)] = row[k];
            a[(2 * i, 6 + k)] = -r.x * row[k];
            a[(2 * i + 1, 3 + k)] = row[k];
            a[(2 * i + 1, 6 + k)] = -r.y * row[k];
        }
    }
    let eig = (a.transpose() * &a).symmetric_eigen();
    let (imin, _) =
        eig.eigenvalues.iter().enumerate().fold((0, f64::MAX), |acc, (i, &v)| if v < acc.1 { (i, v) } else { acc });
    let h = Matrix3::from_row_slice(eig.eigenvectors.column(imin).as_slice()) * norm;
    let (h1, h2, h3) = (h.column(0).into_owned(), h.column(1).into_owned(), h.column(2).into_owned());
    let mut lambda = 1.0 / h1.norm();
    // The observed points are in front of the camera: their centroid has a positive depth.
    if (h * Vector3::new(mx, my, 1.0) * lambda).z < 0.0 {
        lambda = -lambda;
    }
    let (r1, r2) = (h1 * lambda, h2 * lambda);
    let r3 = r1.cross(&r2);
    let approx = Matrix3::from_columns(&[r1, r2, r3]);
    let svd = approx.svd(true, true);
    let (Some(u), Some(v_t)) = (svd.u, svd.v_t) else {
        return Err(SolveError::Degenerate("no rotation from the homography".into()));
    };
    let mut r = u * v_t;
    if r.determinant() < 0.0 {
        // The nearest rotation, not a reflection.
        r = u * Matrix3::from_diagonal(&Vector3::new(1.0, 1.0, -1.0)) * v_t;
    }
    // World→camera: p_cam = R (p − [0, 0, table_z]) + t, t = λ h3.
    let t = h3 * lambda - r * Vector3::new(0.0, 0.0, table_z);
    let rot = Rotation3::from_matrix(&r);
    let centre = -(rot.inverse() * t);
    let start = CameraModel {
        intrinsics: *intrinsics,
        pose: CameraPose { rotation: rot.inverse(), translation: centre },
        table_z,
    };
    let free = [false, false, false, false, false, false, false, false, true, true, true, true, true, true];
    let model = refine(points, &start, free);
    solution(model, points)
}

/// RMS distance between held-out robot points and where a camera solved without each puts its
/// pixel.
fn leave_one_out(
    points: &[Correspondence],
    solve: impl Fn(&[Correspondence]) -> Result<CameraModel, SolveError>,
) -> f64 {
    let mut sum = 0.0;
    let mut n = 0;
    // Up to MAX_HELD_OUT points spread over the list: the solve stays linear in the points.
    let step = points.len().div_ceil(MAX_HELD_OUT).max(1);
    for i in (0..points.len()).step_by(step) {
        let rest: Vec<Correspondence> = points.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, p)| *p).collect();
        let Ok(m) = solve(&rest) else { continue };
        if let Ok(q) = m.pixel_to_robot(points[i].u, points[i].v, Some(points[i].robot.z)) {
            sum += (q - points[i].robot).norm_squared();
            n += 1;
        }
    }
    if n == 0 {
        f64::NAN
    } else {
        (sum / n as f64).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::tests::arb_camera;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    /// Marker positions on a grid at several heights, seen by `cam`, with pixel noise σ.
    fn observe(cam: &CameraModel, heights: &[f64], noise_px: f64, seed: u64) -> Vec<Correspondence> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut out = vec![];
        for &z in heights {
            for i in 0..5 {
                for j in 0..4 {
                    let p = Point3::new(-120.0 + 60.0 * i as f64, -90.0 + 60.0 * j as f64, z);
                    if let Some((u, v)) = cam.project(&p) {
                        let g = |rng: &mut rand_chacha::ChaCha8Rng| {
                            // Box–Muller: Gaussian pixel noise.
                            let (a, b): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen_range(0.0..1.0));
                            noise_px * (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
                        };
                        out.push(Correspondence { u: u + g(&mut rng), v: v + g(&mut rng), robot: p });
                    }
                }
            }
        }
        out
    }

    /// What matters on the robot: table points between the calibration poses map back within
    /// `tol` mm through the solved camera.
    fn max_table_error(truth: &CameraModel, solved: &CameraModel) -> f64 {
        let mut worst: f64 = 0.0;
        for i in 0..6 {
            for j in 0..5 {
                let p = Point3::new(-105.0 + 40.0 * i as f64, -75.0 + 35.0 * j as f64, 0.0);
                let Some((u, v)) = truth.project(&p) else { continue };
                if let Ok(q) = solved.pixel_to_robot(u, v, Some(0.0)) {
                    worst = worst.max((q - p).norm());
                } else {
                    return f64::INFINITY;
                }
            }
        }
        worst
    }

    proptest! {
        // A fixed seed keeps CI deterministic; PROPTEST_RNG_SEED explores others.
        #![proptest_config(ProptestConfig { cases: 16, rng_seed: proptest::test_runner::RngSeed::Fixed(20261126), ..ProptestConfig::default() })]
        /// Stated tolerances with 0.2 px pixel noise over a 240 × 180 mm work area: focal lengths
        /// within 3 %, camera centre within 3 % of its distance (depth and focal length trade off
        /// for near-fronto-parallel views), table points within 1.5 mm, RMS reprojection < 0.5 px.
        #[test]
        fn full_mode_recovers_random_rigs(cam in arb_camera(), seed in 0u64..1000) {
            let pts = observe(&cam, &[0.0, 60.0, 120.0], 0.2, seed);
            prop_assume!(pts.len() >= 30);
            let s = solve_full_no_loo(&pts, 0.0).unwrap();
            let k = &s.model.intrinsics;
            prop_assert!((k.fx / cam.intrinsics.fx - 1.0).abs() < 0.03, "fx {} vs {}", k.fx, cam.intrinsics.fx);
            prop_assert!((k.fy / cam.intrinsics.fy - 1.0).abs() < 0.03);
            let dist = cam.pose.translation.z;
            prop_assert!((s.model.pose.translation - cam.pose.translation).norm() < 0.03 * dist, "centre {} vs {}", s.model.pose.translation, cam.pose.translation);
            prop_assert!(s.rms_reprojection_px < 0.5, "rms {}", s.rms_reprojection_px);
            let e = max_table_error(&cam, &s.model);
            prop_assert!(e < 1.5, "table error {e} mm");
        }

        #[test]
        fn planar_mode_recovers_the_table_mapping(cam in arb_camera(), seed in 0u64..1000) {
            let pts = observe(&cam, &[0.0], 0.2, seed);
            prop_assume!(pts.len() >= 10);
            let s = solve_planar_no_loo(&pts, &cam.intrinsics).unwrap();
            prop_assert!(s.rms_reprojection_px < 0.5, "rms {}", s.rms_reprojection_px);
            let e = max_table_error(&cam, &s.model);
            prop_assert!(e < 1.5, "table error {e} mm");
        }
    }

    #[test]
    fn leave_one_out_position_error_is_reported() {
        let cam = crate::camera::tests::top_down(600.0);
        let pts = observe(&cam, &[0.0, 100.0], 0.3, 7);
        let s = solve_full(&pts, 0.0).unwrap();
        assert!(s.rms_position_mm > 0.01 && s.rms_position_mm < 2.0, "{}", s.rms_position_mm);
        let exact = solve_full(&observe(&cam, &[0.0, 100.0], 0.0, 7), 0.0).unwrap();
        assert!(
            exact.rms_position_mm < 1e-3 && exact.rms_reprojection_px < 1e-3,
            "{} {}",
            exact.rms_position_mm,
            exact.rms_reprojection_px
        );
        let p = solve_planar(&observe(&cam, &[0.0], 0.3, 7), &cam.intrinsics).unwrap();
        assert!(p.rms_position_mm > 0.01 && p.rms_position_mm < 2.0, "{}", p.rms_position_mm);
    }

    /// Exact, noise-free views of a table grid by a camera `height` mm above (0, y), tilted
    /// about x by `tilt_deg`: the planar solve must reproduce the table mapping and give a
    /// calibration file that validates (top-down and tilted rigs both happen on real robots).
    fn exact_planar_rig(tilt_deg: f64, y: f64, height: f64) -> (CameraModel, Vec<Correspondence>) {
        let down = Rotation3::from_matrix_unchecked(Matrix3::new(1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0));
        let rotation = Rotation3::from_euler_angles(tilt_deg.to_radians(), 0.0, 0.0) * down;
        let cam = CameraModel {
            intrinsics: Intrinsics::pinhole(600.0, 600.0, 320.0, 240.0),
            pose: CameraPose { rotation, translation: Vector3::new(0.0, y, height) },
            table_z: 0.0,
        };
        let look = cam.pixel_to_robot(320.0, 240.0, Some(0.0)).unwrap();
        let mut pts = vec![];
        for i in -2..=2 {
            for j in -2..=2 {
                let p = Point3::new(look.x + 50.0 * i as f64, look.y + 50.0 * j as f64, 0.0);
                if let Some((u, v)) = cam.project(&p) {
                    if (0.0..640.0).contains(&u) && (0.0..480.0).contains(&v) {
                        pts.push(Correspondence { u, v, robot: p });
                    }
                }
            }
        }
        (cam, pts)
    }

    #[test]
    fn planar_mode_solves_top_down_and_tilted_rigs() {
        for (tilt, y) in [(0.0, 0.0), (0.0, 150.0), (20.0, 150.0), (20.0, 0.0), (-20.0, 150.0), (30.0, -150.0)] {
            let (cam, pts) = exact_planar_rig(tilt, y, 500.0);
            assert!(pts.len() >= 9, "tilt {tilt} y {y}: {} points in view", pts.len());
            let s = solve_planar(&pts, &cam.intrinsics).unwrap_or_else(|e| panic!("tilt {tilt} y {y}: {e}"));
            assert!(s.rms_reprojection_px < 1e-3, "tilt {tilt} y {y}: rms {}", s.rms_reprojection_px);
            assert!(max_table_error(&cam, &s.model) < 0.01, "tilt {tilt} y {y}");
            let file = crate::file::CalibrationFile::from_model(&s.model, 640, 480, "test", "now", None);
            file.validate().unwrap_or_else(|e| panic!("tilt {tilt} y {y}: {e}"));
        }
    }

    #[test]
    fn absurd_inputs_are_refused_not_panics_or_hangs() {
        let (cam, mut pts) = exact_planar_rig(20.0, 0.0, 500.0);
        let k = cam.intrinsics;
        pts[3].u = 1e300;
        assert!(matches!(solve_full(&pts, 0.0), Err(SolveError::OutOfRange { index: 3, .. })));
        assert!(matches!(solve_planar(&pts, &k), Err(SolveError::OutOfRange { index: 3, .. })));
        let (_, pts) = exact_planar_rig(20.0, 0.0, 500.0);
        for bad in [Intrinsics { fx: 0.0, ..k }, Intrinsics { fy: -600.0, ..k }, Intrinsics { cx: f64::NAN, ..k }] {
            assert!(matches!(solve_planar(&pts, &bad), Err(SolveError::BadIntrinsics(_))), "{bad:?}");
        }
        // Pixels mirrored through the principal point: the only "fit" puts the points behind the
        // camera, which is refused instead of saved with an RMS of 10⁶ px.
        let mirrored: Vec<Correspondence> =
            pts.iter().map(|p| Correspondence { u: 2.0 * k.cx - p.u, v: 2.0 * k.cy - p.v, robot: p.robot }).collect();
        match solve_planar(&mirrored, &k) {
            Err(SolveError::Degenerate(m)) => assert!(m.contains("behind"), "{m}"),
            Ok(s) => assert!(s.rms_reprojection_px < 1.0, "a fit must fit: rms {}", s.rms_reprojection_px),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn leave_one_out_holds_out_a_bounded_number_of_points() {
        let pts: Vec<Correspondence> =
            (0..1000).map(|i| Correspondence { u: i as f64, v: 0.0, robot: Point3::new(i as f64, 0.0, 0.0) }).collect();
        let solves = std::cell::Cell::new(0);
        leave_one_out(&pts, |_| {
            solves.set(solves.get() + 1);
            Err(SolveError::Collinear)
        });
        assert!(solves.get() <= MAX_HELD_OUT, "{} solves for 1000 points", solves.get());
        assert!(solves.get() >= MAX_HELD_OUT - 1);
    }

    #[test]
    fn refusals() {
        let cam = crate::camera::tests::top_down(600.0);
        let pts = observe(&cam, &[0.0, 80.0], 0.0, 1);
        assert!(matches!(solve_full(&pts[..5], 0.0), Err(SolveError::TooFew { got: 5, need: 6, .. })));
        assert_eq!(solve_full(&observe(&cam, &[0.0], 0.0, 1), 0.0), Err(SolveError::Coplanar));
        let line: Vec<Correspondence> = (0..8)
            .map(|i| {
                let p = Point3::new(i as f64 * 10.0, 0.0, i as f64 * 5.0);
                let (u, v) = cam.project(&p).unwrap();
                Correspondence { u, v, robot: p }
            })
            .collect();
        assert_eq!(solve_full(&line, 0.0), Err(SolveError::Collinear));
        assert!(matches!(solve_planar(&pts, &cam.intrinsics), Err(SolveError::NotPlanar { .. })));
        let mut bad = pts.clone();
        bad[3].u = f64::NAN;
        assert_eq!(solve_full(&bad, 0.0), Err(SolveError::NonFinite(3)));
        assert!(SolveError::Coplanar.to_string().contains("two heights"));
    }
}
