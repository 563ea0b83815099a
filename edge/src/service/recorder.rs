//! The flight recorder: a session's frames, grasps and commands, in a directory that is itself a
//! replay source.

use crate::control::Target;
use grasp_devices::arm::ArmCall;
use grasp_devices::camera::Frame;
use grasp_models::Grasp;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One line of a flight recording (`events.jsonl`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecordedFrame {
    /// Frame number, from 1.
    pub frame: u64,
    /// File name under `frames/`.
    pub file: String,
    /// Where the frame came from (file, or device and sequence number).
    #[serde(default)]
    pub source: String,
    /// The source's frame counter: in a live run, gaps are the frames dropped as stale.
    #[serde(default)]
    pub source_index: u64,
    /// The table view the model saw (path in the recording, under `views/`, outside `frames/` so
    /// a replay of the recording reads the camera frames only), when it ran on the table view:
    /// then the grasps are in that image's pixels, not the frame's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_file: Option<String>,
    /// The grasps: x, y, angle, width, quality.
    pub grasps: Vec<[f32; 5]>,
    /// The safe targets, robot frame.
    pub targets: Vec<serde_json::Value>,
    /// The commands sent.
    pub commands: Vec<serde_json::Value>,
}

/// Records frames (PNG under `frames/`), grasps and commands of a session (`events.jsonl`). The
/// directory is itself a replay source, and replaying it with the same model reproduces the commands.
pub struct Recorder {
    dir: PathBuf,
    events: std::io::BufWriter<std::fs::File>,
    count: u64,
}

impl Recorder {
    /// Creates `dir` with its `frames/` and `views/`.
    pub fn create(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir.join("frames"))?;
        std::fs::create_dir_all(dir.join("views"))?;
        let events = std::fs::File::create(dir.join("events.jsonl"))?;
        Ok(Recorder { dir: dir.to_path_buf(), events: std::io::BufWriter::new(events), count: 0 })
    }

    /// Appends one frame: its image, the table view the model saw instead of it (RGB, side in
    /// pixels) if any, and what was decided.
    pub fn record(
        &mut self,
        frame: &Frame,
        view: Option<(&[u8], usize)>,
        grasps: &[Grasp],
        targets: &[Target],
        commands: &[ArmCall],
    ) -> std::io::Result<()> {
        self.count += 1;
        let save = |file: &str, rgb: &[u8], width: usize, height: usize| {
            image::save_buffer(self.dir.join(file), rgb, width as u32, height as u32, image::ExtendedColorType::Rgb8)
                .map_err(std::io::Error::other)
        };
        let file = format!("{:06}.png", self.count);
        save(&format!("frames/{file}"), &frame.rgb, frame.width, frame.height)?;
        let view_file = match view {
            Some((rgb, side)) => {
                let name = format!("views/{file}");
                save(&name, rgb, side, side)?;
                Some(name)
            }
            None => None,
        };
        let rec = RecordedFrame {
            frame: self.count,
            file,
            view_file,
            source: frame.origin.clone(),
            source_index: frame.index,
            grasps: grasps.iter().map(|g| [g.x, g.y, g.angle, g.width, g.quality]).collect(),
            targets: targets.iter().map(|t| serde_json::to_value(t).expect("plain data")).collect(),
            commands: commands.iter().map(|c| serde_json::to_value(c).expect("plain data")).collect(),
        };
        serde_json::to_writer(&mut self.events, &rec)?;
        self.events.write_all(b"\n")?;
        self.events.flush()
    }

    /// Reads back a recording's events.
    pub fn read_events(dir: &Path) -> std::io::Result<Vec<RecordedFrame>> {
        let text = std::fs::read_to_string(dir.join("events.jsonl"))?;
        text.lines()
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{}/events.jsonl line {}: {e}", dir.display(), i + 1),
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame {
        Frame { rgb: vec![7; 4 * 3 * 3], width: 4, height: 3, index: 5, origin: "test".into(), captured: None }
    }

    #[test]
    fn the_table_view_is_recorded_beside_the_frame_and_named_in_the_event() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::create(dir.path()).unwrap();
        let view = vec![200u8; 2 * 2 * 3];
        rec.record(&frame(), Some((&view, 2)), &[], &[], &[]).unwrap();
        rec.record(&frame(), None, &[], &[], &[]).unwrap();
        let events = Recorder::read_events(dir.path()).unwrap();
        assert_eq!(events[0].view_file.as_deref(), Some("views/000001.png"));
        assert_eq!(events[1].view_file, None);
        let v = image::open(dir.path().join("views/000001.png")).unwrap().to_rgb8();
        assert_eq!((v.width(), v.height(), v.get_pixel(1, 1).0), (2, 2, [200, 200, 200]));
        let f = image::open(dir.path().join("frames/000001.png")).unwrap().to_rgb8();
        assert_eq!((f.width(), f.height()), (4, 3));
        // Only camera frames where a replay looks.
        assert_eq!(std::fs::read_dir(dir.path().join("frames")).unwrap().count(), 2);
    }
}
