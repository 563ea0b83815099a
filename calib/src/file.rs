//! The calibration file (TOML). Loading checks more than syntax: a file of another version, in
//! other units, or physically implausible (non-positive focal length, principal point outside the
//! image, a rotation that is not one, a camera at or below the table) is refused with the field.
//!
//! ```toml
//! version = 1
//! units = "mm"
//! rig = "UR5 + Logitech C920 on the left pole"
//! date = "2026-11-26T17:00:00Z"
//! [image]
//! width = 640
//! height = 480
//! [intrinsics]
//! fx = 600.0
//! fy = 600.0
//! cx = 320.0
//! cy = 240.0
//! k1 = 0.0  # k2, p1, p2, k3 likewise; missing means 0
//! [extrinsics]  # camera → robot base: p_robot = rotation · p_camera + translation
//! rotation = [[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]]
//! translation = [0.0, 0.0, 600.0]
//! [table]
//! z = 0.0
//! [fit]
//! rms_reprojection_px = 0.4
//! rms_position_mm = 1.2
//! points = 24
//! ```

use crate::camera::{CameraModel, CameraPose, Intrinsics};
use nalgebra::{Matrix3, Rotation3, Vector3};
use std::path::Path;

/// The file format version this build reads and writes.
pub const VERSION: u32 = 1;

/// A calibration file (TOML): camera intrinsics, camera pose in the robot frame, table height.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationFile {
    /// Must be [`VERSION`].
    pub version: u32,
    /// Must be `mm`.
    pub units: String,
    /// Free text describing the rig.
    #[serde(default)]
    pub rig: String,
    /// When it was written.
    #[serde(default)]
    pub date: String,
    /// The image size the intrinsics are for.
    pub image: ImageSize,
    /// The lens.
    pub intrinsics: Intrinsics,
    /// The camera pose.
    pub extrinsics: Extrinsics,
    /// The table plane.
    pub table: Table,
    /// How well the solve fitted, if recorded.
    #[serde(default)]
    pub fit: Option<FitQuality>,
}

/// `[image]`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSize {
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
}

/// `[extrinsics]`: the camera in the robot frame.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extrinsics {
    /// Rows of the rotation (camera axes in robot coordinates, as columns).
    pub rotation: [[f64; 3]; 3],
    /// Camera centre, mm.
    pub translation: [f64; 3],
}

/// `[table]`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// Height of the table surface in the robot frame, mm.
    pub z: f64,
}

/// `[fit]`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitQuality {
    /// RMS reprojection error, pixels.
    pub rms_reprojection_px: f64,
    /// RMS leave-one-out position error, mm.
    pub rms_position_mm: f64,
    /// Points used.
    pub points: usize,
}

/// A calibration value that makes no sense: the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct InvalidField {
    /// The field, e.g. `intrinsics.fx`.
    pub field: &'static str,
    /// Why it is refused.
    pub message: String,
}

/// Why a calibration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CalibFileError {
    /// The file could not be read.
    #[error("cannot read calibration {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML of the expected shape.
    #[error("calibration {path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// A value that makes no sense.
    #[error("calibration {path}: field `{field}`: {message}")]
    Field {
        /// The file.
        path: String,
        /// The field.
        field: &'static str,
        /// Why.
        message: String,
    },
}

impl CalibrationFile {
    /// Reads, parses and validates a calibration file.
    pub fn load(path: &Path) -> Result<Self, CalibFileError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CalibFileError::Io { path: p.clone(), source })?;
        Self::parse(&text, &p)
    }

    /// Parses and validates calibration text (`path` names it in errors).
    pub fn parse(text: &str, path: &str) -> Result<Self, CalibFileError> {
        let f: CalibrationFile =
            toml::from_str(text).map_err(|e| CalibFileError::Syntax { path: path.into(), message: e.to_string() })?;
        f.validate().map_err(|InvalidField { field, message }| CalibFileError::Field {
            path: path.into(),
            field,
            message,
        })?;
        Ok(f)
    }

    /// The file's TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a calibration always serialises")
    }

    /// Physical plausibility; a refusal names the offending field.
    pub fn validate(&self) -> Result<(), InvalidField> {
        self.check().map_err(|(field, message)| InvalidField { field, message })
    }

    fn check(&self) -> Result<(), (&'static str, String)> {
        if self.version != VERSION {
            return Err(("version", format!("{} is not supported (this build reads version {VERSION})", self.version)));
        }
        if self.units != "mm" {
            return Err(("units", format!("`{}`: only \"mm\" is supported", self.units)));
        }
        if self.image.width == 0 || self.image.height == 0 {
            return Err(("image", "width and height must be positive".into()));
        }
        let k = &self.intrinsics;
        let all = [k.fx, k.fy, k.cx, k.cy, k.k1, k.k2, k.p1, k.p2, k.k3];
        if all.iter().any(|v| !v.is_finite()) {
            return Err(("intrinsics", "every value must be a finite number".into()));
        }
        if k.fx <= 0.0 {
            return Err(("intrinsics.fx", format!("{} must be positive", k.fx)));
        }
        if k.fy <= 0.0 {
            return Err(("intrinsics.fy", format!("{} must be positive", k.fy)));
        }
        if !(0.0..=self.image.width as f64).contains(&k.cx) {
            return Err(("intrinsics.cx", format!("{} lies outside the {}-pixel-wide image", k.cx, self.image.width)));
        }
        if !(0.0..=self.image.height as f64).contains(&k.cy) {
            return Err(("intrinsics.cy", format!("{} lies outside the {}-pixel-high image", k.cy, self.image.height)));
        }
        let r = Matrix3::from_row_slice(&self.extrinsics.rotation.concat());
        if r.iter().any(|v| !v.is_finite())
            || (r.transpose() * r - Matrix3::identity()).abs().max() > 1e-6
            || (r.determinant() - 1.0).abs() > 1e-6
        {
            return Err(("extrinsics.rotation", "is not a rotation matrix (orthonormal, determinant +1)".into()));
        }
        let t = Vector3::from(self.extrinsics.translation);
        if t.iter().any(|v| !v.is_finite()) || !self.table.z.is_finite() {
            return Err(("extrinsics.translation", "every value must be a finite number".into()));
        }
        if t.z <= self.table.z {
            return Err((
                "extrinsics.translation",
                format!("the camera (z = {} mm) is not above the table (z = {} mm)", t.z, self.table.z),
            ));
        }
        // The optical axis must point towards the table.
        if (Rotation3::from_matrix_unchecked(r) * Vector3::z()).z >= 0.0 {
            return Err((
                "extrinsics.rotation",
                "the camera looks away from the table (its optical axis points up)".into(),
            ));
        }
        Ok(())
    }

    /// The camera model this file describes.
    pub fn model(&self) -> CameraModel {
        let r = Matrix3::from_row_slice(&self.extrinsics.rotation.concat());
        CameraModel {
            intrinsics: self.intrinsics,
            pose: CameraPose {
                rotation: Rotation3::from_matrix_unchecked(r),
                translation: Vector3::from(self.extrinsics.translation),
            },
            table_z: self.table.z,
        }
    }

    /// Where the ray of the image's centre meets the table: the default centre of a table view.
    pub fn image_center_on_table(&self) -> Result<[f64; 2], crate::TransformError> {
        let (w, h) = (self.image.width as f64, self.image.height as f64);
        let p = self.model().pixel_to_robot(w / 2.0 - 0.5, h / 2.0 - 0.5, None)?;
        Ok([p.x, p.y])
    }

    /// A file describing `m`, for `width × height` images.
    pub fn from_model(
        model: &CameraModel,
        width: u32,
        height: u32,
        rig: &str,
        date: &str,
        fit: Option<FitQuality>,
    ) -> Self {
        let m = model.pose.rotation.matrix();
        CalibrationFile {
            version: VERSION,
            units: "mm".into(),
            rig: rig.into(),
            date: date.into(),
            image: ImageSize { width, height },
            intrinsics: model.intrinsics,
            extrinsics: Extrinsics {
                rotation: [
                    [m[(0, 0)], m[(0, 1)], m[(0, 2)]],
                    [m[(1, 0)], m[(1, 1)], m[(1, 2)]],
                    [m[(2, 0)], m[(2, 1)], m[(2, 2)]],
                ],
                translation: model.pose.translation.into(),
            },
            table: crate::file::Table { z: model.table_z },
            fit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::tests::top_down;

    fn good() -> String {
        CalibrationFile::from_model(
            &top_down(600.0),
            640,
            480,
            "test rig",
            "2026-11-26",
            Some(FitQuality { rms_reprojection_px: 0.3, rms_position_mm: 1.0, points: 12 }),
        )
        .to_toml()
    }

    #[test]
    fn round_trip() {
        let f = CalibrationFile::parse(&good(), "c.toml").unwrap();
        assert_eq!(f.model(), top_down(600.0));
        assert_eq!(f.rig, "test rig");
        assert_eq!(CalibrationFile::parse(&f.to_toml(), "c.toml").unwrap(), f);
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            ("version = 1", "version = 2", "version"),
            ("units = \"mm\"", "units = \"m\"", "units"),
            ("fx = 600.0", "fx = -600.0", "intrinsics.fx"),
            ("cx = 320.0", "cx = 1320.0", "intrinsics.cx"),
            ("600.0,\n]", "-5.0,\n]", "extrinsics.translation"),
            ("    1.0,\n    0.0,", "    1.0,\n    0.2,", "extrinsics.rotation"),
        ];
        for (from, to, field) in cases {
            let text = good();
            assert!(text.contains(from), "fixture lacks `{from}`:\n{text}");
            let e = CalibrationFile::parse(&text.replacen(from, to, 1), "c.toml").unwrap_err().to_string();
            assert!(e.contains(&format!("`{field}`")), "{field}: {e}");
            assert!(e.starts_with("calibration c.toml"), "{e}");
        }
        let e = CalibrationFile::parse("version = 1\nunits = \"mm\"\n[image]\nwidth = 640\n", "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.toml") && e.contains("height"), "{e}");
        let e = CalibrationFile::parse(&good().replacen("[table]", "[tabel]", 1), "c.toml").unwrap_err().to_string();
        assert!(e.contains("tabel"), "{e}");
        let e = CalibrationFile::parse(&good().replacen("fx = 600.0", "fx = 600.0\nfocal = 3.0", 1), "c.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `focal`"), "an unknown [intrinsics] key: {e}");
        let e = CalibrationFile::load(Path::new("/nonexistent/cal.toml")).unwrap_err().to_string();
        assert!(e.starts_with("cannot read calibration /nonexistent/cal.toml"), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(grasp_fuzz::config())]
        /// Any calibration text is a plausible calibration or an error naming the file.
        #[test]
        fn fuzz_calibration_toml(text in grasp_fuzz::mutated_text(&good())) {
            if let Ok(c) = CalibrationFile::parse(&text, "c.toml") {
                proptest::prop_assert!(c.validate().is_ok());
                let _ = c.model().pixel_to_robot(c.intrinsics.cx, c.intrinsics.cy, None);
            }
        }
    }
}
