//! Import of intrinsics from a ROS `camera_info` YAML file (what `camera_calibration` and most
//! camera drivers write): image size, `camera_matrix` and `plumb_bob` distortion.

use crate::camera::Intrinsics;

#[derive(Debug, serde::Deserialize)]
struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

#[derive(Debug, serde::Deserialize)]
struct CameraInfo {
    image_width: u32,
    image_height: u32,
    #[serde(default)]
    camera_name: String,
    camera_matrix: Matrix,
    #[serde(default)]
    distortion_model: Option<String>,
    #[serde(default)]
    distortion_coefficients: Option<Matrix>,
}

/// Why a camera_info file could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum CameraInfoError {
    /// Not YAML of the expected shape.
    #[error("{path}: not a ROS camera_info YAML: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// A value that makes no sense.
    #[error("{path}: field `{field}`: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// The field.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Intrinsics, image width and height, and the camera's name.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The lens.
    pub intrinsics: Intrinsics,
    /// Image width, pixels.
    pub width: u32,
    /// Image height, pixels.
    pub height: u32,
    /// The camera's name.
    pub camera_name: String,
}

/// Reads and imports a camera_info YAML file.
pub fn load(path: &std::path::Path) -> Result<Imported, CameraInfoError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| CameraInfoError::Read { path: path.display().to_string(), source })?;
    parse(&text, &path.display().to_string())
}

/// Imports camera_info YAML text (`path` names it in errors).
pub fn parse(text: &str, path: &str) -> Result<Imported, CameraInfoError> {
    let info: CameraInfo = serde_yaml_ng::from_str(text)
        .map_err(|e| CameraInfoError::Parse { path: path.into(), message: e.to_string() })?;
    let invalid = |field, message: String| CameraInfoError::Invalid { path: path.into(), field, message };
    let k = &info.camera_matrix;
    if k.rows != 3 || k.cols != 3 || k.data.len() != 9 {
        return Err(invalid(
            "camera_matrix",
            format!("must be 3x3 with 9 values, is {}x{} with {}", k.rows, k.cols, k.data.len()),
        ));
    }
    let d = &k.data;
    if d[1].abs() > 1e-9 || d[3].abs() > 1e-9 || d[6].abs() > 1e-9 || d[7].abs() > 1e-9 || (d[8] - 1.0).abs() > 1e-9 {
        return Err(invalid(
            "camera_matrix",
            "expected [fx, 0, cx, 0, fy, cy, 0, 0, 1] (skew is not supported)".into(),
        ));
    }
    let mut intr = Intrinsics::pinhole(d[0], d[4], d[2], d[5]);
    if !(intr.fx > 0.0 && intr.fy > 0.0) {
        return Err(invalid(
            "camera_matrix",
            format!("focal lengths must be positive (fx {}, fy {})", intr.fx, intr.fy),
        ));
    }
    match (info.distortion_model.as_deref(), &info.distortion_coefficients) {
        (_, None) => {}
        (Some("plumb_bob") | Some("rational_polynomial") | None, Some(c)) => {
            let c = &c.data;
            if c.len() < 4 {
                return Err(invalid(
                    "distortion_coefficients",
                    format!("plumb_bob needs k1 k2 p1 p2 [k3], got {} values", c.len()),
                ));
            }
            // rational_polynomial's k4..k6 are dropped: refused if they matter.
            if c.len() > 5 && c[5..].iter().any(|v| v.abs() > 1e-9) {
                return Err(invalid(
                    "distortion_coefficients",
                    "rational_polynomial terms k4..k6 are not supported; recalibrate with plumb_bob".into(),
                ));
            }
            intr.k1 = c[0];
            intr.k2 = c[1];
            intr.p1 = c[2];
            intr.p2 = c[3];
            intr.k3 = c.get(4).copied().unwrap_or(0.0);
        }
        (Some(other), Some(_)) => {
            return Err(invalid("distortion_model", format!("`{other}` is not supported (plumb_bob is)")))
        }
    }
    if info.image_width == 0 || info.image_height == 0 {
        return Err(invalid("image_width", "image size must be positive".into()));
    }
    Ok(Imported { intrinsics: intr, width: info.image_width, height: info.image_height, camera_name: info.camera_name })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROS: &str = "image_width: 640
image_height: 480
camera_name: c920
camera_matrix:
  rows: 3
  cols: 3
  data: [615.2, 0, 322.4, 0, 614.8, 238.9, 0, 0, 1]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [0.11, -0.23, 0.001, -0.002, 0.05]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1, 0, 0, 0, 1, 0, 0, 0, 1]
projection_matrix:
  rows: 3
  cols: 4
  data: [615.2, 0, 322.4, 0, 0, 614.8, 238.9, 0, 0, 0, 1, 0]
";

    #[test]
    fn imports_a_ros_file() {
        let i = parse(ROS, "c920.yaml").unwrap();
        assert_eq!((i.width, i.height, i.camera_name.as_str()), (640, 480, "c920"));
        let k = i.intrinsics;
        assert_eq!((k.fx, k.fy, k.cx, k.cy), (615.2, 614.8, 322.4, 238.9));
        assert_eq!((k.k1, k.k2, k.p1, k.p2, k.k3), (0.11, -0.23, 0.001, -0.002, 0.05));
    }

    #[test]
    fn refusals_name_the_field() {
        let e = parse(&ROS.replace("615.2, 0, 322.4", "615.2, 3, 322.4"), "x.yaml").unwrap_err().to_string();
        assert!(e.contains("camera_matrix") && e.contains("skew"), "{e}");
        let e = parse(&ROS.replace("plumb_bob", "equidistant"), "x.yaml").unwrap_err().to_string();
        assert!(e.contains("distortion_model") && e.contains("equidistant"), "{e}");
        let e = parse("image_width: 640\n", "x.yaml").unwrap_err().to_string();
        assert!(e.contains("x.yaml") && e.contains("image_height"), "{e}");
        let e = parse(&ROS.replace("data: [615.2, 0, 322.4, 0, 614.8, 238.9, 0, 0, 1]", "data: [1, 0, 0]"), "x.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("9 values"), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(grasp_fuzz::config())]
        /// Any camera_info text imports finite intrinsics or is refused.
        #[test]
        fn fuzz_camera_info_yaml(text in grasp_fuzz::mutated_text(ROS)) {
            if let Ok(i) = parse(&text, "c.yaml") {
                let k = i.intrinsics;
                proptest::prop_assert!(k.fx > 0.0 && k.fy > 0.0 && k.cx.is_finite() && k.k1.is_finite());
            }
        }
    }
}
