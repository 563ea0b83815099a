//! Makes the demo's bundled frames from synthetic scenes (`grasp-train synth --size 480`): each
//! scene becomes a short "camera" sequence (4 frames, ±1 px jitter and sensor noise, JPEG), so
//! pick mode sees a grasp that holds still for a few frames. Beside each frame, `NNN_grasps.txt`
//! holds the scene's ground truth moved with that frame's jitter (Jacquard format `x;y;θ;opening;jaw`):
//! the shipped model's test that every demo frame gives an accepted grasp reads it.
//!
//! grasp-train synth --out /tmp/synth8 --count 8 --seed 3 --size 480
//! cargo run --example make_demo_frames -- /tmp/synth8 edge/demo/frames 0 2 3 1
use rand::{Rng, SeedableRng};
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(args.len() >= 3, "usage: make_demo_frames SYNTH_DIR OUT_DIR SCENE_INDEX...");
    let (src, out) = (PathBuf::from(&args[0]), PathBuf::from(&args[1]));
    std::fs::create_dir_all(&out)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20261126);
    let mut n = 0;
    for scene in &args[2..] {
        let mut scenes: Vec<PathBuf> =
            std::fs::read_dir(&src)?.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
        scenes.sort();
        let dir = scenes.into_iter().nth(scene.parse()?).ok_or_else(|| anyhow::anyhow!("no scene {scene}"))?;
        let rgb = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| {
                p.to_string_lossy().ends_with("_RGB.png") && p.file_name().unwrap().to_string_lossy().starts_with("0_")
            })
            .ok_or_else(|| anyhow::anyhow!("no RGB in {}", dir.display()))?;
        let img = image::open(&rgb)?.to_rgb8();
        let grasps_path = PathBuf::from(rgb.to_string_lossy().replace("_RGB.png", "_grasps.txt"));
        let grasps = std::fs::read_to_string(&grasps_path)?;
        for _ in 0..4 {
            let (dx, dy): (i64, i64) = (rng.gen_range(-1..=1), rng.gen_range(-1..=1));
            let (w, h) = (img.width() as i64, img.height() as i64);
            let frame = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
                let p = img.get_pixel((x as i64 + dx).clamp(0, w - 1) as u32, (y as i64 + dy).clamp(0, h - 1) as u32);
                image::Rgb(p.0.map(|c| (c as f32 + rng.gen_range(-4.0..4.0)).clamp(0.0, 255.0) as u8))
            });
            n += 1;
            let path = out.join(format!("{n:03}.jpg"));
            let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut f, 85).encode_image(&frame)?;
            // Frame pixel (x, y) shows scene pixel (x + dx, y + dy): the labels move by (−dx, −dy).
            let mut moved = String::new();
            for line in grasps.lines().filter(|l| !l.trim().is_empty()) {
                let v: Vec<f64> = line.split(';').map(|x| x.trim().parse()).collect::<Result<_, _>>()?;
                anyhow::ensure!(v.len() == 5, "{}: `{line}` is not x;y;θ;opening;jaw", grasps_path.display());
                moved += &format!("{};{};{};{};{}\n", v[0] - dx as f64, v[1] - dy as f64, v[2], v[3], v[4]);
            }
            std::fs::write(out.join(format!("{n:03}_grasps.txt")), moved)?;
        }
    }
    println!("wrote {n} frames to {}", out.display());
    Ok(())
}
