//! A synthetic scene generator that writes the Jacquard layout, so the Jacquard loader reads it.
//!
//! One object per image (as Jacquard) on a plain background: boxes and ellipsoids of varied size,
//! colour and texture; the RGB shading follows the height map (Lambertian light from the upper
//! left), so colour carries depth cues as in Jacquard's renders; perfect depth (metres from a camera
//! 1 m above the table), the object mask, and antipodal grasps derived from the geometry: the
//! gripper closes across a pair of parallel (box) or symmetric (ellipse) faces, the jaws start
//! outside the object, and the opening stays within the gripper limit; several positions per
//! object, each rectangle's jaw half its opening (the metric's convention for a predicted grasp). Each object is rendered in two views (other pose, same shape), so object-wise
//! splits are meaningful. Deterministic by seed.

use crate::dataset::DatasetError;
use grasp_models::metric::GraspRect;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::f64::consts::PI;
use std::path::Path;

/// Height of the synthetic camera above the table, m.
pub const CAMERA_HEIGHT_M: f32 = 1.0;
/// Side of the table square one scene covers, mm: a top-down scene of `size` pixels has
/// `SCENE_MM / size` mm per pixel (objects are sized relative to the scene).
pub const SCENE_MM: f64 = 300.0;
/// Sensor noise amplitude, as a fraction of full scale.
pub const NOISE: f64 = 0.02;
/// Views rendered per object.
pub const VIEWS_PER_OBJECT: usize = 2;

#[derive(Debug, Clone, Copy)]
enum Shape {
    /// Half sides along its own axes.
    Box { a: f64, b: f64 },
    /// Semi-axes.
    Ellipse { a: f64, b: f64 },
}

#[derive(Debug, Clone, Copy)]
struct Object {
    shape: Shape,
    height_m: f64,
    albedo: [f64; 3],
    /// Stripe period in pixels (0: plain).
    stripes: f64,
}

/// One rendered scene.
pub struct Scene {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Packed RGB8.
    pub rgb: Vec<u8>,
    /// Perfect depth, m from the camera.
    pub depth: Vec<f32>,
    /// Object mask (255 on objects).
    pub mask: Vec<u8>,
    /// Antipodal grasps.
    pub grasps: Vec<GraspRect>,
}

fn random_object(rng: &mut ChaCha8Rng, size: f64) -> Object {
    let long = rng.gen_range(0.12..0.24) * size;
    let short = rng.gen_range(0.04..0.10) * size;
    let shape = if rng.gen_bool(0.5) {
        Shape::Box { a: long, b: short }
    } else {
        Shape::Ellipse { a: long, b: short.max(0.05 * size) }
    };
    let albedo = random_albedo(rng, 0.55..0.95);
    Object {
        shape,
        height_m: rng.gen_range(0.02..0.10),
        albedo,
        stripes: if rng.gen_bool(0.4) { rng.gen_range(6.0..16.0) } else { 0.0 },
    }
}

/// A saturated random colour (linear RGB): a random hue sector, its main channel in `bright`.
pub(crate) fn random_albedo(rng: &mut ChaCha8Rng, bright: std::ops::Range<f64>) -> [f64; 3] {
    let hue = rng.gen_range(0.0..6.0);
    let (c, x) = (rng.gen_range(bright), rng.gen_range(0.05..0.5));
    let sector = [[c, x, 0.1], [x, c, 0.1], [0.1, c, x], [0.1, x, c], [x, 0.1, c], [c, 0.1, x]];
    sector[hue as usize % 6]
}

/// Lambertian shading (0.35–1) of pixel (x, y) of an `n × n` height map (m), lit from the upper
/// left: colour carries the objects' shape, as in Jacquard's renders.
pub(crate) fn shade(height: &[f64], n: usize, x: usize, y: usize) -> f64 {
    const LIGHT: [f64; 3] = [-0.45, -0.55, 0.70];
    let norm = (LIGHT[0] * LIGHT[0] + LIGHT[1] * LIGHT[1] + LIGHT[2] * LIGHT[2]).sqrt();
    let light = LIGHT.map(|l| l / norm);
    // Height gradient gain: metres → a slope comparable to pixels.
    let gain = 400.0;
    let h = |xx: usize, yy: usize| height[yy.min(n - 1) * n + xx.min(n - 1)];
    let gx = (h(x + 1, y) - h(x.saturating_sub(1), y)) * gain / 2.0;
    let gy = (h(x, y + 1) - h(x, y.saturating_sub(1))) * gain / 2.0;
    let norm = (gx * gx + gy * gy + 1.0).sqrt();
    0.35 + 0.65 * ((-gx * light[0] - gy * light[1] + light[2]) / norm).max(0.0)
}

/// Height (m) of the object at local coordinates (along its axis u, across v); None outside.
fn height_at(o: &Object, u: f64, v: f64) -> Option<f64> {
    match o.shape {
        Shape::Box { a, b } => {
            let (du, dv) = (a - u.abs(), b - v.abs());
            if du < 0.0 || dv < 0.0 {
                return None;
            }
            // A 2 px bevel so the edges shade.
            Some(o.height_m * (du.min(dv) / 2.0).clamp(0.6, 1.0))
        }
        Shape::Ellipse { a, b } => {
            let r2 = (u / a).powi(2) + (v / b).powi(2);
            (r2 <= 1.0).then(|| o.height_m * (1.0 - r2).sqrt().max(0.15))
        }
    }
}

/// Antipodal grasps in local coordinates: (centre u, centre v, opening direction angle relative to
/// the object's axis, opening, jaw).
///
/// The jaw is half the opening: the rectangle a predicted grasp stands for in the metric
/// ([`GraspRect::from_grasp`]), as Cornell's annotators drew them. (Narrow jaws on wide
/// openings, as before, make a correct wide grasp fail the IoU test: its predicted rectangle is
/// opening × opening/2.) Grasps across the long side come first, so where rectangles overlap the
/// ground truth keeps the narrower, steadier grasp across the short side (later ones win).
fn local_grasps(o: &Object, max_opening: f64) -> Vec<(f64, f64, f64, f64, f64)> {
    let margin = |w: f64| w * 0.15 + 6.0;
    let mut out = vec![];
    let (a, b) = match o.shape {
        Shape::Box { a, b } | Shape::Ellipse { a, b } => (a, b),
    };
    // Across the long side (closing along u), through the middle, when the gripper is wide enough.
    let opening = 2.0 * a + margin(2.0 * a);
    if opening <= max_opening {
        for t in [-0.4, 0.0, 0.4] {
            out.push((0.0, t * b, 0.0, opening, opening / 2.0));
        }
    }
    // Across the short side (closing along v), at several positions along u.
    for t in [-0.5, -0.25, 0.0, 0.25, 0.5] {
        let u = t * a;
        let half = match o.shape {
            Shape::Box { .. } => b,
            Shape::Ellipse { .. } => b * (1.0 - (u / a).powi(2)).sqrt(),
        };
        let opening = 2.0 * half + margin(2.0 * half);
        if opening <= max_opening {
            out.push((u, 0.0, PI / 2.0, opening, opening / 2.0));
        }
    }
    out
}

/// Renders one view of `o` at centre (cx, cy) rotated by `phi` (counter-clockwise on screen),
/// with sensor noise of amplitude `noise`.
#[allow(clippy::too_many_arguments)]
fn render(
    o: &Object,
    size: usize,
    cx: f64,
    cy: f64,
    phi: f64,
    background: [f64; 3],
    noise: f64,
    rng: &mut ChaCha8Rng,
) -> Scene {
    let n = size;
    let (s, c) = phi.sin_cos();
    // Object axis u = (cos φ, −sin φ) in pixels; v = (sin φ, cos φ) is its perpendicular.
    let local = |x: f64, y: f64| {
        let (dx, dy) = (x - cx, y - cy);
        (dx * c - dy * s, dx * s + dy * c)
    };
    let mut height = vec![0.0f64; n * n];
    for y in 0..n {
        for x in 0..n {
            let (u, v) = local(x as f64, y as f64);
            height[y * n + x] = height_at(o, u, v).unwrap_or(0.0);
        }
    }
    let mut rgb = vec![0u8; n * n * 3];
    let mut mask = vec![0u8; n * n];
    let mut depth = vec![0f32; n * n];
    for y in 0..n {
        for x in 0..n {
            let i = y * n + x;
            let h = |xx: usize, yy: usize| height[yy.min(n - 1) * n + xx.min(n - 1)];
            let shade = shade(&height, n, x, y);
            let inside = height[i] > 0.0;
            let noise = if noise > 0.0 { rng.gen_range(-noise..noise) } else { 0.0 };
            let colour = if inside {
                let (u, _) = local(x as f64, y as f64);
                let stripe = if o.stripes > 0.0 && (u / o.stripes).rem_euclid(2.0) < 1.0 { 0.8 } else { 1.0 };
                o.albedo.map(|a| a * stripe * shade)
            } else {
                // A soft contact shadow next to the object on the side away from the light.
                let near = (1..6).any(|k| h(x.saturating_sub(k), y.saturating_sub(k)) > 0.0);
                background.map(|b| if near { b * 0.8 } else { b })
            };
            for ch in 0..3 {
                rgb[i * 3 + ch] = ((colour[ch] + noise).clamp(0.0, 1.0) * 255.0).round() as u8;
            }
            mask[i] = if inside { 255 } else { 0 };
            depth[i] = CAMERA_HEIGHT_M - height[i] as f32;
        }
    }
    let max_opening = 0.5 * size as f64;
    let grasps = local_grasps(o, max_opening)
        .into_iter()
        .map(|(u, v, rel, opening, jaw)| {
            // Local (u, v) back to pixels: p = c + u·(cos φ, −sin φ) + v·(sin φ, cos φ).
            let (x, y) = (cx + u * c + v * s, cy - u * s + v * c);
            let angle = grasp_models::decode::wrap_half_turn((phi + rel) as f32) as f64;
            GraspRect { cx: x, cy: y, angle, length: opening, jaw }
        })
        .collect();
    Scene { width: size, height: size, rgb, depth, mask, grasps }
}

/// Renders scene `index` of a generator seeded with `seed` (views of one object share its shape).
pub fn scene(seed: u64, index: usize, size: usize) -> Scene {
    scene_with_noise(seed, index, size, NOISE).0
}

/// [`scene`] with sensor noise `noise`, and the table's colour (linear, 0–1).
pub fn scene_with_noise(seed: u64, index: usize, size: usize, noise: f64) -> (Scene, [f64; 3]) {
    let object_index = index / VIEWS_PER_OBJECT;
    let mut obj_rng = ChaCha8Rng::seed_from_u64(seed ^ (object_index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let sz = size as f64;
    let object = random_object(&mut obj_rng, sz);
    let grey = obj_rng.gen_range(0.75..0.95);
    let background = [grey, grey * obj_rng.gen_range(0.95..1.0), grey * obj_rng.gen_range(0.93..1.0)];
    let mut view_rng =
        ChaCha8Rng::seed_from_u64(seed.wrapping_add(1) ^ (index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let cx = sz / 2.0 + view_rng.gen_range(-0.12..0.12) * sz;
    let cy = sz / 2.0 + view_rng.gen_range(-0.12..0.12) * sz;
    let phi = view_rng.gen_range(-PI..PI);
    (render(&object, size, cx, cy, phi, background, noise, &mut view_rng), background)
}

fn write_err(path: &Path, e: impl std::fmt::Display) -> DatasetError {
    DatasetError::Invalid { path: path.into(), message: format!("cannot write: {e}") }
}

/// Writes `count` top-down scenes of `size`² pixels under `out` in the Jacquard layout
/// (`<object>/<view>_<object>_RGB.png` …) and `synth.toml`, which records their scale.
pub fn write_dataset(
    out: &Path,
    count: usize,
    seed: u64,
    size: usize,
    progress: impl FnMut(usize),
) -> Result<(), DatasetError> {
    write_scenes(out, count, seed, |index| Ok(scene(seed, index, size)), progress)?;
    let info = SynthInfo {
        count,
        seed,
        kind: SynthKind::TopDown,
        size,
        mm_per_px: Some(SCENE_MM / size as f64),
        camera: None,
        randomised: false,
    };
    info.write(out)
}

/// How a synthetic set was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SynthKind {
    /// Straight from above, orthographic, `size`² pixels of [`SCENE_MM`].
    TopDown,
    /// Through one posed camera (`calibration.toml` beside).
    Posed,
    /// Through random posed cameras, warped into the table view at one scale.
    TableView,
}

/// What `synth.toml` records about a generated set.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthInfo {
    /// Scenes written.
    pub count: usize,
    /// Generator seed.
    pub seed: u64,
    /// How the scenes were seen.
    pub kind: SynthKind,
    /// Image side (the larger one for a posed camera), pixels.
    pub size: usize,
    /// Table millimetres per image pixel, for top-down sets (a posed camera has no one scale).
    pub mm_per_px: Option<f64>,
    /// The camera of a posed set (its calibration is `calibration.toml` beside).
    pub camera: Option<crate::posed::SynthCamera>,
    /// Domain-randomised scenes ([`crate::randomised`]): 1–5 objects of nine families, random
    /// textures and artefacts (sets written before it existed: one plain object).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub randomised: bool,
}

/// The file name of [`SynthInfo`] in a generated set.
pub const INFO_FILE: &str = "synth.toml";

impl SynthInfo {
    /// Writes `<dir>/synth.toml`.
    pub fn write(&self, dir: &Path) -> Result<(), DatasetError> {
        let path = dir.join(INFO_FILE);
        let text = toml::to_string(self).map_err(|e| write_err(&path, e))?;
        std::fs::write(&path, format!("# written by grasp-train synth\n{text}")).map_err(|e| write_err(&path, e))
    }

    /// Reads `<dir>/synth.toml`; `None` when the set has none (not generated, or older).
    pub fn read(dir: &Path) -> Result<Option<Self>, DatasetError> {
        let path = dir.join(INFO_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).map(Some).map_err(|e| DatasetError::Invalid { path, message: e.to_string() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(DatasetError::Io { path, source }),
        }
    }
}

/// Writes scenes `0..count` made by `render` in the Jacquard layout.
/// Scenes are independent (each seeds its own generator), so every core renders and writes its
/// share; the output does not depend on the number of threads.
pub(crate) fn write_scenes(
    out: &Path,
    count: usize,
    seed: u64,
    render: impl Fn(usize) -> Result<Scene, DatasetError> + Sync,
    mut progress: impl FnMut(usize),
) -> Result<(), DatasetError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(count.max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<Result<(), DatasetError>>();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let done_tx = done_tx.clone();
            let (next, failed, render) = (&next, &failed, &render);
            scope.spawn(move || loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= count || failed.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let r = render(index).and_then(|s| write_scene(out, seed, index, s));
                if r.is_err() {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                if done_tx.send(r).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);
        let mut written = 0;
        for r in done_rx {
            r?;
            written += 1;
            progress(written);
        }
        Ok(())
    })
}

/// Writes scene `index` in the Jacquard layout.
fn write_scene(out: &Path, seed: u64, index: usize, s: Scene) -> Result<(), DatasetError> {
    let object = format!("synth{seed}o{:06}", index / VIEWS_PER_OBJECT);
    let dir = out.join(&object);
    std::fs::create_dir_all(&dir).map_err(|e| write_err(&dir, e))?;
    let stem = dir.join(format!("{}_{object}", index % VIEWS_PER_OBJECT));
    let p = |suffix: &str| stem.with_file_name(format!("{}{suffix}", stem.file_name().unwrap().to_string_lossy()));
    let (w, h) = (s.width as u32, s.height as u32);
    let rgb_path = p("_RGB.png");
    image::RgbImage::from_raw(w, h, s.rgb)
        .expect("buffer size")
        .save(&rgb_path)
        .map_err(|e| write_err(&rgb_path, e))?;
    let mask_path = p("_mask.png");
    image::GrayImage::from_raw(w, h, s.mask)
        .expect("buffer size")
        .save(&mask_path)
        .map_err(|e| write_err(&mask_path, e))?;
    let depth_path = p("_perfect_depth.tiff");
    let file = std::fs::File::create(&depth_path).map_err(|e| write_err(&depth_path, e))?;
    let mut enc = tiff::encoder::TiffEncoder::new(std::io::BufWriter::new(file))
        .map_err(|e| write_err(&depth_path, e))?
        .with_compression(tiff::encoder::Compression::Lzw);
    enc.write_image::<tiff::encoder::colortype::Gray32Float>(w, h, &s.depth).map_err(|e| write_err(&depth_path, e))?;
    let grasps_path = p("_grasps.txt");
    let text: String = s
        .grasps
        .iter()
        .map(|g| format!("{:.2};{:.2};{:.3};{:.2};{:.2}\n", g.cx, g.cy, -g.angle.to_degrees(), g.length, g.jaw))
        .collect();
    std::fs::write(&grasps_path, text).map_err(|e| write_err(&grasps_path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{load, scan, DatasetKind, DatasetSpec};

    #[test]
    fn scenes_are_deterministic_and_grasps_are_antipodal() {
        let a = scene(7, 3, 96);
        let b = scene(7, 3, 96);
        assert_eq!(a.rgb, b.rgb);
        assert_ne!(a.rgb, scene(8, 3, 96).rgb);
        for i in 0..40 {
            let s = scene(1, i, 128);
            assert!(!s.grasps.is_empty(), "scene {i} has no grasp");
            for g in &s.grasps {
                assert!(g.length <= 64.0 + 1e-9, "opening within the gripper limit");
                // Both jaw ends (the middle of the two short edges) lie on the table, outside the
                // object; the centre lies on the object.
                let mid = |k: f64| {
                    let (ux, uy) = (g.angle.cos(), -g.angle.sin());
                    (
                        (g.cx + k * ux * g.length / 2.0).round() as usize,
                        (g.cy + k * uy * g.length / 2.0).round() as usize,
                    )
                };
                for k in [-1.0, 1.0] {
                    let (x, y) = mid(k);
                    if x < 128 && y < 128 {
                        assert_eq!(s.mask[y * 128 + x], 0, "scene {i}: jaw end inside the object");
                    }
                }
                let (x, y) = (g.cx.round() as usize, g.cy.round() as usize);
                assert_eq!(s.mask[y * 128 + x], 255, "scene {i}: grasp centre off the object");
            }
            // Depth: table at the camera height, object closer.
            let min = s.depth.iter().cloned().fold(f32::MAX, f32::min);
            assert!(min < CAMERA_HEIGHT_M - 0.01 && s.depth.iter().all(|&d| d <= CAMERA_HEIGHT_M));
        }
    }

    #[test]
    fn written_dataset_loads_back_through_the_jacquard_loader() {
        let d = tempfile::tempdir().unwrap();
        write_dataset(d.path(), 4, 3, 64, |_| {}).unwrap();
        let refs = scan(&DatasetSpec { kind: DatasetKind::Jacquard, path: d.path().into() }).unwrap();
        assert_eq!(refs.len(), 4);
        let info = SynthInfo::read(d.path()).unwrap().unwrap();
        assert_eq!((info.kind, info.count, info.size, info.mm_per_px), (SynthKind::TopDown, 4, 64, Some(300.0 / 64.0)));
        assert!(SynthInfo::read(&d.path().join("nowhere")).unwrap().is_none());
        std::fs::write(d.path().join(INFO_FILE), "count = 'four'").unwrap();
        let e = SynthInfo::read(d.path()).unwrap_err().to_string();
        assert!(e.contains("synth.toml") && e.contains("count"), "{e}");
        assert_eq!(refs[0].object_id, refs[1].object_id, "two views per object");
        assert_ne!(refs[0].object_id, refs[2].object_id);
        let original = scene(3, 0, 64);
        let s = load(&refs[0]).unwrap();
        assert_eq!(s.rgb, original.rgb);
        assert_eq!(s.depth.as_ref().unwrap(), &original.depth);
        assert_eq!(s.rects.len(), original.grasps.len());
        for (r, g) in s.rects.iter().zip(&original.grasps) {
            assert!((r.cx - g.cx).abs() < 0.01 && (r.length - g.length).abs() < 0.01);
            assert!(grasp_models::metric::angle_difference(r.angle, g.angle) < 1e-4);
        }
    }
}
