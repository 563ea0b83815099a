//! Pictures for people: the validation-success-per-epoch plot (the paper's Fig. 6) and annotated
//! evaluation images (ground-truth rectangles, the predicted grasp, the Q heat-map).

use grasp_models::metric::GraspRect;
use image::{Rgb, RgbImage};
use imageproc::drawing::draw_hollow_polygon_mut;
use imageproc::point::Point;
use plotters::prelude::*;
use std::path::Path;

/// Registers a system TrueType font for plot labels once; without one, plots have no text.
fn font_available() -> bool {
    static FONT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FONT.get_or_init(|| {
        const CANDIDATES: &[&str] = &[
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        ];
        for p in CANDIDATES {
            if let Ok(bytes) = std::fs::read(p) {
                if plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(bytes.into_boxed_slice()))
                    .is_ok()
                {
                    return true;
                }
            }
        }
        log::warn!("no TrueType font found (install fonts-dejavu-core): plots are drawn without labels");
        false
    })
}

/// Plots one line per series of (epoch, success %) into a PNG.
pub fn plot_success(path: &Path, title: &str, series: &[(String, Vec<(usize, f64)>)]) -> anyhow::Result<()> {
    let (w, h) = (900u32, 560u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    let max_epoch = series.iter().flat_map(|(_, s)| s.iter().map(|p| p.0)).max().unwrap_or(1).max(1);
    let labels = font_available();
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut builder = ChartBuilder::on(&root);
        builder.margin(20);
        if labels {
            builder.caption(title, ("sans-serif", 22)).x_label_area_size(40).y_label_area_size(55);
        }
        let mut chart = builder.build_cartesian_2d(0usize..max_epoch + 1, 0f64..100f64)?;
        let mut mesh = chart.configure_mesh();
        if labels {
            mesh.x_desc("epoch").y_desc("validation success (%)");
        } else {
            mesh.disable_x_axis().disable_y_axis();
        }
        mesh.draw()?;
        for (i, (name, points)) in series.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            let s = chart.draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(2)))?;
            if labels {
                s.label(name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
            }
        }
        if labels && !series.is_empty() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::LowerRight)
                .draw()?;
        }
        root.present()?;
    }
    RgbImage::from_raw(w, h, buf).expect("buffer size").save(path)?;
    Ok(())
}

fn polygon(r: &GraspRect) -> Vec<Point<f32>> {
    let mut pts: Vec<Point<f32>> = r.corners().iter().map(|&(x, y)| Point::new(x as f32, y as f32)).collect();
    // imageproc refuses a polygon whose first and last points coincide; a degenerate one is skipped.
    pts.dedup();
    pts
}

/// The model's view with ground truth (green), the predicted grasp (red: jaws thick), and the
/// smoothed Q heat-map beside it. `view` is planar RGB in [0, 255] (`3 × size × size`).
pub fn annotate(
    path: &Path,
    view_rgb: &[f32],
    size: usize,
    q: &[f32],
    ground_truth: &[GraspRect],
    predicted: Option<&GraspRect>,
) -> anyhow::Result<()> {
    let s = size as u32;
    let mut img = RgbImage::new(2 * s, s);
    let plane = size * size;
    let (qmin, qmax) = q.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    for y in 0..size {
        for x in 0..size {
            let i = y * size + x;
            let px = |c: usize| view_rgb[c * plane + i].clamp(0.0, 255.0) as u8;
            img.put_pixel(x as u32, y as u32, Rgb([px(0), px(1), px(2)]));
            // Heat-map: black → red → yellow → white.
            let t = if qmax > qmin { (q[i] - qmin) / (qmax - qmin) } else { 0.0 };
            let c = |k: f32| ((t * 3.0 - k).clamp(0.0, 1.0) * 255.0) as u8;
            img.put_pixel(s + x as u32, y as u32, Rgb([c(0.0), c(1.0), c(2.0)]));
        }
    }
    for r in ground_truth {
        let p = polygon(r);
        if p.len() >= 3 {
            draw_hollow_polygon_mut(&mut img, &p, Rgb([0, 200, 0]));
        }
    }
    if let Some(r) = predicted {
        let p = polygon(r);
        if p.len() >= 3 {
            draw_hollow_polygon_mut(&mut img, &p, Rgb([230, 0, 0]));
            let shifted: Vec<Point<f32>> = p.iter().map(|q| Point::new(q.x + s as f32, q.y)).collect();
            draw_hollow_polygon_mut(&mut img, &shifted, Rgb([0, 160, 255]));
        }
    }
    img.save(path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use grasp_models::decode::Grasp;

    #[test]
    fn plot_and_annotation_files_are_images() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("plot.png");
        plot_success(&p, "t", &[("a".into(), vec![(1, 10.0), (2, 40.0)]), ("b".into(), vec![(1, 20.0), (2, 30.0)])])
            .unwrap();
        let img = image::open(&p).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (900, 560));
        assert!(img.pixels().any(|px| px.0 != [255, 255, 255]), "something was drawn");
        let a = d.path().join("a.png");
        let view = vec![128.0; 3 * 32 * 32];
        let q: Vec<f32> = (0..1024).map(|i| i as f32).collect();
        let gt = [GraspRect { cx: 16.0, cy: 16.0, angle: 0.3, length: 12.0, jaw: 6.0 }];
        annotate(
            &a,
            &view,
            32,
            &q,
            &gt,
            Some(&GraspRect::from_grasp(&Grasp { x: 10.0, y: 10.0, angle: 0.0, width: 8.0, quality: 1.0 })),
        )
        .unwrap();
        let img = image::open(&a).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (64, 32));
        assert!(img.pixels().any(|px| px.0 == [0, 200, 0]) && img.pixels().any(|px| px.0 == [230, 0, 0]));
    }
}
