//! Calibration solve time against the number of points (full and planar mode), for the claim
//! that the solve is linear in the points: `cargo bench -p grasp-calib --bench solve`.
//! Writes `target/bench-solve.md`.

use grasp_calib::{solve_full, solve_planar, CameraModel, CameraPose, Correspondence, Intrinsics};
use nalgebra::{Matrix3, Point3, Rotation3, Vector3};
use std::time::Instant;

fn rig() -> CameraModel {
    let down = Rotation3::from_matrix_unchecked(Matrix3::new(1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0));
    let mut intrinsics = Intrinsics::pinhole(620.0, 615.0, 322.0, 236.0);
    intrinsics.k1 = -0.08;
    CameraModel {
        intrinsics,
        pose: CameraPose {
            rotation: Rotation3::from_euler_angles(0.3, -0.1, 0.2) * down,
            translation: Vector3::new(250.0, -150.0, 650.0),
        },
        table_z: 0.0,
    }
}

/// `n` points on a jittered grid over the work area, on `layers` heights, seen exactly.
fn points(cam: &CameraModel, n: usize, layers: usize) -> Vec<Correspondence> {
    let look = cam.pixel_to_robot(322.0, 236.0, Some(0.0)).unwrap();
    let per = n.div_ceil(layers);
    let side = (per as f64).sqrt().ceil() as usize;
    let mut out = vec![];
    for l in 0..layers {
        for i in 0..per {
            let (a, b) = ((i % side) as f64 / side as f64 - 0.5, (i / side) as f64 / side as f64 - 0.5);
            let p = Point3::new(look.x + 240.0 * a + 0.37 * l as f64, look.y + 180.0 * b, 80.0 * l as f64);
            if let Some((u, v)) = cam.project(&p) {
                out.push(Correspondence { u, v, robot: p });
            }
        }
    }
    out.truncate(n);
    out
}

fn main() {
    let cam = rig();
    let mut report = String::from(
        "## Calibration solve time (release, 1 thread)\n\n| points | full mode ms | planar mode ms |\n|---|---|---|\n",
    );
    for n in [25, 100, 300, 1000] {
        let full = points(&cam, n, 2);
        let planar = points(&cam, n, 1);
        let t = Instant::now();
        let s = solve_full(&full, 0.0).expect("full solve");
        let full_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let p = solve_planar(&planar, &cam.intrinsics).expect("planar solve");
        let planar_ms = t.elapsed().as_secs_f64() * 1e3;
        assert!(
            s.rms_reprojection_px < 0.1 && p.rms_reprojection_px < 0.1,
            "the bench's data must be solvable exactly"
        );
        let row = format!("| {} | {full_ms:.0} | {planar_ms:.0} |\n", full.len());
        print!("{row}");
        report += &row;
    }
    report += "\nEach solve includes the leave-one-out error (at most `MAX_HELD_OUT` = 12 re-solves).\n";
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("bench-solve.md"), &report).unwrap();
    println!("\nwritten to target/bench-solve.md");
}
