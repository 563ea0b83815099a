//! The ONNX grasp-model contract, written down once. `models/README.md` describes the same
//! contract for people; a test checks that every key named here appears there.
//!
//! - input `rgb`: float32, NCHW `[1, 3, S, S]`, S = `grasp.input_size`, normalised as
//!   `grasp.normalisation` says;
//! - outputs `q`, `cos`, `sin`, `width` (and optionally `aux`): float32 `[1, 1, S, S]`;
//! - `metadata_props`: the keys below make the file self-describing.

use crate::arch::{ArchKind, AuxTask};
use crate::decode::{DecodeParams, PeakMode};
use crate::names::NamedValue;
use std::collections::BTreeMap;
use std::str::FromStr;

/// The largest input side a model may declare, pixels (memory and time grow with its square).
pub const MAX_INPUT_SIZE: usize = 2048;

pub use crate::layout::{
    AUX_OUTPUT, DEFAULT_INPUT_SIZE, DEFAULT_WIDTH_SCALE_PX, GRASP_OUTPUTS, INPUT_CHANNELS, INPUT_NAME,
};
/// Bumped when a reader of the previous version would misread a file. Version 2 added
/// `grasp.mm_per_px` and the `table_view` image fit; version-1 files still load (no scale,
/// centre crop).
pub const CONTRACT_VERSION: u32 = 2;

/// The oldest contract version this build reads.
pub const OLDEST_READABLE_VERSION: u32 = 1;

/// The largest declared scale accepted, table millimetres per input pixel.
pub const MAX_MM_PER_PX: f32 = 100.0;

/// The metadata keys, one constant each.
pub mod keys {
    /// Integer; must equal [`super::CONTRACT_VERSION`].
    pub const CONTRACT_VERSION: &str = "grasp.contract_version";
    /// `ggcnn` or `mtgcnn`.
    pub const ARCHITECTURE: &str = "grasp.architecture";
    /// S, the square input side in pixels.
    pub const INPUT_SIZE: &str = "grasp.input_size";
    /// `rgb`.
    pub const CHANNEL_ORDER: &str = "grasp.channel_order";
    /// How pixel values become inputs.
    pub const NORMALISATION: &str = "grasp.normalisation";
    /// How an image is mapped onto the input.
    pub const IMAGE_FIT: &str = "grasp.image_fit";
    /// Width output × this = opening in input pixels.
    pub const WIDTH_SCALE_PX: &str = "grasp.width_scale_px";
    /// Gaussian σ smoothing Q, pixels.
    pub const Q_SIGMA_PX: &str = "grasp.q_sigma_px";
    /// Gaussian σ smoothing the angle maps, pixels.
    pub const ANGLE_SIGMA_PX: &str = "grasp.angle_sigma_px";
    /// Gaussian σ smoothing the width map, pixels.
    pub const WIDTH_SIGMA_PX: &str = "grasp.width_sigma_px";
    /// Minimum distance between reported peaks, pixels.
    pub const PEAK_MIN_DISTANCE_PX: &str = "grasp.peak_min_distance_px";
    /// Lowest smoothed Q of a reported peak.
    pub const PEAK_THRESHOLD: &str = "grasp.peak_threshold";
    /// `depth`, `mask` or `none`.
    pub const AUX_TASK: &str = "grasp.aux_task";
    /// Free text: how the model was made.
    pub const PROVENANCE: &str = "grasp.provenance";
    /// Version 2: table millimetres per input pixel the model was trained at, or `unknown`.
    pub const MM_PER_PX: &str = "grasp.mm_per_px";
    /// Every key; all are required (provenance is free text and may be empty).
    pub const ALL: &[&str] = &[
        CONTRACT_VERSION,
        ARCHITECTURE,
        INPUT_SIZE,
        CHANNEL_ORDER,
        NORMALISATION,
        IMAGE_FIT,
        WIDTH_SCALE_PX,
        Q_SIGMA_PX,
        ANGLE_SIGMA_PX,
        WIDTH_SIGMA_PX,
        PEAK_MIN_DISTANCE_PX,
        PEAK_THRESHOLD,
        AUX_TASK,
        PROVENANCE,
        MM_PER_PX,
    ];
}

/// Channel order of the input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOrder {
    /// Red, green, blue.
    Rgb,
}

/// How pixel values become network inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalisation {
    /// Paper §III-D: values /255 to [0, 1], then the mean of the whole image (all channels) is
    /// subtracted, as in GG-CNN's `Image.normalise`.
    Div255SubImageMean,
}

/// How an image of any size is mapped onto the square input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFit {
    /// Crop the largest centred square, then resize it bilinearly to S×S. Grasps are mapped back
    /// to the original image's pixels by the inverse (scale, then offset).
    CenterCrop,
    /// Version 2: the input is the table view, an S×S top-down image of the table at
    /// `grasp.mm_per_px`, warped through the camera's calibration by the runtime
    /// (`grasp_calib::view`); the model never sees a raw camera image.
    TableView,
}

crate::named_enum!(ChannelOrder, "channel order", ChannelOrder::Rgb => "rgb");
crate::named_enum!(Normalisation, "normalisation", Normalisation::Div255SubImageMean => "div255_sub_image_mean");
crate::named_enum!(ImageFit, "image fit", ImageFit::CenterCrop => "center_crop", ImageFit::TableView => "table_view");

/// Everything a reader needs to use a grasp model, parsed from its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// GG-CNN or MTG-CNN.
    pub architecture: ArchKind,
    /// S, the square input side in pixels.
    pub input_size: usize,
    /// Channel order of the input.
    pub channel_order: ChannelOrder,
    /// How pixel values become inputs.
    pub normalisation: Normalisation,
    /// How an image is mapped onto the input.
    pub image_fit: ImageFit,
    /// Defaults for decoding; a user may override them.
    pub decode: DecodeParams,
    /// The auxiliary task the model was trained with (its output may have been stripped).
    pub aux_task: Option<AuxTask>,
    /// Whether the file has the `aux` output.
    pub has_aux_output: bool,
    /// How the model was made (free text, usually JSON).
    pub provenance: String,
    /// Table millimetres per input pixel the model was trained at; `None`: unknown (and always
    /// for version-1 files).
    pub mm_per_px: Option<f32>,
}

/// Reads metadata values, each refusal naming its key, its value and what was expected.
struct MetadataReader<'a>(&'a BTreeMap<String, String>);

impl MetadataReader<'_> {
    fn get(&self, k: &'static str) -> Result<&str, ContractError> {
        self.0.get(k).map(String::as_str).ok_or(ContractError::MissingMetadata(k))
    }

    fn bad(&self, key: &'static str, expected: String) -> ContractError {
        ContractError::BadMetadata { key, value: self.0.get(key).cloned().unwrap_or_default(), expected }
    }

    fn parse<T: FromStr>(&self, k: &'static str, expected: &str) -> Result<T, ContractError> {
        self.get(k)?.parse().map_err(|_| self.bad(k, expected.to_string()))
    }

    fn named<T: FromStr + NamedValue>(&self, k: &'static str) -> Result<T, ContractError> {
        self.get(k)?.parse().map_err(|_| self.bad(k, format!("one of: {}", T::NAMES.join(", "))))
    }

    /// A finite number within `[min, max]`.
    fn number(&self, k: &'static str, min: f32, max: f32) -> Result<f32, ContractError> {
        let expected = || match min {
            f32::MIN => format!("a finite number up to {max}"),
            f32::MIN_POSITIVE => format!("a positive number up to {max}"),
            _ => format!("a finite number within [{min}, {max}]"),
        };
        let x: f32 = self.parse(k, &expected())?;
        if !(x.is_finite() && (min..=max).contains(&x)) {
            return Err(self.bad(k, expected()));
        }
        Ok(x)
    }
}

impl ModelInfo {
    /// The paper's defaults for a given architecture.
    pub fn new(architecture: ArchKind, aux_task: Option<AuxTask>, input_size: usize) -> Self {
        ModelInfo {
            architecture,
            input_size,
            channel_order: ChannelOrder::Rgb,
            normalisation: Normalisation::Div255SubImageMean,
            image_fit: ImageFit::CenterCrop,
            decode: DecodeParams::default(),
            aux_task,
            has_aux_output: false,
            provenance: String::new(),
            mm_per_px: None,
        }
    }

    /// The metadata_props entries for this model (all keys of [`keys::ALL`]).
    pub fn to_metadata(&self) -> Vec<(String, String)> {
        let d = &self.decode;
        let kv = [
            (keys::CONTRACT_VERSION, CONTRACT_VERSION.to_string()),
            (keys::ARCHITECTURE, self.architecture.as_str().to_string()),
            (keys::INPUT_SIZE, self.input_size.to_string()),
            (keys::CHANNEL_ORDER, self.channel_order.as_str().to_string()),
            (keys::NORMALISATION, self.normalisation.as_str().to_string()),
            (keys::IMAGE_FIT, self.image_fit.as_str().to_string()),
            (keys::WIDTH_SCALE_PX, d.width_scale.to_string()),
            (keys::Q_SIGMA_PX, d.q_sigma.to_string()),
            (keys::ANGLE_SIGMA_PX, d.angle_sigma.to_string()),
            (keys::WIDTH_SIGMA_PX, d.width_sigma.to_string()),
            (keys::PEAK_MIN_DISTANCE_PX, d.peak_min_distance.to_string()),
            (keys::PEAK_THRESHOLD, d.peak_threshold.to_string()),
            (keys::AUX_TASK, self.aux_task.map_or("none", |t| t.as_str()).to_string()),
            (keys::PROVENANCE, self.provenance.clone()),
            (keys::MM_PER_PX, self.mm_per_px.map_or("unknown".to_string(), |m| m.to_string())),
        ];
        kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// Parses and checks metadata. `has_aux_output` is filled from the graph by the caller.
    pub fn from_metadata(meta: &BTreeMap<String, String>) -> Result<Self, ContractError> {
        let m = MetadataReader(meta);
        let version: u32 = m.parse(keys::CONTRACT_VERSION, "an integer")?;
        if !(OLDEST_READABLE_VERSION..=CONTRACT_VERSION).contains(&version) {
            let expected = format!(
                "{OLDEST_READABLE_VERSION} to {CONTRACT_VERSION} (this build reads contract versions {OLDEST_READABLE_VERSION} to {CONTRACT_VERSION})"
            );
            return Err(m.bad(keys::CONTRACT_VERSION, expected));
        }
        // Version 1 has no scale key: its models are centre-cropped at an unknown scale.
        let mm_per_px = match (version, m.0.get(keys::MM_PER_PX).map(String::as_str)) {
            (1, _) | (_, Some("unknown")) => None,
            _ => Some(m.number(keys::MM_PER_PX, f32::MIN_POSITIVE, MAX_MM_PER_PX)?),
        };
        let input_size: usize = m.parse(keys::INPUT_SIZE, "a positive integer")?;
        crate::arch::Architecture::check_input_size(input_size).map_err(|e| m.bad(keys::INPUT_SIZE, e.to_string()))?;
        if input_size > MAX_INPUT_SIZE {
            return Err(m.bad(keys::INPUT_SIZE, format!("at most {MAX_INPUT_SIZE}")));
        }
        // Decoding costs grow with σ and the peak distance: each is bounded by the input size
        // (a σ of 1e7 would hang the first frame, after the arm has connected). Q is at most 1,
        // so a larger threshold finds nothing; a negative one keeps every peak.
        let size = input_size as f32;
        let aux_task = match m.get(keys::AUX_TASK)? {
            "none" => None,
            v => Some(v.parse::<AuxTask>().map_err(|_| m.bad(keys::AUX_TASK, "one of: none, depth, mask".into()))?),
        };
        let width_scale = m.number(keys::WIDTH_SCALE_PX, f32::MIN_POSITIVE, 10.0 * size)?;
        let peak_threshold = m.number(keys::PEAK_THRESHOLD, f32::MIN, 1.0)?;
        let peak_min_distance: usize = m.parse(keys::PEAK_MIN_DISTANCE_PX, "a non-negative integer")?;
        if peak_min_distance > input_size {
            return Err(m.bad(keys::PEAK_MIN_DISTANCE_PX, format!("at most the input size {input_size}")));
        }
        let image_fit: ImageFit = m.named(keys::IMAGE_FIT)?;
        if image_fit == ImageFit::TableView && mm_per_px.is_none() {
            return Err(m.bad(keys::MM_PER_PX, "a scale in mm per pixel: a `table_view` model must declare one".into()));
        }
        if version == 1 && image_fit != ImageFit::CenterCrop {
            return Err(m.bad(keys::IMAGE_FIT, "`center_crop` (the only fit of contract version 1)".into()));
        }
        Ok(ModelInfo {
            architecture: m.named(keys::ARCHITECTURE)?,
            input_size,
            channel_order: m.named(keys::CHANNEL_ORDER)?,
            normalisation: m.named(keys::NORMALISATION)?,
            image_fit,
            decode: DecodeParams {
                width_scale,
                q_sigma: m.number(keys::Q_SIGMA_PX, 0.0, size)?,
                angle_sigma: m.number(keys::ANGLE_SIGMA_PX, 0.0, size)?,
                width_sigma: m.number(keys::WIDTH_SIGMA_PX, 0.0, size)?,
                peak_min_distance,
                peak_threshold,
                mode: PeakMode::LocalMaxima,
            },
            aux_task,
            has_aux_output: false,
            // Required (models/README.md), though it may be empty.
            provenance: m.get(keys::PROVENANCE)?.to_string(),
            mm_per_px,
        })
    }

    /// Shape of every input and output tensor.
    pub fn input_shape(&self) -> [usize; 4] {
        [1, INPUT_CHANNELS, self.input_size, self.input_size]
    }
    /// Shape of every output tensor.
    pub fn output_shape(&self) -> [usize; 4] {
        [1, 1, self.input_size, self.input_size]
    }
}

/// What is wrong with a file, said precisely enough to fix it.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ContractError {
    /// The bytes are not an ONNX model.
    #[error("not an ONNX model: {0}")]
    NotOnnx(String),
    /// The model has no graph.
    #[error("the model has no graph")]
    NoGraph,
    /// A required metadata key is absent.
    #[error("metadata key `{0}` is missing (is this a grasp-edge model? see models/README.md)")]
    MissingMetadata(&'static str),
    /// A metadata value is malformed.
    #[error("metadata `{key}` = `{value}`: expected {expected}")]
    BadMetadata {
        /// The key.
        key: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        expected: String,
    },
    /// The inputs are not the one `rgb` input.
    #[error("the graph must have exactly one input named `{INPUT_NAME}`, found: {0:?}")]
    BadInputs(Vec<String>),
    /// A required output is missing (name, outputs present).
    #[error("output `{0}` is missing (outputs found: {1:?})")]
    MissingOutput(&'static str, Vec<String>),
    /// An output the contract does not know.
    #[error("unexpected output `{0}` (allowed: q, cos, sin, width, aux)")]
    UnexpectedOutput(String),
    /// A tensor is not float32.
    #[error("`{name}` has element type {found} (expected float32)")]
    BadDtype {
        /// The tensor.
        name: String,
        /// Its ONNX data type.
        found: i32,
    },
    /// A tensor's shape disagrees with the input size.
    #[error("`{name}` has shape {found:?}, expected {expected:?}")]
    BadShape {
        /// The tensor.
        name: String,
        /// Its shape.
        found: Vec<i64>,
        /// The contract's shape.
        expected: Vec<usize>,
    },
    /// An `aux` output without `grasp.aux_task`.
    #[error("the model's `aux` output is present but metadata `grasp.aux_task` is `none`")]
    AuxWithoutTask,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> BTreeMap<String, String> {
        ModelInfo::new(ArchKind::MtgCnn, Some(AuxTask::Depth), 300).to_metadata().into_iter().collect()
    }

    #[test]
    fn metadata_round_trips() {
        let mut info = ModelInfo::new(ArchKind::MtgCnn, Some(AuxTask::Depth), 300);
        info.provenance = "trained on x".into();
        let m: BTreeMap<_, _> = info.to_metadata().into_iter().collect();
        assert_eq!(m.len(), keys::ALL.len());
        assert_eq!(ModelInfo::from_metadata(&m).unwrap(), info);
    }

    #[test]
    fn missing_and_bad_metadata_are_named() {
        let mut m = meta();
        m.remove(keys::NORMALISATION);
        assert_eq!(ModelInfo::from_metadata(&m).unwrap_err(), ContractError::MissingMetadata(keys::NORMALISATION));
        let mut m = meta();
        m.insert(keys::CHANNEL_ORDER.into(), "bgr".into());
        let e = ModelInfo::from_metadata(&m).unwrap_err().to_string();
        assert!(e.contains("grasp.channel_order") && e.contains("bgr") && e.contains("rgb"), "{e}");
        let mut m = meta();
        m.insert(keys::INPUT_SIZE.into(), "301".into());
        assert!(ModelInfo::from_metadata(&m).unwrap_err().to_string().contains("multiple of 4"));
        let mut m = meta();
        m.insert(keys::Q_SIGMA_PX.into(), "-1".into());
        assert!(ModelInfo::from_metadata(&m).unwrap_err().to_string().contains("grasp.q_sigma_px"));
        // Values that would hang or exhaust the decoder are refused by name.
        for (key, value) in [
            (keys::Q_SIGMA_PX, "1e5"),
            (keys::ANGLE_SIGMA_PX, "301"),
            (keys::WIDTH_SIGMA_PX, "1e30"),
            (keys::PEAK_MIN_DISTANCE_PX, "100000"),
            (keys::WIDTH_SCALE_PX, "1e9"),
            (keys::PEAK_THRESHOLD, "7"),
            (keys::INPUT_SIZE, "4096"),
        ] {
            let mut m = meta();
            m.insert(key.into(), value.into());
            match ModelInfo::from_metadata(&m) {
                Err(ContractError::BadMetadata { key: k, .. }) => assert_eq!(k, key, "{value}"),
                other => panic!("{key} = {value}: {other:?}"),
            }
        }
        let mut m = meta();
        m.remove(keys::PROVENANCE);
        assert_eq!(ModelInfo::from_metadata(&m).unwrap_err(), ContractError::MissingMetadata(keys::PROVENANCE));
        let mut m = meta();
        m.insert(keys::CONTRACT_VERSION.into(), "3".into());
        assert!(ModelInfo::from_metadata(&m).unwrap_err().to_string().contains("contract versions 1 to 2"));
    }

    #[test]
    fn version_2_declares_a_scale_and_version_1_files_still_load() {
        let mut info = ModelInfo::new(ArchKind::GgCnn, None, 224);
        info.provenance = "test".into();
        let v2 = |info: &ModelInfo| info.to_metadata().into_iter().collect::<BTreeMap<String, String>>();
        // Unknown scale round-trips as `unknown`.
        let m = v2(&info);
        assert_eq!(m[keys::CONTRACT_VERSION], "2");
        assert_eq!(m[keys::MM_PER_PX], "unknown");
        assert_eq!(ModelInfo::from_metadata(&m).unwrap(), info);
        // A table-view model with its scale round-trips; without a scale it is refused by name.
        info.mm_per_px = Some(0.8);
        info.image_fit = ImageFit::TableView;
        assert_eq!(ModelInfo::from_metadata(&v2(&info)).unwrap(), info);
        let mut m = v2(&info);
        m.insert(keys::MM_PER_PX.into(), "unknown".into());
        let e = ModelInfo::from_metadata(&m).unwrap_err().to_string();
        assert!(e.contains("grasp.mm_per_px") && e.contains("table_view"), "{e}");
        for bad in ["0", "-1", "NaN", "1e6", "one"] {
            m.insert(keys::MM_PER_PX.into(), bad.into());
            assert!(matches!(
                ModelInfo::from_metadata(&m),
                Err(ContractError::BadMetadata { key: keys::MM_PER_PX, .. })
            ));
        }
        // A version-1 file: no scale key, centre crop; a table view needs version 2.
        let mut m = v2(&ModelInfo { image_fit: ImageFit::CenterCrop, mm_per_px: None, ..info.clone() });
        m.insert(keys::CONTRACT_VERSION.into(), "1".into());
        m.remove(keys::MM_PER_PX);
        let v1 = ModelInfo::from_metadata(&m).unwrap();
        assert_eq!((v1.image_fit, v1.mm_per_px), (ImageFit::CenterCrop, None));
        m.insert(keys::IMAGE_FIT.into(), "table_view".into());
        assert!(ModelInfo::from_metadata(&m).is_err());
        // Version 2 requires the key (written as `unknown` when the scale is not known).
        let mut m = v2(&info);
        m.remove(keys::MM_PER_PX);
        assert_eq!(ModelInfo::from_metadata(&m).unwrap_err(), ContractError::MissingMetadata(keys::MM_PER_PX));
    }

    #[test]
    fn readme_documents_every_key_and_output() {
        let readme = include_str!("../README.md");
        for k in keys::ALL.iter().chain(GRASP_OUTPUTS.iter()).chain([&AUX_OUTPUT, &INPUT_NAME]) {
            assert!(readme.contains(&format!("`{k}`")), "models/README.md does not document `{k}`");
        }
        for v in [Normalisation::NAMES, ImageFit::NAMES, ChannelOrder::NAMES, ArchKind::NAMES, AuxTask::NAMES] {
            for n in v {
                assert!(readme.contains(&format!("`{n}`")), "models/README.md does not document value `{n}`");
            }
        }
    }
}
