//! Synthetic scenes seen through a posed pinhole camera: the same scene distribution as
//! [`crate::synth`], laid on the table (the scene square of [`SCENE_MM`] centred on the robot
//! origin) and ray-cast through a camera `height_mm` above the table, tilted by `tilt_deg`. The
//! set comes with the camera's `calibration.toml`, so the edge runtime and `eval --calibration`
//! see it as a calibrated rig would.
//!
//! Conventions (as [`grasp_calib::view`]): robot +x to the right of the scene, robot +y up it,
//! the table at z = 0. The camera looks at the origin; a tilt moves it towards −y and turns it
//! about the robot x axis, so the far side of the table is at the top of the image.
//! Ground-truth grasps are 3-D (at half the object's height at their centre) and are projected
//! into the image, centre, jaw ends and jaw edges alike.
//!
//! Built on it: table-view training sets (each scene through a random camera, warped into the
//! table view at one scale: [`table_view_scene`]), the table view as `eval --calibration` applies
//! it to an image and its labels ([`ViewedEval`]), and the pose table ([`pose_table`]).

use crate::dataset::Sample;
use crate::synth::{scene_with_noise, Scene, NOISE, SCENE_MM};
use grasp_calib::{CameraModel, CameraPose, Intrinsics, TableView};
use grasp_models::detector::GraspDetector;
use grasp_models::metric::{grasp_succeeds, GraspRect, IouMode};
use nalgebra::{Matrix3, Point3, Rotation3, Vector3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Texels per side of the top-down scene that the camera sees (0.5 mm per texel): finer than
/// the image at the closest camera (350 mm, 450 px focal: 0.78 mm per pixel).
pub const TEXTURE_SIZE: usize = 600;

/// A synthetic camera: where it hangs and its lens.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthCamera {
    /// Height of the optical centre above the table, mm.
    pub height_mm: f64,
    /// Angle between the optical axis and straight down, degrees (0: looking straight down).
    pub tilt_deg: f64,
    /// Focal length, pixels.
    pub focal_px: f64,
    /// Image width, pixels.
    pub width: usize,
    /// Image height, pixels.
    pub height: usize,
}

impl SynthCamera {
    /// A 640×480 camera with a 450 px focal length (70° horizontal field, a common USB camera).
    pub fn usb(height_mm: f64, tilt_deg: f64) -> Self {
        SynthCamera { height_mm, tilt_deg, focal_px: 450.0, width: 640, height: 480 }
    }

    /// Refuses a camera that cannot see the scene: non-positive sizes, a tilt of 80° or more.
    pub fn check(&self) -> Result<(), String> {
        let ok = |v: f64| v.is_finite() && v > 0.0;
        if !ok(self.height_mm) {
            return Err(format!("camera height {} mm: must be a positive number", self.height_mm));
        }
        if !(self.tilt_deg.is_finite() && self.tilt_deg.abs() < 80.0) {
            return Err(format!("tilt {}°: must be within ±80° (beyond it the table is seen edge-on)", self.tilt_deg));
        }
        if !ok(self.focal_px) {
            return Err(format!("focal length {} px: must be a positive number", self.focal_px));
        }
        if self.width < 16 || self.height < 16 {
            return Err(format!("image {}x{}: must be at least 16x16", self.width, self.height));
        }
        Ok(())
    }

    /// The camera model: looking at the robot origin on the table z = 0.
    pub fn model(&self) -> CameraModel {
        let down = Matrix3::new(1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0);
        let tilt = Rotation3::from_axis_angle(&Vector3::x_axis(), self.tilt_deg.to_radians());
        let rotation = Rotation3::from_matrix_unchecked(tilt.matrix() * down);
        let translation = Vector3::new(0.0, -self.height_mm * self.tilt_deg.to_radians().tan(), self.height_mm);
        let (cx, cy) = (self.width as f64 / 2.0 - 0.5, self.height as f64 / 2.0 - 0.5);
        CameraModel {
            intrinsics: Intrinsics::pinhole(self.focal_px, self.focal_px, cx, cy),
            pose: CameraPose { rotation, translation },
            table_z: 0.0,
        }
    }

    /// The calibration file of this camera.
    pub fn calibration(&self) -> grasp_calib::CalibrationFile {
        let rig = format!(
            "grasp-train synth: camera {} mm above the table, tilted {}°, focal {} px",
            self.height_mm, self.tilt_deg, self.focal_px
        );
        grasp_calib::CalibrationFile::from_model(
            &self.model(),
            self.width as u32,
            self.height as u32,
            &rig,
            "synthetic",
            None,
        )
    }
}

/// The top-down scene the camera looks at: heights (mm), colours, mask, table colour.
struct Texture {
    n: usize,
    mm_per_texel: f64,
    height_mm: Vec<f32>,
    rgb: Vec<u8>,
    mask: Vec<u8>,
    table: [u8; 3],
    max_height_mm: f64,
    /// Table-plane box around everything above the table: (min x, min y, max x, max y), mm.
    objects_mm: [f64; 4],
}

impl Texture {
    /// Texel of table point (x, y), if inside the scene square.
    fn texel(&self, x: f64, y: f64) -> Option<usize> {
        let h = self.n as f64 / 2.0;
        let (i, j) = (x / self.mm_per_texel + h, -y / self.mm_per_texel + h);
        (i >= 0.0 && j >= 0.0 && i < self.n as f64 && j < self.n as f64).then(|| j as usize * self.n + i as usize)
    }

    fn height(&self, x: f64, y: f64) -> f64 {
        self.texel(x, y).map_or(0.0, |t| self.height_mm[t] as f64)
    }

    /// Texel pixel (x right, y down, texel i centred at i, as the renderer draws) → table point, mm.
    fn table_point(&self, u: f64, v: f64) -> (f64, f64) {
        let h = self.n as f64 / 2.0;
        ((u + 0.5 - h) * self.mm_per_texel, -(v + 0.5 - h) * self.mm_per_texel)
    }
}

/// Where the ray of pixel (u, v) first meets the scene (objects or table); None if it never
/// meets the table in front of the camera.
fn cast(camera: &CameraModel, tex: &Texture, u: f64, v: f64) -> Option<Vector3<f64>> {
    let o = camera.pose.translation;
    let d = (camera.pose.rotation * camera.intrinsics.ray(u, v)).normalize();
    if d.z >= -1e-9 {
        return None;
    }
    let at = |t: f64| o + d * t;
    let t_top = ((tex.max_height_mm + 1.0 - o.z) / d.z).max(0.0);
    let t_table = -o.z / d.z;
    // Only the part of the ray above the objects' box can meet one (slab clipping): most rays
    // go straight to the table.
    let [x0, y0, x1, y1] = tex.objects_mm;
    let (mut t_in, mut t_out) = (t_top, t_table);
    for (origin, dir, lo, hi) in [(o.x, d.x, x0, x1), (o.y, d.y, y0, y1)] {
        if dir.abs() < 1e-12 {
            if origin < lo || origin > hi {
                return Some(at(t_table));
            }
        } else {
            let (a, b) = ((lo - origin) / dir, (hi - origin) / dir);
            t_in = t_in.max(a.min(b));
            t_out = t_out.min(a.max(b));
        }
    }
    if t_in > t_out {
        return Some(at(t_table));
    }
    let (t_top, t_end) = (t_in, t_out);
    // Steps of half a texel across the table: no object edge is jumped over.
    let horizontal = (d.x * d.x + d.y * d.y).sqrt();
    let steps = (((t_end - t_top) * horizontal / (0.5 * tex.mm_per_texel)).ceil() as usize).clamp(1, 100_000);
    let dt = (t_end - t_top) / steps as f64;
    let below = |t: f64| {
        let p = at(t);
        p.z <= tex.height(p.x, p.y)
    };
    let mut prev = t_top;
    for k in 1..=steps {
        let t = t_top + dt * k as f64;
        if below(t) {
            // Bisect to the surface between the last point above and this one.
            let (mut lo, mut hi) = (prev, t);
            for _ in 0..12 {
                let mid = 0.5 * (lo + hi);
                if below(mid) {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            return Some(at(hi));
        }
        prev = t;
    }
    Some(at(t_table))
}

/// A grasp of the top-down texture (texel pixels) as a rectangle in the camera image, projected
/// at half the object's height; None when a corner falls outside the image or behind the camera.
fn project_grasp(camera: &CameraModel, tex: &Texture, g: &GraspRect, width: usize, height: usize) -> Option<GraspRect> {
    let (x, y) = tex.table_point(g.cx, g.cy);
    let z = 0.5 * tex.height(x, y);
    let inside = |p: &(f64, f64)| p.0 >= 0.0 && p.1 >= 0.0 && p.0 <= width as f64 - 1.0 && p.1 <= height as f64 - 1.0;
    g.mapped(|u, v| {
        let (x, y) = tex.table_point(u, v);
        camera.project(&Point3::new(x, y, z)).filter(inside)
    })
}

/// The top-down scene at [`TEXTURE_SIZE`] and its grasps (texel pixels): one plain object, or a
/// domain-randomised scene ([`crate::randomised`]).
fn texture(seed: u64, index: usize, randomised: bool) -> (Texture, Vec<GraspRect>) {
    let n = TEXTURE_SIZE;
    let (top, background) = if randomised {
        crate::randomised::randomised_top_down(seed, index, n, false)
    } else {
        scene_with_noise(seed, index, n, 0.0)
    };
    let height_mm: Vec<f32> = top.depth.iter().map(|&d| (crate::synth::CAMERA_HEIGHT_M - d) * 1000.0).collect();
    let max_height_mm = height_mm.iter().cloned().fold(0.0f32, f32::max) as f64;
    let mm_per_texel = SCENE_MM / n as f64;
    let mut objects_mm = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    for (i, _) in height_mm.iter().enumerate().filter(|(_, &h)| h > 0.0) {
        // The texel's whole square, one texel of margin.
        let (x, y) = ((i % n) as f64, (i / n) as f64);
        let h = n as f64 / 2.0;
        let (xa, xb) = ((x - 1.0 - h) * mm_per_texel, (x + 2.0 - h) * mm_per_texel);
        let (ya, yb) = (-(y + 2.0 - h) * mm_per_texel, -(y - 1.0 - h) * mm_per_texel);
        objects_mm = [objects_mm[0].min(xa), objects_mm[1].min(ya), objects_mm[2].max(xb), objects_mm[3].max(yb)];
    }
    let table = background.map(|b| (b.clamp(0.0, 1.0) * 255.0).round() as u8);
    let tex = Texture { n, mm_per_texel, height_mm, rgb: top.rgb, mask: top.mask, table, max_height_mm, objects_mm };
    (tex, top.grasps)
}

/// Renders scene `index` of the generator seeded with `seed` through `camera` (a randomised
/// scene when `randomised`).
pub fn posed_scene(seed: u64, index: usize, camera: &SynthCamera, randomised: bool) -> Scene {
    let (tex, top_grasps) = texture(seed, index, randomised);
    let model = camera.model();
    let (w, h) = (camera.width, camera.height);
    let forward = model.pose.rotation * Vector3::z();
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(7) ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let (mut rgb, mut depth, mut mask) = (vec![0u8; w * h * 3], vec![0f32; w * h], vec![0u8; w * h]);
    for v in 0..h {
        for u in 0..w {
            let i = v * w + u;
            let hit = cast(&model, &tex, u as f64, v as f64);
            let (colour, m) = match hit.and_then(|p| tex.texel(p.x, p.y)) {
                Some(t) => ([tex.rgb[t * 3], tex.rgb[t * 3 + 1], tex.rgb[t * 3 + 2]], tex.mask[t]),
                None => (tex.table, 0),
            };
            let noise = rng.gen_range(-NOISE..NOISE) * 255.0;
            for c in 0..3 {
                rgb[i * 3 + c] = (colour[c] as f64 + noise).round().clamp(0.0, 255.0) as u8;
            }
            mask[i] = m;
            // Perfect depth: distance along the optical axis, m (0 where the ray misses the table).
            depth[i] = hit.map_or(0.0, |p| ((p - model.pose.translation).dot(&forward) / 1000.0) as f32);
        }
    }
    let grasps = top_grasps.iter().filter_map(|g| project_grasp(&model, &tex, g, w, h)).collect();
    Scene { width: w, height: h, rgb, depth, mask, grasps }
}

/// Images as a model sees them through a table view: the view's pixels, and the ground truth
/// mapped into it through the table plane (`grasp-train eval --calibration`, the pose table).
pub struct ViewedEval {
    /// The view.
    pub view: TableView,
    /// The camera it warps from.
    pub camera: CameraModel,
    /// Centre of the viewed region, robot x and y, mm.
    pub center_mm: [f64; 2],
}

impl ViewedEval {
    /// The `size`² view at `mm_per_px` of the calibrated camera, centred on `center_mm` or, by
    /// default, on the table point at the image centre.
    pub fn new(
        calib: &grasp_calib::CalibrationFile,
        size: usize,
        mm_per_px: f64,
        center_mm: Option<[f64; 2]>,
    ) -> anyhow::Result<Self> {
        let center_mm = match center_mm {
            Some(c) => c,
            None => calib.image_center_on_table().map_err(|e| {
                anyhow::anyhow!("the image centre does not see the table ({e}); give the view's centre")
            })?,
        };
        let image = (calib.image.width as usize, calib.image.height as usize);
        let camera = calib.model();
        let view = TableView::new(&camera, image, center_mm, size, mm_per_px)?;
        Ok(ViewedEval { view, camera, center_mm })
    }

    /// `sample` as the model sees it through the view (rectangles with a point off the table are
    /// dropped; depth and mask, when present, are sampled at the nearest camera pixel).
    pub fn apply(&self, sample: &Sample) -> anyhow::Result<Sample> {
        let (w, h) = self.view.image_size();
        if (sample.width, sample.height) != (w, h) {
            anyhow::bail!("the image is {}x{} but the calibration is for {w}x{h} images", sample.width, sample.height);
        }
        let mut rgb = Vec::new();
        self.view.warp(&sample.rgb, &mut rgb);
        let to_view = |u: f64, v: f64| {
            let p = self.camera.pixel_to_robot(u, v, None).ok()?;
            Some(self.view.view_pixel(p.x, p.y))
        };
        let rects = sample.rects.iter().filter_map(|r| r.mapped(to_view)).collect();
        let s = self.view.size();
        let nearest = |plane: &Vec<f32>| -> Vec<f32> {
            (0..s * s)
                .map(|i| {
                    let (x, y) = self.view.table_point((i % s) as f64, (i / s) as f64);
                    let p = Point3::new(x, y, self.camera.table_z);
                    match self.camera.project(&p) {
                        Some((u, v)) if u > -0.5 && v > -0.5 && u < w as f64 - 0.5 && v < h as f64 - 0.5 => {
                            plane[v.round() as usize * w + u.round() as usize]
                        }
                        _ => 0.0,
                    }
                })
                .collect()
        };
        let (depth, mask) = (sample.depth.as_ref().map(nearest), sample.mask.as_ref().map(nearest));
        Ok(Sample { width: s, height: s, rgb, rects, depth, mask })
    }
}

/// One camera pose of the pose table: top-1 success (%) with the centre crop and through the
/// table view, on the same scenes.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PoseResult {
    /// The camera.
    pub camera: SynthCamera,
    /// Success with the runtime's centre crop, percent.
    pub center_crop: f64,
    /// Success through the table view at the model's scale, percent.
    pub table_view: f64,
    /// Scenes scored.
    pub scenes: usize,
}

/// The poses of issue 12's proof: heights 350, 600 and 900 mm, tilts 0° and 30°, a 640×480
/// camera with a 450 px focal length.
pub fn standard_poses() -> Vec<SynthCamera> {
    [0.0, 30.0].iter().flat_map(|&t| [350.0, 600.0, 900.0].map(|h| SynthCamera::usb(h, t))).collect()
}

/// Scores a model (top-1, the paper's metric) on `count` scenes of seed `seed` rendered through
/// each camera: `crop` (the model as a centre-crop model) on the camera image, `view` on the
/// table view at `mm_per_px`.
#[allow(clippy::too_many_arguments)]
pub fn pose_table(
    crop: &mut GraspDetector,
    view: &mut GraspDetector,
    size: usize,
    mm_per_px: f64,
    cameras: &[SynthCamera],
    count: usize,
    seed: u64,
    mut progress: impl FnMut(usize),
) -> anyhow::Result<Vec<PoseResult>> {
    let mut out = vec![];
    for (k, camera) in cameras.iter().enumerate() {
        camera.check().map_err(anyhow::Error::msg)?;
        let viewed = ViewedEval::new(&camera.calibration(), size, mm_per_px, None)
            .map_err(|e| anyhow::anyhow!("camera {} mm, tilt {}°: {e}", camera.height_mm, camera.tilt_deg))?;
        let (mut crop_ok, mut view_ok) = (0usize, 0usize);
        for index in 0..count {
            let s = posed_scene(seed, index, camera, false);
            let sample =
                Sample { width: s.width, height: s.height, rgb: s.rgb, rects: s.grasps, depth: None, mask: None };
            let top1 = |detector: &mut GraspDetector, x: &Sample| -> anyhow::Result<bool> {
                let (grasps, _) = detector.detect(&x.rgb, x.width, x.height, 1)?;
                Ok(grasps.first().is_some_and(|g| grasp_succeeds(g, &x.rects, IouMode::Exact)))
            };
            crop_ok += top1(crop, &sample)? as usize;
            view_ok += top1(view, &viewed.apply(&sample)?)? as usize;
            progress(k * count + index + 1);
        }
        let pct = |n: usize| 100.0 * n as f64 / count.max(1) as f64;
        out.push(PoseResult { camera: *camera, center_crop: pct(crop_ok), table_view: pct(view_ok), scenes: count });
    }
    Ok(out)
}

/// The pose table as markdown.
pub fn pose_table_markdown(rows: &[PoseResult], mm_per_px: f64) -> String {
    let mut s = format!(
        "| camera height | tilt | centre crop | table view ({mm_per_px:.3} mm/px) | scenes |\n|---|---|---|---|---|\n"
    );
    for r in rows {
        s += &format!(
            "| {} mm | {}° | {:.1} % | {:.1} % | {} |\n",
            r.camera.height_mm, r.camera.tilt_deg, r.center_crop, r.table_view, r.scenes
        );
    }
    let spread = |f: fn(&PoseResult) -> f64| {
        let v: Vec<f64> = rows.iter().map(f).collect();
        v.iter().cloned().fold(f64::MIN, f64::max) - v.iter().cloned().fold(f64::MAX, f64::min)
    };
    s += &format!(
        "| **spread** (max − min) | | {:.1} points | {:.1} points | |\n",
        spread(|r| r.center_crop),
        spread(|r| r.table_view)
    );
    s
}

/// The range of camera heights (mm) and tilts (degrees) of a table-view training set: the
/// cameras of the pose table and a margin.
pub const TRAINING_HEIGHTS_MM: std::ops::Range<f64> = 300.0..950.0;
/// See [`TRAINING_HEIGHTS_MM`].
pub const TRAINING_TILTS_DEG: std::ops::Range<f64> = 0.0..35.0;

/// Scene `index` seen by a random camera (height and tilt drawn from [`TRAINING_HEIGHTS_MM`] and
/// [`TRAINING_TILTS_DEG`]) and warped into its `size`² table view at `mm_per_px`: what the
/// runtime shows a table-view model, with the perspective of real rigs (sides of tall objects,
/// parallax: the top of an object h mm high looks H/(H − h) times larger than the table under a
/// camera H mm up), at one scale. Returns the camera too.
pub fn table_view_scene(seed: u64, index: usize, size: usize, mm_per_px: f64) -> anyhow::Result<(Scene, SynthCamera)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(13) ^ (index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let camera = SynthCamera::usb(rng.gen_range(TRAINING_HEIGHTS_MM), rng.gen_range(TRAINING_TILTS_DEG));
    let s = posed_scene(seed, index, &camera, false);
    let sample = Sample {
        width: s.width,
        height: s.height,
        rgb: s.rgb,
        rects: s.grasps,
        depth: Some(s.depth),
        mask: Some(s.mask.iter().map(|&m| (m > 0) as u8 as f32).collect()),
    };
    let viewed = ViewedEval::new(&camera.calibration(), size, mm_per_px, None)
        .and_then(|v| v.apply(&sample))
        .map_err(|e| anyhow::anyhow!("scene {index} seen from {camera:?}: {e}"))?;
    let scene = Scene {
        width: size,
        height: size,
        rgb: viewed.rgb,
        depth: viewed.depth.unwrap_or_default(),
        mask: viewed.mask.unwrap_or_default().iter().map(|&m| if m > 0.5 { 255 } else { 0 }).collect(),
        grasps: viewed.rects,
    };
    Ok((scene, camera))
}

/// Writes `count` table views ([`table_view_scene`]) under `out` in the Jacquard layout, with
/// `synth.toml` recording their scale.
pub fn write_table_view_dataset(
    out: &std::path::Path,
    count: usize,
    seed: u64,
    size: usize,
    mm_per_px: f64,
    progress: impl FnMut(usize),
) -> Result<(), crate::dataset::DatasetError> {
    let invalid = |message: String| crate::dataset::DatasetError::Invalid { path: out.into(), message };
    // Every camera of the range must see the whole region: check the worst (lowest, most tilted).
    let worst = SynthCamera::usb(TRAINING_HEIGHTS_MM.start, TRAINING_TILTS_DEG.end);
    ViewedEval::new(&worst.calibration(), size, mm_per_px, None)
        .map_err(|e| invalid(format!("{size} px at {mm_per_px} mm/px is more than a camera {worst:?} sees: {e}")))?;
    let scene =
        |index| table_view_scene(seed, index, size, mm_per_px).map(|(s, _)| s).map_err(|e| invalid(e.to_string()));
    crate::synth::write_scenes(out, count, seed, scene, progress)?;
    let info = crate::synth::SynthInfo {
        count,
        seed,
        kind: crate::synth::SynthKind::TableView,
        size,
        mm_per_px: Some(mm_per_px),
        camera: None,
        randomised: false,
    };
    info.write(out)
}

/// The name of the calibration file a posed set carries.
pub const CALIBRATION_FILE: &str = "calibration.toml";

/// Writes `count` scenes (randomised ones when `randomised`) seen through `camera` under `out` in
/// the Jacquard layout, with the camera's `calibration.toml` and `synth.toml`.
pub fn write_posed_dataset(
    out: &std::path::Path,
    count: usize,
    seed: u64,
    camera: &SynthCamera,
    randomised: bool,
    progress: impl FnMut(usize),
) -> Result<(), crate::dataset::DatasetError> {
    camera.check().map_err(|message| crate::dataset::DatasetError::Invalid { path: out.into(), message })?;
    crate::synth::write_scenes(out, count, seed, |index| Ok(posed_scene(seed, index, camera, randomised)), progress)?;
    let path = out.join(CALIBRATION_FILE);
    std::fs::write(&path, camera.calibration().to_toml())
        .map_err(|source| crate::dataset::DatasetError::Io { path: path.clone(), source })?;
    let info = crate::synth::SynthInfo {
        count,
        seed,
        kind: crate::synth::SynthKind::Posed,
        size: camera.width.max(camera.height),
        mm_per_px: None,
        camera: Some(*camera),
        randomised,
    };
    info.write(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_camera_looks_at_the_origin_from_its_height_and_tilt() {
        for (height, tilt) in [(350.0, 0.0), (600.0, 30.0), (900.0, 30.0)] {
            let cam = SynthCamera::usb(height, tilt);
            let m = cam.model();
            let (u, v) = m.project(&Point3::origin()).unwrap();
            assert!((u - 319.5).abs() < 1e-9 && (v - 239.5).abs() < 1e-9, "origin at the image centre");
            assert!((m.pose.translation.z - height).abs() < 1e-9);
            // A point further along +y (away from the camera) is higher in the image.
            let (_, v_far) = m.project(&Point3::new(0.0, 50.0, 0.0)).unwrap();
            assert!(v_far < v);
            let back = cam.calibration().model();
            assert_eq!(back.pose.translation, m.pose.translation);
            cam.calibration().validate().unwrap();
        }
        assert!(SynthCamera::usb(-1.0, 0.0).check().is_err());
        assert!(SynthCamera::usb(600.0, 85.0).check().is_err());
        assert!(SynthCamera::usb(600.0, 30.0).check().is_ok());
    }

    /// The object appears where the camera model says: every object pixel, back-projected with
    /// its rendered depth through the calibration, lands on the object in the top-down scene and
    /// no higher than its surface; looking straight down, the mask's centroid lands on the
    /// object's centroid, and the pixel area scales with 1/height².
    #[test]
    fn renders_agree_with_the_calibration_at_every_pose() {
        let (tex, _) = texture(5, 2, false);
        let centroid = |mask: &[u8], w: usize| {
            let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
            for (i, &m) in mask.iter().enumerate() {
                if m > 0 {
                    sx += (i % w) as f64;
                    sy += (i / w) as f64;
                    n += 1.0;
                }
            }
            (sx / n, sy / n, n)
        };
        let (tu, tv, _) = centroid(&tex.mask, tex.n);
        let (tx, ty) = tex.table_point(tu, tv);
        let tops: Vec<f64> = tex.height_mm.iter().filter(|&&h| h > 0.0).map(|&h| h as f64).collect();
        let mean_top = tops.iter().sum::<f64>() / tops.len() as f64;
        let mut areas = vec![];
        for (height, tilt) in [(350.0, 0.0), (600.0, 0.0), (900.0, 0.0), (600.0, 30.0)] {
            let cam = SynthCamera::usb(height, tilt);
            let s = posed_scene(5, 2, &cam, false);
            let (u, v, n) = centroid(&s.mask, s.width);
            let model = cam.model();
            let forward = model.pose.rotation * Vector3::z();
            let (mut on_object, mut total) = (0usize, 0usize);
            for (i, &m) in s.mask.iter().enumerate() {
                if m == 0 {
                    continue;
                }
                total += 1;
                let d = model.pose.rotation * model.intrinsics.ray((i % s.width) as f64, (i / s.width) as f64);
                let p = model.pose.translation + d * (s.depth[i] as f64 * 1000.0 / d.dot(&forward));
                let inside = tex.texel(p.x, p.y).is_some_and(|t| tex.mask[t] == 255);
                on_object += (inside && p.z <= tex.height(p.x, p.y) + 0.5) as usize;
            }
            assert!(
                on_object as f64 >= 0.99 * total as f64,
                "{height} mm {tilt}°: {on_object} of {total} on the object"
            );
            if tilt == 0.0 {
                // Looking straight down the camera sees the top: back-project the centroid onto
                // the plane at the tops' mean height.
                let p = model.pixel_to_robot(u, v, Some(mean_top)).unwrap();
                let err = (p.x - tx).hypot(p.y - ty);
                assert!(err < 8.0, "{height} mm: centroid ({:.1}, {:.1}) vs ({tx:.1}, {ty:.1}): {err:.1} mm", p.x, p.y);
                areas.push((height, n));
            }
            // Every grasp centre lies on the object.
            for g in &s.grasps {
                let (x, y) = (g.cx.round() as usize, g.cy.round() as usize);
                assert_eq!(s.mask[y * s.width + x], 255, "{height} {tilt}: grasp centre off the object");
            }
            assert!(!s.grasps.is_empty());
            // Depth along the axis: about the height at the image centre (the table there).
            let d = s.depth[(s.height / 2) * s.width + s.width / 2] as f64 * 1000.0;
            assert!(d <= height / tilt.to_radians().cos() + 1.0, "{height} {tilt}: depth {d}");
        }
        // Pixel area ∝ 1/H² (to within the objects' own height).
        let (a350, a900) = (areas[0].1, areas[2].1);
        let ratio = a350 / a900;
        assert!(ratio > (900.0f64 / 350.0).powi(2) * 0.95 && ratio < (900.0f64 / 350.0).powi(2) * 1.35, "{ratio}");
    }

    /// A table-view training scene has the view's size, its grasps lie on the object, and the
    /// written set records its scale and kind (the view's own scale is tested in grasp-calib).
    #[test]
    fn table_view_scenes_are_at_the_declared_scale() {
        let (s, camera) = table_view_scene(4, 6, 160, 1.5).unwrap();
        assert!(TRAINING_HEIGHTS_MM.contains(&camera.height_mm) && TRAINING_TILTS_DEG.contains(&camera.tilt_deg));
        assert_eq!((s.width, s.height, s.rgb.len(), s.depth.len()), (160, 160, 160 * 160 * 3, 160 * 160));
        assert!(!s.grasps.is_empty());
        for g in &s.grasps {
            let (x, y) = (g.cx.round() as usize, g.cy.round() as usize);
            assert_eq!(s.mask[y * 160 + x], 255, "grasp centre off the object");
        }
        let d = tempfile::tempdir().unwrap();
        write_table_view_dataset(d.path(), 2, 4, 96, 2.0, |_| {}).unwrap();
        let info = crate::synth::SynthInfo::read(d.path()).unwrap().unwrap();
        assert_eq!((info.kind, info.size, info.mm_per_px), (crate::synth::SynthKind::TableView, 96, Some(2.0)));
        // A region no camera of the range sees whole is refused before anything is written.
        let e = write_table_view_dataset(&d.path().join("big"), 2, 4, 300, 3.0, |_| {}).unwrap_err();
        assert!(e.to_string().contains("300 px at 3 mm/px"), "{e}");
    }

    #[test]
    fn randomised_scenes_seen_through_a_tilted_camera_keep_their_grasps_on_objects() {
        let cam = SynthCamera::usb(450.0, 25.0);
        let mut total = 0;
        for index in 0..4 {
            let s = posed_scene(9, index, &cam, true);
            assert_eq!((s.width, s.height), (cam.width, cam.height));
            total += s.grasps.len();
            for g in &s.grasps {
                let (dx, dy) = (g.angle.cos(), -g.angle.sin());
                let on_object = (0..=20).any(|k| {
                    let t = -g.length / 2.0 + g.length * k as f64 / 20.0;
                    let (x, y) = ((g.cx + t * dx).round(), (g.cy + t * dy).round());
                    x >= 0.0
                        && y >= 0.0
                        && (x as usize) < s.width
                        && (y as usize) < s.height
                        && s.mask[y as usize * s.width + x as usize] > 0
                });
                assert!(on_object, "scene {index}: {g:?} closes on nothing");
            }
        }
        assert!(total >= 8, "{total} grasps in 4 scenes");
    }
}
