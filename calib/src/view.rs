//! The table view: a region of the table plane, seen straight from above at a fixed scale, warped
//! out of the camera image through the calibration (lens distortion removed). A grasp network
//! sees objects at the pixel size it was trained at whatever the camera's height, tilt, lens or
//! resolution, and a grasp found in the view is already in table coordinates: its centre, yaw and
//! opening follow from an affine map, with no per-grasp perspective conversion.
//!
//! View pixel (u, v) (x right, y down, centres at +0.5) is the table point
//! `x = cx + (u + 0.5 − S/2)·m`, `y = cy − (v + 0.5 − S/2)·m` on the plane z = table_z: robot +x
//! to the right, robot +y up the image, as a camera looking straight down would see it (no mirror
//! image). The warp is a lookup table built once per calibration: for each view pixel, the
//! camera pixel its table point projects to, as bilinear taps.

use crate::camera::{CameraModel, RobotGrasp, TransformError};
use nalgebra::Point3;

/// Why a region of the table cannot be viewed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ViewError {
    /// A value is not a positive finite number (scale, size) or a finite one (centre).
    #[error("{what} = {value}: must be {expected}")]
    BadValue {
        /// Which value.
        what: &'static str,
        /// Its value.
        value: f64,
        /// What it must be.
        expected: &'static str,
    },
    /// A corner (or the centre) of the region is on the far side of the horizon: behind the
    /// camera, or seen at a grazing angle.
    #[error("the table point ({x:.0}, {y:.0}) mm is behind the camera or beyond its horizon")]
    BeyondHorizon {
        /// Robot x, mm.
        x: f64,
        /// Robot y, mm.
        y: f64,
    },
    /// A corner (or the centre) of the region projects outside the camera image.
    #[error(
        "the table point ({x:.0}, {y:.0}) mm projects to pixel ({u:.0}, {v:.0}), outside the {width}x{height} image"
    )]
    OutsideImage {
        /// Robot x, mm.
        x: f64,
        /// Robot y, mm.
        y: f64,
        /// Its pixel column.
        u: f64,
        /// Its pixel row.
        v: f64,
        /// Image width.
        width: usize,
        /// Image height.
        height: usize,
    },
}

/// Parses a table point `X,Y` in mm (the command lines' `--view-center-mm`).
pub fn parse_table_point(s: &str) -> Result<[f64; 2], String> {
    let v: Vec<f64> =
        s.split(',').map(|p| p.trim().parse::<f64>().map_err(|e| format!("`{p}`: {e}"))).collect::<Result<_, _>>()?;
    match v[..] {
        [x, y] if x.is_finite() && y.is_finite() => Ok([x, y]),
        _ => Err(format!("`{s}`: expected two finite numbers X,Y in mm")),
    }
}

/// The region of the table a view shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewRegion {
    /// Centre of the region on the table, robot x and y, mm.
    pub center_mm: [f64; 2],
    /// Side of the square region, mm.
    pub size_mm: f64,
}

impl ViewRegion {
    /// The scale at which this region fits an S×S view, given the scale a model was trained at:
    /// the model's own when the region fits in S pixels at it (the view then shows more table
    /// than asked), else the region's size over S (objects then look smaller than in training;
    /// the ratio to the training scale is returned for a warning). Tiling is not done.
    pub fn fit(&self, size: usize, trained_mm_per_px: f64) -> (f64, f64) {
        let needed = self.size_mm / size as f64;
        let m = trained_mm_per_px.max(needed);
        (m, m / trained_mm_per_px)
    }
}

/// One view pixel's bilinear taps into the camera image.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Taps {
    /// Byte offset of the top-left source pixel (RGB8).
    offset: u32,
    /// Weights of the top-left, top-right, bottom-left, bottom-right pixels in units of
    /// 2⁻¹⁴ (sum exactly 2¹⁴): integer arithmetic, twice the speed of f32 weights.
    w: [u32; 4],
}

/// Fractional bits of the warp's integer tap weights.
const WEIGHT_BITS: u32 = 14;

/// Bilinear weights (sum 1) → integers summing exactly to 2^WEIGHT_BITS (the largest takes the
/// rounding remainder), so a uniform image stays exactly uniform.
fn fixed_point_weights(w: [f32; 4]) -> [u32; 4] {
    let one = 1u32 << WEIGHT_BITS;
    let mut q = w.map(|v| (v.clamp(0.0, 1.0) * one as f32).round() as u32);
    let largest = (0..4).max_by(|&a, &b| w[a].total_cmp(&w[b])).unwrap_or(0);
    let rest: u32 = (0..4).filter(|&i| i != largest).map(|i| q[i]).sum();
    q[largest] = one.saturating_sub(rest);
    q
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn warp_taps_avx2(taps: &[Taps], rgb: &[u8], row: usize, out: &mut [u8]) {
    warp_taps(taps, rgb, row, out);
}

/// Each view pixel from its four taps into the camera image (`row` bytes per image row).
#[inline(always)]
fn warp_taps(taps: &[Taps], rgb: &[u8], row: usize, out: &mut [u8]) {
    for (t, px) in taps.iter().zip(out.chunks_exact_mut(3)) {
        let o = t.offset as usize;
        let (top, bottom) = (&rgb[o..o + 6], &rgb[o + row..o + row + 6]);
        for c in 0..3 {
            let v = t.w[0] * top[c] as u32
                + t.w[1] * top[3 + c] as u32
                + t.w[2] * bottom[c] as u32
                + t.w[3] * bottom[3 + c] as u32;
            px[c] = ((v + (1 << (WEIGHT_BITS - 1))) >> WEIGHT_BITS) as u8;
        }
    }
}

/// A precomputed warp from one camera (calibrated at one image size) to an S×S table view.
#[derive(Debug, Clone)]
pub struct TableView {
    size: usize,
    mm_per_px: f64,
    center: [f64; 2],
    table_z: f64,
    /// The camera's optical centre, robot frame, mm (a view pixel is the ray through it).
    camera_center: [f64; 3],
    image: (usize, usize),
    taps: Vec<Taps>,
}

fn positive(what: &'static str, value: f64) -> Result<f64, ViewError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(ViewError::BadValue { what, value, expected: "a positive number" })
    }
}

/// The smallest cosine between a viewing ray and the table normal accepted as "in view"
/// (about 85° from straight down: beyond it the table is seen edge-on).
const MIN_VIEW_COSINE: f64 = 0.087;

impl TableView {
    /// The lookup table of the `size`×`size` view centred on `center_mm` at `mm_per_px`, for
    /// images of `image` = (width, height) pixels taken by `camera`.
    ///
    /// Refuses a view whose centre or corners lie beyond the camera's horizon or outside its
    /// image, naming the point.
    pub fn new(
        camera: &CameraModel,
        image: (usize, usize),
        center_mm: [f64; 2],
        size: usize,
        mm_per_px: f64,
    ) -> Result<Self, ViewError> {
        let m = positive("mm_per_px", mm_per_px)?;
        positive("size", size as f64)?;
        for (what, v) in [("center_mm[0]", center_mm[0]), ("center_mm[1]", center_mm[1])] {
            if !v.is_finite() {
                return Err(ViewError::BadValue { what, value: v, expected: "a finite number of mm" });
            }
        }
        if image.0 < 2 || image.1 < 2 {
            let value = image.0.min(image.1) as f64;
            return Err(ViewError::BadValue { what: "image side", value, expected: "at least 2 pixels" });
        }
        let mut view = TableView {
            size,
            mm_per_px: m,
            center: center_mm,
            table_z: camera.table_z,
            camera_center: camera.pose.translation.into(),
            image,
            taps: Vec::with_capacity(size * size),
        };
        // The region must be seen: its centre and its four corner pixels.
        let (c, e) = (size as f64 / 2.0 - 0.5, (size - 1) as f64);
        for (u, v) in [(c, c), (0.0, 0.0), (e, 0.0), (0.0, e), (e, e)] {
            let (x, y) = view.table_point(u, v);
            view.camera_pixel(camera, x, y)?;
        }
        let (w, ht) = image;
        for v in 0..size {
            for u in 0..size {
                let (x, y) = view.table_point(u as f64, v as f64);
                // Inside the region every point is in front of the camera (checked at the
                // corners: the region is convex and the horizon a line); outside the image it
                // is clamped to the border.
                let (px, py) = view.camera_pixel(camera, x, y).unwrap_or_else(|e| match e {
                    ViewError::OutsideImage { u, v, .. } => (u, v),
                    _ => (-1.0, -1.0),
                });
                let fx = px.clamp(0.0, (w - 1) as f64);
                let fy = py.clamp(0.0, (ht - 1) as f64);
                let (x0, y0) = ((fx as usize).min(w.saturating_sub(2)), (fy as usize).min(ht.saturating_sub(2)));
                let (ax, ay) = ((fx - x0 as f64) as f32, (fy - y0 as f64) as f32);
                view.taps.push(Taps {
                    offset: ((y0 * w + x0) * 3) as u32,
                    w: fixed_point_weights([(1.0 - ax) * (1.0 - ay), ax * (1.0 - ay), (1.0 - ax) * ay, ax * ay]),
                });
            }
        }
        Ok(view)
    }

    /// S, the view's side in pixels.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Table millimetres per view pixel.
    pub fn mm_per_px(&self) -> f64 {
        self.mm_per_px
    }

    /// The camera image size the view was built for.
    pub fn image_size(&self) -> (usize, usize) {
        self.image
    }

    /// View pixel (u, v) → table point (x, y), mm.
    pub fn table_point(&self, u: f64, v: f64) -> (f64, f64) {
        let h = self.size as f64 / 2.0;
        (self.center[0] + (u + 0.5 - h) * self.mm_per_px, self.center[1] - (v + 0.5 - h) * self.mm_per_px)
    }

    /// Table point (x, y) → view pixel (u, v) (the inverse of [`Self::table_point`]).
    pub fn view_pixel(&self, x: f64, y: f64) -> (f64, f64) {
        let h = self.size as f64 / 2.0;
        ((x - self.center[0]) / self.mm_per_px + h - 0.5, (self.center[1] - y) / self.mm_per_px + h - 0.5)
    }

    fn camera_pixel(&self, camera: &CameraModel, x: f64, y: f64) -> Result<(f64, f64), ViewError> {
        let p = Point3::new(x, y, self.table_z);
        let in_camera = camera.pose.to_camera(&p.coords);
        // The ray's cosine to the table normal, seen from the camera.
        let ray = p.coords - camera.pose.translation;
        let cosine = (camera.pose.translation.z - self.table_z).signum() * -ray.z / ray.norm();
        if !(in_camera.z > 0.0 && cosine >= MIN_VIEW_COSINE) {
            return Err(ViewError::BeyondHorizon { x, y });
        }
        let (u, v) = camera.intrinsics.project(&in_camera).ok_or(ViewError::BeyondHorizon { x, y })?;
        let (w, h) = self.image;
        if !(u >= -0.5 && v >= -0.5 && u <= w as f64 - 0.5 && v <= h as f64 - 0.5) {
            return Err(ViewError::OutsideImage { x, y, u, v, width: w, height: h });
        }
        Ok((u, v))
    }

    /// Warps a packed RGB8 camera image of the calibrated size into the S×S view (`out` is
    /// resized to S·S·3).
    ///
    /// # Panics
    /// If `rgb` is not `width × height × 3` bytes of the size the view was built for (the
    /// runtime checks every frame's size against the calibration first).
    pub fn warp(&self, rgb: &[u8], out: &mut Vec<u8>) {
        let (w, h) = self.image;
        assert_eq!(rgb.len(), w * h * 3, "frame size differs from the view's {w}x{h}");
        out.resize(self.size * self.size * 3, 0);
        // The same loop with 8-lane vectors where the CPU has them; same bits (no fused
        // multiply-add in Rust).
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is present (checked on the line above).
            unsafe { warp_taps_avx2(&self.taps, rgb, w * 3, out) };
            return;
        }
        warp_taps(&self.taps, rgb, w * 3, out);
    }

    /// A grasp found in the view (centre in view pixels, angle Φ counter-clockwise on screen,
    /// opening in view pixels) → the robot grasp at height `z`: the affine map of the view.
    ///
    /// A view pixel shows whatever lies on the camera ray through its table point, so a grasp at
    /// height `z` is where that ray meets the plane z (as the camera path intersects its rays
    /// with it): the table point scaled towards the camera's foot by (C_z − z)/(C_z − table_z),
    /// and the opening by the same factor. Ignoring it would misplace a grasp 20 mm above the
    /// table by 20 mm · tan(view angle) (12 mm at 30°). The map stays affine.
    /// A non-finite input is refused (as [`CameraModel::grasp_to_robot`] does), so no caller can
    /// turn garbage into a pose.
    pub fn grasp_to_robot(
        &self,
        u: f64,
        v: f64,
        angle: f64,
        opening_px: f64,
        z: f64,
    ) -> Result<RobotGrasp, TransformError> {
        if ![u, v, angle, opening_px, z].iter().all(|a| a.is_finite()) {
            return Err(TransformError::NonFinite);
        }
        let (tx, ty) = self.table_point(u, v);
        let [cx, cy, cz] = self.camera_center;
        let s = (cz - z) / (cz - self.table_z);
        if !(s > 0.0) {
            // The plane z is at or above the camera: no ray meets it in front.
            return Err(TransformError::NoIntersection { u, v, z });
        }
        let (x, y) = (cx + (tx - cx) * s, cy + (ty - cy) * s);
        // View y runs along robot −y: a counter-clockwise angle on screen is counter-clockwise
        // about robot +z, so the yaw is Φ, kept in (−π/2, π/2] as the camera path does.
        let yaw = crate::camera::wrap_yaw(angle);
        Ok(RobotGrasp { x, y, z, yaw, opening_mm: opening_px * self.mm_per_px * s })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::{CameraPose, Intrinsics};
    use nalgebra::{Matrix3, Rotation3, Vector3};

    /// A camera `height` mm above (250, 0), tilted by `tilt_deg` about the robot x axis, 640x480.
    fn camera(height: f64, tilt_deg: f64) -> CameraModel {
        camera_k1(height, tilt_deg, -0.05)
    }

    fn camera_k1(height: f64, tilt_deg: f64, k1: f64) -> CameraModel {
        let down = Matrix3::new(1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0);
        let tilt = Rotation3::from_axis_angle(&Vector3::x_axis(), tilt_deg.to_radians());
        let rotation = Rotation3::from_matrix_unchecked(tilt.matrix() * down);
        let mut intrinsics = Intrinsics::pinhole(600.0, 600.0, 320.0, 240.0);
        intrinsics.k1 = k1;
        intrinsics.k2 = 0.01;
        let translation = Vector3::new(250.0, -height * tilt_deg.to_radians().tan(), height);
        CameraModel { intrinsics, pose: CameraPose { rotation, translation }, table_z: 0.0 }
    }

    const CENTER: [f64; 2] = [250.0, 0.0];

    /// The gap between two yaws of a parallel gripper (same under a half turn), radians.
    pub(super) fn yaw_gap(a: f64, b: f64) -> f64 {
        let d = (a - b).rem_euclid(std::f64::consts::PI);
        d.min(std::f64::consts::PI - d)
    }

    #[test]
    fn a_view_pixel_is_its_table_point_and_back() {
        let view = TableView::new(&camera(600.0, 0.0), (640, 480), CENTER, 300, 0.5).unwrap();
        assert_eq!(view.size(), 300);
        let (x, y) = view.table_point(149.5, 149.5);
        assert!((x - 250.0).abs() < 1e-9 && y.abs() < 1e-9, "the view's centre is the region's: {x} {y}");
        let (x, y) = view.table_point(0.0, 0.0);
        assert!((x - 175.25).abs() < 1e-9 && (y - 74.75).abs() < 1e-9, "top-left: -x, +y: {x} {y}");
        let (u, v) = view.view_pixel(x, y);
        assert!(u.abs() < 1e-9 && v.abs() < 1e-9);
    }

    #[test]
    fn integer_weights_keep_a_uniform_image_uniform_and_every_build_agrees() {
        for fx in [0.0f32, 0.1, 0.33, 0.5, 0.77, 0.999] {
            for fy in [0.0f32, 0.25, 0.5, 0.6, 0.9999] {
                let w = [(1.0 - fx) * (1.0 - fy), fx * (1.0 - fy), (1.0 - fx) * fy, fx * fy];
                let q = fixed_point_weights(w);
                assert_eq!(q.iter().sum::<u32>(), 1 << WEIGHT_BITS, "{fx} {fy}");
                for (a, b) in q.iter().zip(w) {
                    assert!((*a as f32 / (1 << WEIGHT_BITS) as f32 - b).abs() < 2e-4, "{fx} {fy}: {q:?}");
                }
            }
        }
        let view = TableView::new(&camera(400.0, 30.0), (640, 480), CENTER, 200, 0.8).unwrap();
        let mut out = Vec::new();
        for level in [0u8, 1, 127, 254, 255] {
            view.warp(&vec![level; 640 * 480 * 3], &mut out);
            assert!(out.iter().all(|v| *v == level), "a uniform {level} image stays uniform");
        }
        let noise: Vec<u8> = (0..640 * 480 * 3).map(|i| ((i as u32).wrapping_mul(2654435761) >> 13) as u8).collect();
        view.warp(&noise, &mut out);
        let mut portable = vec![0u8; out.len()];
        warp_taps(&view.taps, &noise, 640 * 3, &mut portable);
        assert_eq!(out, portable, "the dispatched build gives the portable build's bytes");
    }

    /// A table painted with a function of the robot point, seen by the camera, warps back into
    /// the same function of the view's table points: for straight-down and tilted cameras, with
    /// lens distortion.
    #[test]
    fn the_warp_undoes_perspective_and_distortion() {
        let paint = |x: f64, y: f64| -> [u8; 3] {
            // 0.6 levels per mm, unsaturated over every region below.
            [((x - 40.0) * 0.6).clamp(0.0, 255.0) as u8, ((y + 210.0) * 0.6).clamp(0.0, 255.0) as u8, 128]
        };
        // The first case has a strong barrel distortion over a wide region: ~10 px at its corners.
        for (height, tilt, k1, side) in
            [(600.0, 0.0, -0.2, 400.0), (400.0, 30.0, -0.05, 160.0), (900.0, 20.0, -0.05, 160.0)]
        {
            let cam = camera_k1(height, tilt, k1);
            let (w, h) = (640, 480);
            let mut rgb = vec![0u8; w * h * 3];
            for v in 0..h {
                for u in 0..w {
                    if let Ok(p) = cam.pixel_to_robot(u as f64, v as f64, None) {
                        rgb[(v * w + u) * 3..][..3].copy_from_slice(&paint(p.x, p.y));
                    }
                }
            }
            let view = TableView::new(&cam, (w, h), CENTER, (side / 0.8) as usize, 0.8).unwrap();
            let mut out = Vec::new();
            view.warp(&rgb, &mut out);
            let s = view.size();
            let mut worst = 0i32;
            for v in (2..s - 2).step_by(7) {
                for u in (2..s - 2).step_by(7) {
                    let (x, y) = view.table_point(u as f64, v as f64);
                    let want = paint(x, y);
                    for c in 0..2 {
                        worst = worst.max((out[(v * s + u) * 3 + c] as i32 - want[c] as i32).abs());
                    }
                }
            }
            // One camera pixel is up to ~1.5 mm here, one level of the paint; ignoring the
            // distortion would be ~12 mm (7 levels) off at the first case's corners.
            assert!(worst <= 2, "height {height} tilt {tilt}: worst error {worst} levels");
        }
    }

    /// The affine map agrees with the camera path (project both jaw ends) on a straight-down
    /// camera, and needs no camera at all.
    #[test]
    fn grasps_map_to_the_robot_affinely() {
        let cam = camera(600.0, 0.0);
        let view = TableView::new(&cam, (640, 480), CENTER, 300, 0.5).unwrap();
        let g = view.grasp_to_robot(149.5, 149.5, 0.0, 60.0, 10.0).unwrap();
        assert!((g.x - 250.0).abs() < 1e-9 && g.y.abs() < 1e-9 && g.z == 10.0);
        // 10 mm above the table the camera (600 mm up) sees 590/600 as much per pixel.
        assert!((g.opening_mm - 30.0 * 590.0 / 600.0).abs() < 1e-9 && g.yaw.abs() < 1e-12, "{g:?}");
        // 90° on screen (opening up the view) is robot +y: yaw +90°.
        let g = view.grasp_to_robot(10.0, 20.0, std::f64::consts::FRAC_PI_2, 10.0, 0.0).unwrap();
        assert!((g.yaw - std::f64::consts::FRAC_PI_2).abs() < 1e-12, "{}", g.yaw);
        assert!((g.y - (74.75 - 20.0 * 0.5)).abs() < 1e-9);
        let g = view.grasp_to_robot(0.0, 0.0, 2.0, 10.0, 0.0).unwrap();
        assert!((g.yaw - (2.0 - std::f64::consts::PI)).abs() < 1e-12, "wrapped into (−π/2, π/2]");
        let g = view.grasp_to_robot(0.0, 0.0, -std::f64::consts::FRAC_PI_2, 10.0, 0.0).unwrap();
        assert!((g.yaw - std::f64::consts::FRAC_PI_2).abs() < 1e-12, "−π/2 wraps to +π/2");
        let g = view.grasp_to_robot(0.0, 0.0, -7.0, 10.0, 0.0).unwrap();
        assert!((g.yaw - (-7.0 + 2.0 * std::f64::consts::PI)).abs() < 1e-12, "{}", g.yaw);
        // Garbage never becomes a pose (an infinite angle used to loop forever in the wrap).
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(view.grasp_to_robot(bad, 0.0, 0.0, 10.0, 0.0), Err(TransformError::NonFinite));
            assert_eq!(view.grasp_to_robot(0.0, 0.0, bad, 10.0, 0.0), Err(TransformError::NonFinite));
            assert_eq!(view.grasp_to_robot(0.0, 0.0, 0.0, bad, 0.0), Err(TransformError::NonFinite));
            assert_eq!(view.grasp_to_robot(0.0, 0.0, 0.0, 10.0, bad), Err(TransformError::NonFinite));
        }
        // The same grasp through the camera: a view pixel's table point, projected into the
        // image, gives the camera's grasp with the same yaw and opening.
        let mut cam0 = cam;
        cam0.intrinsics = Intrinsics::pinhole(600.0, 600.0, 320.0, 240.0);
        let view0 = TableView::new(&cam0, (640, 480), CENTER, 300, 0.5).unwrap();
        let (x, y) = view0.table_point(100.0, 200.0);
        let (pu, pv) = cam0.project(&Point3::new(x, y, 0.0)).unwrap();
        let through_camera = cam0.grasp_to_robot(pu, pv, 0.4, 60.0, None).unwrap();
        let affine = view0.grasp_to_robot(100.0, 200.0, 0.4, 60.0, 0.0).unwrap();
        assert!((through_camera.x - affine.x).abs() < 1e-6 && (through_camera.y - affine.y).abs() < 1e-6);
        assert!((through_camera.yaw - affine.yaw).abs() < 1e-9);
        assert!((through_camera.opening_mm - 60.0).abs() < 1e-6, "1 px = 1 mm at 600 mm with f = 600");
        assert!((affine.opening_mm - 30.0).abs() < 1e-9, "60 view px of 0.5 mm");
        // Above the table, on a tilted camera: the ray through the view pixel meets the plane z
        // where the camera path's ray does.
        let mut tilted = camera(500.0, 30.0);
        tilted.intrinsics = Intrinsics::pinhole(600.0, 600.0, 320.0, 240.0);
        let view = TableView::new(&tilted, (640, 480), CENTER, 300, 0.5).unwrap();
        for (u, v, angle, z) in [(100.0, 200.0, 0.4, 40.0), (250.0, 30.0, -1.2, 120.0), (150.0, 150.0, 1.0, 0.0)] {
            let (x, y) = view.table_point(u, v);
            let (pu, pv) = tilted.project(&Point3::new(x, y, 0.0)).unwrap();
            // The same opening: both jaw ends' table points, projected.
            let half = |k: f64| {
                let (ex, ey) = view.table_point(u + k * 30.0 * f64::cos(angle), v - k * 30.0 * f64::sin(angle));
                tilted.project(&Point3::new(ex, ey, 0.0)).unwrap()
            };
            let (a, b) = (half(-1.0), half(1.0));
            let (du, dv) = (b.0 - a.0, b.1 - a.1);
            let cam_angle = (-dv).atan2(du);
            let through_camera = tilted.grasp_to_robot(pu, pv, cam_angle, du.hypot(dv), Some(z)).unwrap();
            let affine = view.grasp_to_robot(u, v, angle, 60.0, z).unwrap();
            let err = (through_camera.x - affine.x).hypot(through_camera.y - affine.y);
            assert!(err < 0.5, "z {z}: {err:.2} mm apart ({through_camera:?} vs {affine:?})");
            assert!((through_camera.opening_mm - affine.opening_mm).abs() < 0.5, "{through_camera:?} vs {affine:?}");
            assert!(crate::view::tests::yaw_gap(through_camera.yaw, affine.yaw) < 0.01);
        }
        // A plane at or above the camera is met by no ray in front of it.
        assert!(matches!(
            view.grasp_to_robot(10.0, 10.0, 0.0, 10.0, 600.0),
            Err(TransformError::NoIntersection { .. })
        ));
    }

    #[test]
    fn regions_out_of_sight_are_refused_naming_the_point() {
        let cam = camera(600.0, 0.0);
        // 640 px at 1 mm/px: ±320 mm around (250, 0) is in view; a region at x = 900 is not.
        let e = TableView::new(&cam, (640, 480), [900.0, 0.0], 200, 0.5).unwrap_err();
        assert!(matches!(e, ViewError::OutsideImage { .. }), "{e}");
        assert!(e.to_string().contains("(900, 0) mm"), "{e}");
        // A camera tilted 60° sees the horizon: a region far along its view is beyond it.
        let tilted = camera(300.0, 60.0);
        let e = TableView::new(&tilted, (640, 480), [250.0, 5000.0], 100, 1.0).unwrap_err();
        assert!(matches!(e, ViewError::BeyondHorizon { .. } | ViewError::OutsideImage { .. }), "{e}");
        let behind = TableView::new(&tilted, (640, 480), [250.0, -5000.0], 100, 1.0).unwrap_err();
        assert!(matches!(behind, ViewError::BeyondHorizon { .. }), "{behind}");
        for (m, size, dx) in [(0.0, 100, 0.0), (f64::NAN, 100, 0.0), (1.0, 0, 0.0), (1.0, 100, f64::INFINITY)] {
            let r = TableView::new(&cam, (640, 480), [250.0 + dx, 0.0], size, m);
            assert!(matches!(r, Err(ViewError::BadValue { .. })), "{r:?}");
        }
    }

    #[test]
    fn a_region_fits_the_model_at_its_scale_or_is_scaled_down() {
        let r = ViewRegion { center_mm: CENTER, size_mm: 200.0 };
        assert_eq!(r.fit(300, 0.8), (0.8, 1.0), "200 mm fit in 300 px at 0.8: the training scale");
        let (m, ratio) = r.fit(224, 0.5);
        assert!((m - 200.0 / 224.0).abs() < 1e-12 && (ratio - m / 0.5).abs() < 1e-12);
    }
}
