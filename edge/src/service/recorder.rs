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
    /// Creates `dir` with its `frames/`.
    pub fn create(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir.join("frames"))?;
        let events = std::fs::File::create(dir.join("events.jsonl"))?;
        Ok(Recorder { dir: dir.to_path_buf(), events: std::io::BufWriter::new(events), count: 0 })
    }

    /// Appends one frame: its image and what was decided.
    pub fn record(
        &mut self,
        frame: &Frame,
        grasps: &[Grasp],
        targets: &[Target],
        commands: &[ArmCall],
    ) -> std::io::Result<()> {
        self.count += 1;
        let file = format!("{:06}.png", self.count);
        image::save_buffer(
            self.dir.join("frames").join(&file),
            &frame.rgb,
            frame.width as u32,
            frame.height as u32,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(std::io::Error::other)?;
        let rec = RecordedFrame {
            frame: self.count,
            file,
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
