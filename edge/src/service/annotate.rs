//! Annotated frames: the chosen grasp and the other candidates drawn on the frame, with the
//! model's Q map beside it.

use grasp_models::{Grasp, GraspMaps};
use std::path::Path;

/// Writes the frame with the chosen grasp (green; other candidates yellow) and, to its right, the
/// model's Q map as a heat-map scaled to the frame height.
pub fn write_annotated(
    path: &Path,
    rgb: &[u8],
    width: usize,
    height: usize,
    grasps: &[Grasp],
    chosen: Option<usize>,
    maps: &GraspMaps,
) -> Result<(), image::ImageError> {
    let n = maps.size;
    let mut canvas = image::RgbImage::new((width + height) as u32, height as u32);
    let frame =
        image::RgbImage::from_raw(width as u32, height as u32, rgb.to_vec()).expect("frame buffer matches its size");
    image::imageops::replace(&mut canvas, &frame, 0, 0);
    for (i, g) in grasps.iter().enumerate().rev() {
        let colour = if Some(i) == chosen { image::Rgb([0, 255, 0]) } else { image::Rgb([255, 220, 0]) };
        let (dx, dy) = (g.angle.cos() * g.width / 2.0, -g.angle.sin() * g.width / 2.0);
        imageproc::drawing::draw_line_segment_mut(&mut canvas, (g.x - dx, g.y - dy), (g.x + dx, g.y + dy), colour);
        // Jaws: short bars across the opening at both ends.
        let (jx, jy) = (-dy * 0.3, dx * 0.3);
        for s in [-1.0f32, 1.0] {
            let (ex, ey) = (g.x + s * dx, g.y + s * dy);
            imageproc::drawing::draw_line_segment_mut(&mut canvas, (ex - jx, ey - jy), (ex + jx, ey + jy), colour);
        }
    }
    // Q heat-map: black → red → yellow → white.
    for y in 0..height {
        for x in 0..height {
            let q = maps.q[(y * n / height) * n + x * n / height].clamp(0.0, 1.0);
            let c = [(q * 3.0).min(1.0), (q * 3.0 - 1.0).clamp(0.0, 1.0), (q * 3.0 - 2.0).clamp(0.0, 1.0)];
            canvas.put_pixel((width + x) as u32, y as u32, image::Rgb(c.map(|v| (v * 255.0) as u8)));
        }
    }
    canvas.save(path)
}
