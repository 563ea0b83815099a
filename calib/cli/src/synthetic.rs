//! A camera that renders the calibration marker where a simulated arm holds it, seen through a
//! known ("true") camera model with distortion: the fake frame source of the wizard's tests and of
//! `grasp-calib wizard --simulate`.

use grasp_calib::marker::draw_disc;
use grasp_calib::CameraModel;
use grasp_devices::camera::{Frame, FrameError, FrameSource};
use grasp_devices::grasp_line::sim::SimController;
use nalgebra::Point3;
use rand::{Rng, SeedableRng};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A camera that renders the calibration marker where the simulated arm holds it, through a known camera model.
pub struct MarkerCamera {
    /// The camera the wizard should find.
    pub truth: CameraModel,
    /// Frame width, pixels.
    pub width: usize,
    /// Frame height, pixels.
    pub height: usize,
    /// The simulated arm whose tool pose places the marker.
    pub arm: Arc<Mutex<SimController>>,
    /// Marker centre relative to the tool point, mm.
    pub marker_offset: [f64; 3],
    /// Marker radius, mm.
    pub marker_radius_mm: f64,
    /// Marker colour.
    pub colour: [u8; 3],
    /// Sensor noise amplitude (grey levels).
    pub noise: i32,
    rng: rand_chacha::ChaCha8Rng,
    index: u64,
}

impl MarkerCamera {
    /// A `width × height` camera `truth` watching the marker on `arm`.
    pub fn new(
        truth: CameraModel,
        width: usize,
        height: usize,
        arm: Arc<Mutex<SimController>>,
        marker_offset: [f64; 3],
        colour: [u8; 3],
        seed: u64,
    ) -> Self {
        MarkerCamera {
            truth,
            width,
            height,
            arm,
            marker_offset,
            marker_radius_mm: 12.0,
            colour,
            noise: 6,
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            index: 0,
        }
    }
}

impl FrameSource for MarkerCamera {
    fn next_frame(&mut self, frame: &mut Frame, _timeout: Duration) -> Result<(), FrameError> {
        let (w, h) = (self.width, self.height);
        frame.width = w;
        frame.height = h;
        frame.rgb.resize(w * h * 3, 0);
        // A grey table with a faint checker and noise.
        for y in 0..h {
            for x in 0..w {
                let base = if ((x / 40) + (y / 40)) % 2 == 0 { 150 } else { 135 };
                let o = (y * w + x) * 3;
                for c in 0..3 {
                    frame.rgb[o + c] = (base + self.rng.gen_range(-self.noise..=self.noise)).clamp(0, 255) as u8;
                }
            }
        }
        let pose = self.arm.lock().unwrap().pose;
        let tool = grasp_devices::arm::ArmPose { x: pose[0], y: pose[1], z: pose[2], yaw: pose[3] };
        let m = crate::marker_position(&tool, self.marker_offset);
        if let Some((u, v)) = self.truth.project(&m) {
            let depth = self.truth.pose.to_camera(&Point3::from(m.coords).coords).z;
            let r = self.truth.intrinsics.fx * self.marker_radius_mm / depth;
            draw_disc(&mut frame.rgb, w, h, u, v, r, self.colour);
        }
        self.index += 1;
        frame.index = self.index;
        frame.origin = format!("synthetic#{}", self.index);
        Ok(())
    }

    fn describe(&self) -> String {
        format!("synthetic marker camera {}x{}", self.width, self.height)
    }
}

/// The rig of `--simulate` and the tests: a 640x480 camera with mild barrel distortion, 650 mm
/// above the table and 250 mm behind the work area, looking obliquely at (250, 0, 0).
pub fn demo_truth() -> CameraModel {
    use nalgebra::{Matrix3, Rotation3, Vector3};
    let centre = Vector3::new(250.0, -250.0, 650.0);
    let z = (Vector3::new(250.0, 0.0, 0.0) - centre).normalize();
    let x = Vector3::new(1.0, 0.0, 0.0);
    let y = z.cross(&x);
    let rotation = Rotation3::from_matrix_unchecked(Matrix3::from_columns(&[x, y, z]));
    let mut intrinsics = grasp_calib::Intrinsics::pinhole(620.0, 620.0, 322.0, 236.0);
    intrinsics.k1 = -0.08;
    intrinsics.k2 = 0.02;
    CameraModel { intrinsics, pose: grasp_calib::CameraPose { rotation, translation: centre }, table_z: 0.0 }
}
