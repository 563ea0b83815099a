//! Grasp datasets on disk: the Cornell layout (`<name>r.png` + `<name>cpos.txt`, depth optional) and
//! the Jacquard layout (`<n>_<id>_RGB.png`, `_perfect_depth.tiff`, `_mask.png`, `_grasps.txt`). The
//! synthetic generator writes the Jacquard layout, so one loader serves both.
//!
//! Scanning only lists files; samples are decoded on demand (the full Jacquard set does not fit in
//! memory). Every error names the file, and the line for annotation files.

use grasp_models::metric::GraspRect;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The on-disk layouts read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetKind {
    /// `*r.png` + `*cpos.txt` rectangles.
    Cornell,
    /// `*_RGB.png`, `*_grasps.txt`, optional depth and mask (also what `synth` writes).
    Jacquard,
}

grasp_models::named_enum!(DatasetKind, "dataset kind", DatasetKind::Cornell => "cornell", DatasetKind::Jacquard => "jacquard" | "synth");

/// `KIND:PATH` on the command line (and in a run's `state.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DatasetSpec {
    /// The layout.
    pub kind: DatasetKind,
    /// Its root directory.
    pub path: PathBuf,
}

impl FromStr for DatasetSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, path) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}`: expected KIND:PATH, e.g. cornell:../shared/data/cornell-crops"))?;
        Ok(DatasetSpec {
            kind: kind.parse().map_err(|e: grasp_models::names::UnknownName| e.to_string())?,
            path: PathBuf::from(path),
        })
    }
}

impl TryFrom<String> for DatasetSpec {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<DatasetSpec> for String {
    fn from(d: DatasetSpec) -> String {
        d.to_string()
    }
}

impl std::fmt::Display for DatasetSpec {
    /// `KIND:PATH`, what [`FromStr`] reads.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.path.display())
    }
}

/// Why a dataset file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An image could not be decoded.
    #[error("{path}: cannot decode image: {message}")]
    Image {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },
    /// An annotation line is malformed.
    #[error("{path}:{line}: {message}")]
    Annotation {
        /// The file.
        path: PathBuf,
        /// Its line (1-based).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A file is well-formed but unusable.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A directory holds no samples.
    #[error("no usable samples in {path} (looked for {pattern})")]
    Empty {
        /// The directory.
        path: PathBuf,
        /// The file pattern looked for.
        pattern: &'static str,
    },
}

/// Where one sample's files are.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRef {
    /// The layout.
    pub kind: DatasetKind,
    /// The colour image.
    pub rgb: PathBuf,
    /// The grasp annotations.
    pub grasps: PathBuf,
    /// The depth image, if any.
    pub depth: Option<PathBuf>,
    /// The object mask, if any.
    pub mask: Option<PathBuf>,
    /// Samples with the same object id go to the same split (Cornell: scene; Jacquard: object).
    pub object_id: String,
    /// Which `--dataset` of a mix it came from (its position): each is split on its own.
    pub dataset: usize,
}

/// One decoded sample in its own pixel coordinates.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Packed RGB8.
    pub rgb: Vec<u8>,
    /// Ground-truth grasp rectangles, pixels.
    pub rects: Vec<GraspRect>,
    /// Perfect depth in metres, `width × height`.
    pub depth: Option<Vec<f32>>,
    /// Object mask in {0, 1}, `width × height`.
    pub mask: Option<Vec<f32>>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DatasetError + '_ {
    move |source| DatasetError::Io { path: path.to_path_buf(), source }
}

fn sorted_files(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(io(&d))? {
            let p = e.map_err(io(&d))?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Lists the samples of a dataset directory (recursively), in a stable order.
pub fn scan(spec: &DatasetSpec) -> Result<Vec<SampleRef>, DatasetError> {
    let files = sorted_files(&spec.path)?;
    let exists = |p: &PathBuf| files.binary_search(p).is_ok();
    let mut out = vec![];
    let pattern = match spec.kind {
        DatasetKind::Cornell => {
            for f in &files {
                let Some(name) = f.file_name().and_then(|n| n.to_str()) else { continue };
                let Some(stem) = name.strip_suffix("r.png") else { continue };
                let grasps = f.with_file_name(format!("{stem}cpos.txt"));
                if !exists(&grasps) {
                    log::warn!("{}: no {stem}cpos.txt beside it; skipped", f.display());
                    continue;
                }
                let depth = Some(f.with_file_name(format!("{stem}d.tiff"))).filter(exists);
                // Scene id: `pcd0100_1` and `pcd0100_2` are crops of one scene.
                let scene =
                    stem.split('_').next().unwrap_or(stem).trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
                out.push(SampleRef {
                    kind: spec.kind,
                    rgb: f.clone(),
                    grasps,
                    depth,
                    mask: None,
                    object_id: scene.to_string(),
                    dataset: 0,
                });
            }
            "*r.png with *cpos.txt"
        }
        DatasetKind::Jacquard => {
            for f in &files {
                let Some(name) = f.file_name().and_then(|n| n.to_str()) else { continue };
                let Some(stem) = name.strip_suffix("_RGB.png") else { continue };
                let grasps = f.with_file_name(format!("{stem}_grasps.txt"));
                if !exists(&grasps) {
                    log::warn!("{}: no {stem}_grasps.txt beside it; skipped", f.display());
                    continue;
                }
                let depth = Some(f.with_file_name(format!("{stem}_perfect_depth.tiff"))).filter(exists);
                let mask = Some(f.with_file_name(format!("{stem}_mask.png"))).filter(exists);
                let object = stem.split_once('_').map(|(_, id)| id).unwrap_or(stem);
                out.push(SampleRef {
                    kind: spec.kind,
                    rgb: f.clone(),
                    grasps,
                    depth,
                    mask,
                    object_id: object.to_string(),
                    dataset: 0,
                });
            }
            "<n>_<id>_RGB.png with <n>_<id>_grasps.txt"
        }
    };
    if out.is_empty() {
        return Err(DatasetError::Empty { path: spec.path.clone(), pattern });
    }
    Ok(out)
}

fn number(path: &Path, line: usize, s: &str, what: &str) -> Result<f64, DatasetError> {
    let v: f64 = s.trim().parse().map_err(|_| DatasetError::Annotation {
        path: path.into(),
        line,
        message: format!("{what}: `{s}` is not a number"),
    })?;
    Ok(v)
}

/// Cornell `cpos.txt`: 4 lines `x y` per rectangle; the first edge spans the opening. Rectangles with
/// NaN corners (present in the original Cornell files) are skipped, as every public loader does.
pub fn parse_cornell(path: &Path, text: &str) -> Result<Vec<GraspRect>, DatasetError> {
    let mut points = vec![];
    for (i, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let mut it = l.split_whitespace();
        let (Some(x), Some(y), None) = (it.next(), it.next(), it.next()) else {
            return Err(DatasetError::Annotation {
                path: path.into(),
                line: i + 1,
                message: format!("expected `x y`, got `{l}`"),
            });
        };
        points.push((number(path, i + 1, x, "x")?, number(path, i + 1, y, "y")?, i + 1));
    }
    if points.len() % 4 != 0 {
        return Err(DatasetError::Annotation {
            path: path.into(),
            line: points.last().map_or(0, |p| p.2),
            message: format!("{} points is not a whole number of rectangles (4 lines each)", points.len()),
        });
    }
    let mut rects = vec![];
    for c in points.chunks(4) {
        if c.iter().any(|p| !p.0.is_finite() || !p.1.is_finite()) {
            continue;
        }
        let r = GraspRect::from_corners([(c[0].0, c[0].1), (c[1].0, c[1].1), (c[2].0, c[2].1), (c[3].0, c[3].1)]);
        if r.length < 1e-6 || r.jaw < 1e-6 {
            return Err(DatasetError::Annotation {
                path: path.into(),
                line: c[0].2,
                message: "degenerate rectangle (zero-length edge)".into(),
            });
        }
        rects.push(r);
    }
    Ok(rects)
}

/// Jacquard `_grasps.txt`: `x;y;θ°;opening;jaw` per line (pixels, y down, θ clockwise on screen,
/// so Φ = −θ). Rows differing only in jaw size are distinct rectangles, as in the dataset.
pub fn parse_jacquard(path: &Path, text: &str) -> Result<Vec<GraspRect>, DatasetError> {
    let mut rects = vec![];
    for (i, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<&str> = l.split(';').collect();
        if f.len() != 5 {
            return Err(DatasetError::Annotation {
                path: path.into(),
                line: i + 1,
                message: format!("expected 5 fields `x;y;theta;opening;jaw`, got {}", f.len()),
            });
        }
        let v: Vec<f64> = f
            .iter()
            .zip(["x", "y", "theta", "opening", "jaw"])
            .map(|(s, w)| number(path, i + 1, s, w))
            .collect::<Result<_, _>>()?;
        if v.iter().any(|x| !x.is_finite()) || v[3] <= 0.0 || v[4] <= 0.0 {
            return Err(DatasetError::Annotation {
                path: path.into(),
                line: i + 1,
                message: format!("non-finite or non-positive value in `{l}`"),
            });
        }
        let angle = grasp_models::decode::wrap_half_turn((-v[2]).to_radians() as f32) as f64;
        rects.push(GraspRect { cx: v[0], cy: v[1], angle, length: v[3], jaw: v[4] });
    }
    Ok(rects)
}

fn read_rgb(path: &Path) -> Result<(Vec<u8>, usize, usize), DatasetError> {
    let img =
        image::open(path).map_err(|e| DatasetError::Image { path: path.into(), message: e.to_string() })?.to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    Ok((img.into_raw(), w, h))
}

/// Reads a single-channel float32 TIFF (Jacquard perfect depth, LZW).
pub fn read_depth_tiff(path: &Path) -> Result<(Vec<f32>, usize, usize), DatasetError> {
    use tiff::decoder::{Decoder, DecodingResult};
    let bad = |m: String| DatasetError::Image { path: path.into(), message: m };
    let file = std::fs::File::open(path).map_err(io(path))?;
    let mut dec = Decoder::new(std::io::BufReader::new(file)).map_err(|e| bad(e.to_string()))?;
    let (w, h) = dec.dimensions().map_err(|e| bad(e.to_string()))?;
    let values = match dec.read_image().map_err(|e| bad(e.to_string()))? {
        DecodingResult::F32(v) => v,
        DecodingResult::F64(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::U16(v) => v.into_iter().map(|x| x as f32 / 1000.0).collect(), // millimetres
        _ => return Err(bad("expected a float32 (or 16-bit millimetre) single-channel depth image".into())),
    };
    if values.len() != (w * h) as usize {
        return Err(bad(format!("{} values for {w}×{h}: not a single-channel image", values.len())));
    }
    Ok((values, w as usize, h as usize))
}

/// Decodes a sample; checks that every map has the RGB image's size.
pub fn load(r: &SampleRef) -> Result<Sample, DatasetError> {
    let (rgb, width, height) = read_rgb(&r.rgb)?;
    let text = std::fs::read_to_string(&r.grasps).map_err(io(&r.grasps))?;
    let rects = match r.kind {
        DatasetKind::Cornell => parse_cornell(&r.grasps, &text)?,
        DatasetKind::Jacquard => parse_jacquard(&r.grasps, &text)?,
    };
    let same_size = |p: &Path, w: usize, h: usize| {
        if (w, h) != (width, height) {
            return Err(DatasetError::Invalid {
                path: p.into(),
                message: format!("is {w}×{h} but the RGB image is {width}×{height}"),
            });
        }
        Ok(())
    };
    let depth = match &r.depth {
        Some(p) => {
            let (d, w, h) = read_depth_tiff(p)?;
            same_size(p, w, h)?;
            Some(d)
        }
        None => None,
    };
    let mask = match &r.mask {
        Some(p) => {
            let img =
                image::open(p).map_err(|e| DatasetError::Image { path: p.clone(), message: e.to_string() })?.to_luma8();
            same_size(p, img.width() as usize, img.height() as usize)?;
            Some(img.into_raw().into_iter().map(|v| if v > 127 { 1.0 } else { 0.0 }).collect())
        }
        None => None,
    };
    Ok(Sample { width, height, rgb, rects, depth, mask })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    #[test]
    fn cornell_rectangles() {
        let p = Path::new("x/pcd0100_1cpos.txt");
        // Opening edge along +x (20 px), jaw 10 px.
        let r = parse_cornell(p, "10 10\n30 10\n30 20\n10 20\nNaN NaN\n1 1\n2 2\n3 3\n").unwrap();
        assert_eq!(r.len(), 1, "the NaN rectangle is skipped");
        assert_eq!((r[0].cx, r[0].cy, r[0].length, r[0].jaw), (20.0, 15.0, 20.0, 10.0));
        assert!(r[0].angle.abs() < 1e-12);
        // Opening edge going up the screen: +90°.
        let r = parse_cornell(p, "0 20\n0 0\n5 0\n5 20\n").unwrap();
        assert!((r[0].angle - PI / 2.0).abs() < 1e-12, "{}", r[0].angle);
        let e = parse_cornell(p, "1 2\n3 4\n5 x\n7 8\n").unwrap_err().to_string();
        assert!(e.contains("pcd0100_1cpos.txt:3") && e.contains("`x`"), "{e}");
        let e = parse_cornell(p, "1 2\n3 4\n5 6\n").unwrap_err().to_string();
        assert!(e.contains("whole number"), "{e}");
    }

    #[test]
    fn jacquard_rows() {
        let p = Path::new("0_abc_grasps.txt");
        let r = parse_jacquard(p, "532.8;517.9;-67.8;184.5;25.7\n10;20;30;40;5\n").unwrap();
        assert_eq!(r.len(), 2);
        // θ is clockwise on screen: −67.8° clockwise is +67.8° counter-clockwise.
        assert!((r[0].angle - 67.8f64.to_radians()).abs() < 1e-6);
        assert!((r[1].angle + 30f64.to_radians()).abs() < 1e-6);
        assert_eq!((r[0].length, r[0].jaw), (184.5, 25.7));
        let e = parse_jacquard(p, "1;2;3;4\n").unwrap_err().to_string();
        assert!(e.contains("0_abc_grasps.txt:1") && e.contains("5 fields"), "{e}");
        assert!(parse_jacquard(p, "1;2;3;-4;5\n").is_err());
    }

    #[test]
    fn spec_parsing() {
        let s: DatasetSpec = "cornell:/data/c".parse().unwrap();
        assert_eq!((s.kind, s.path), (DatasetKind::Cornell, PathBuf::from("/data/c")));
        assert!("coco:/x".parse::<DatasetSpec>().unwrap_err().contains("coco"));
        assert!("/x".parse::<DatasetSpec>().unwrap_err().contains("KIND:PATH"));
    }

    #[test]
    fn empty_directory_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let e = scan(&DatasetSpec { kind: DatasetKind::Jacquard, path: d.path().into() }).unwrap_err();
        assert!(e.to_string().contains("no usable samples"), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(grasp_fuzz::config())]
        /// Annotation files as read from disk: any text gives rectangles or an error naming the
        /// file, never a panic; what parses is finite.
        #[test]
        fn fuzz_cornell_and_jacquard_annotations(
            cornell in grasp_fuzz::mutated_text("10 10\n30 10\n30 20\n10 20\nNaN NaN\n1 1\n2 2\n3 3\n0 20\n0 0\n5 0\n5 20\n"),
            jacquard in grasp_fuzz::mutated_text("532.8;517.9;-67.8;184.5;25.7\n10;20;30;40;5\n"),
        ) {
            for r in parse_cornell(Path::new("f/x1cpos.txt"), &cornell).into_iter().flatten() {
                proptest::prop_assert!(r.cx.is_finite() && r.cy.is_finite() && r.length.is_finite() && r.angle.is_finite());
            }
            for r in parse_jacquard(Path::new("f/0_x_grasps.txt"), &jacquard).into_iter().flatten() {
                proptest::prop_assert!(r.cx.is_finite() && r.length.is_finite() && r.jaw.is_finite());
            }
        }
    }
}
