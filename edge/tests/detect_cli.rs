//! `grasp-edge detect` end to end: a real model file, real image files, the JSON line format, and
//! clear failures for corrupt inputs.

use grasp_models::arch::Architecture;
use grasp_models::contract::ModelInfo;
use grasp_models::onnx::{export, ExportOptions, NamedWeights};
use std::path::{Path, PathBuf};
use std::process::Command;

fn write_model(dir: &Path, size: usize) -> PathBuf {
    let arch = Architecture::ggcnn();
    let mut info = ModelInfo::new(arch.kind, None, size);
    info.decode.peak_threshold = f32::MIN; // a random model: report its peaks whatever their Q
    info.decode.peak_min_distance = 4;
    info.decode.q_sigma = 0.0; // keep the many small peaks of a random net
    let path = dir.join("model.onnx");
    std::fs::write(&path, export(&arch, &NamedWeights::random(&arch, 9), &info, &ExportOptions::default()).unwrap())
        .unwrap();
    path
}

fn write_image(dir: &Path, name: &str, w: u32, h: u32) -> PathBuf {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let inside = (x as i32 - w as i32 / 2).pow(2) + (y as i32 - h as i32 / 2).pow(2) < 900;
        if inside {
            image::Rgb([200, 40, 40])
        } else {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        }
    });
    let path = dir.join(name);
    img.save(&path).unwrap();
    path
}

fn detect(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_grasp-edge")).arg("detect").args(args).output().unwrap()
}

#[test]
fn json_lines_in_image_coordinates() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), 64);
    let wide = write_image(dir.path(), "wide.png", 160, 96);
    let tall = write_image(dir.path(), "tall.png", 50, 120);
    let o = detect(&[
        "--model",
        model.to_str().unwrap(),
        "--backend",
        "tract",
        "--top-k",
        "3",
        "--json",
        wide.to_str().unwrap(),
        tall.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    for (line, path, (w, h)) in [(&lines[0], &wide, (160.0, 96.0)), (&lines[1], &tall, (50.0, 120.0))] {
        assert_eq!(line["image"], path.display().to_string());
        assert_eq!(line["backend"], "tract");
        for k in ["pre", "infer", "post"] {
            assert!(line["ms"][k].as_f64().unwrap() >= 0.0);
        }
        let grasps = line["grasps"].as_array().unwrap();
        assert_eq!(grasps.len(), 3);
        let side = f64::min(w, h);
        let mut last_q = f64::INFINITY;
        for g in grasps {
            let (x, y, a) = (g["x"].as_f64().unwrap(), g["y"].as_f64().unwrap(), g["angle"].as_f64().unwrap());
            // Inside the centred square crop of the image.
            assert!(x >= (w - side) / 2.0 - 0.5 && x <= (w + side) / 2.0, "x {x} outside the crop of {w}");
            assert!(y >= (h - side) / 2.0 - 0.5 && y <= (h + side) / 2.0, "y {y} outside the crop of {h}");
            assert!(a > -std::f64::consts::FRAC_PI_2 && a <= std::f64::consts::FRAC_PI_2);
            let q = g["quality"].as_f64().unwrap();
            assert!(q <= last_q, "best grasp first");
            last_q = q;
        }
    }
}

#[test]
fn bad_inputs_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), 32);
    let img = write_image(dir.path(), "ok.png", 40, 40);
    let corrupt = dir.path().join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\nthis is not the rest of a png").unwrap();
    let o = detect(&["--model", model.to_str().unwrap(), "--backend", "tract", corrupt.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("corrupt.png"), "{}", String::from_utf8_lossy(&o.stderr));

    let truncated = dir.path().join("truncated.onnx");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let o = detect(&["--model", truncated.to_str().unwrap(), img.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("truncated.onnx") && err.contains("not an ONNX model"), "{err}");

    let o = detect(&["--model", "/nonexistent/model.onnx", img.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/model.onnx"));
    let o = detect(&["--model", model.to_str().unwrap(), "--backend", "cuda", img.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown backend `cuda`"));

    // A JPEG cut in half is refused, not decoded into another grasp.
    let jpeg = dir.path().join("half.jpg");
    let mut bytes = Vec::new();
    image::open(&img).unwrap().write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Jpeg).unwrap();
    std::fs::write(&jpeg, &bytes[..bytes.len() / 2]).unwrap();
    let o = detect(&["--model", model.to_str().unwrap(), "--backend", "tract", jpeg.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("half.jpg") && err.contains("truncated JPEG"), "{err}");
    // Absurd counts are refused at once, saying what is allowed.
    let o = detect(&["--model", model.to_str().unwrap(), "--top-k", "0", img.to_str().unwrap()]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--top-k 0"));
    let o = detect(&[
        "--model",
        model.to_str().unwrap(),
        "--backend",
        "tract",
        "--threads",
        "100000",
        img.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("100000 inference threads"), "{err}");
    let o = Command::new(env!("CARGO_BIN_EXE_grasp-edge"))
        .args(["sim-arm", dir.path().join("arm").to_str().unwrap(), "--faults", "2"])
        .output()
        .unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("not a probability"));
}

#[cfg(not(feature = "torch"))]
#[test]
fn torch_backend_without_the_feature_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), 32);
    let img = write_image(dir.path(), "ok.png", 40, 40);
    let o = detect(&["--model", model.to_str().unwrap(), "--backend", "torch", img.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--features torch"));
}

#[cfg(feature = "torch")]
#[test]
fn torch_and_tract_print_the_same_grasps() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), 64);
    let img = write_image(dir.path(), "ok.png", 100, 80);
    let run = |b: &str| {
        let o = detect(&[
            "--model",
            model.to_str().unwrap(),
            "--backend",
            b,
            "--top-k",
            "3",
            "--json",
            img.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["grasps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| (g["x"].as_f64().unwrap(), g["y"].as_f64().unwrap()))
            .collect::<Vec<_>>()
    };
    assert_eq!(run("tract"), run("torch"));
}

/// With --calibration the model sees the table view and grasps come out in the robot frame; a
/// model that takes the table view is refused without one, naming the flag.
#[test]
fn the_table_view_prints_robot_frame_grasps_and_table_view_models_need_a_calibration() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let frame = demo.join("frames/013.jpg");
    let calibration = demo.join("calibration.toml");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/ggcnn-p-rgb-224.onnx");
    let run = |extra: &[&str]| {
        let mut args = vec!["--model", model.to_str().unwrap(), "--backend", "tract", "--json"];
        args.extend_from_slice(extra);
        args.push(frame.to_str().unwrap());
        detect(&args)
    };
    // The demo camera: 0.625 mm per pixel (400 mm height / 640 px focal length), 480 px cropped
    // to 224: the crop's scale is 1.3393 mm/px.
    let o = run(&["--calibration", calibration.to_str().unwrap(), "--view-mm-per-px", "1.3392857"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let line: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(line["view"], "table");
    let g = &line["grasps"][0];
    // The camera path's grasp on this frame (pixels), through the calibration (the demo camera
    // looks straight down from above (250, 0) mm at 0.625 mm/px): x = 250 + (u − 240)·0.625,
    // y = −(v − 240)·0.625, yaw = the image angle. Both paths see the same pixels, so they agree
    // whatever the model finds.
    let o = run(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let camera: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &camera["grasps"][0];
    let (u, v, angle) = (c["x"].as_f64().unwrap(), c["y"].as_f64().unwrap(), c["angle"].as_f64().unwrap());
    let (x, y) = (g["x_mm"].as_f64().unwrap(), g["y_mm"].as_f64().unwrap());
    let mm = 0.625;
    assert!((x - (250.0 + (u - 240.0) * mm)).abs() < 3.0 && (y + (v - 240.0) * mm).abs() < 3.0, "{g} vs {c}");
    assert!((g["yaw_deg"].as_f64().unwrap() - angle.to_degrees()).abs() < 3.0, "{g} vs {c}");
    // The shipped model declares no scale: the flag is asked for.
    let o = run(&["--calibration", calibration.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--view-mm-per-px"), "{}", String::from_utf8_lossy(&o.stderr));
    // A region the camera does not see is named.
    let o =
        run(&["--calibration", calibration.to_str().unwrap(), "--view-mm-per-px", "1", "--view-center-mm", "900,0"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("(900, 0) mm"), "{}", String::from_utf8_lossy(&o.stderr));
    // A table-view model without a calibration.
    let arch = Architecture::ggcnn();
    let mut info = ModelInfo::new(arch.kind, None, 64);
    info.image_fit = grasp_models::contract::ImageFit::TableView;
    info.mm_per_px = Some(1.0);
    let tv = dir.path().join("table-view.onnx");
    std::fs::write(&tv, export(&arch, &NamedWeights::random(&arch, 9), &info, &ExportOptions::default()).unwrap())
        .unwrap();
    let o = detect(&["--model", tv.to_str().unwrap(), "--backend", "tract", frame.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("table view") && err.contains("--calibration"), "{err}");
    // The shipped table-view model brings its scale: the calibration is all it needs.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/ggcnn-tv-rgb-224.onnx");
    let args = ["--model", shipped.to_str().unwrap(), "--backend", "tract", "--json", "--calibration"];
    let o = detect(&[&args[..], &[calibration.to_str().unwrap(), frame.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let line: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(line["view"], "table");
    let o = detect(&["--model", shipped.to_str().unwrap(), "--backend", "tract", frame.to_str().unwrap()]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--calibration"));
}
