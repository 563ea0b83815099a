//! Architectures as data. The training crate builds its tch modules from these specs and the ONNX
//! writer builds its graph from the same specs, so the trained net and the exported file cannot drift.
//!
//! GG-CNN follows Morrison et al. (IJRR 2020, "GG-CNN2"); MTG-CNN (the paper) shares GG-CNN's first
//! half and duplicates the second half into an auxiliary branch with one output head.

/// One layer of a branch. Every convolution is followed by ReLU except the 1×1 output heads.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// A convolution, same padding.
    Conv(ConvSpec),
    /// Max pooling, kernel = stride.
    MaxPool {
        /// Kernel and stride.
        size: usize,
    },
    /// ×2 bilinear up-sampling, `half_pixel` coordinates (PyTorch `align_corners=False`).
    Upsample2x,
}

/// One convolution: its parameters' names and shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvSpec {
    /// Parameter name prefix, e.g. `shared.conv1` → `shared.conv1.weight`, `shared.conv1.bias`.
    pub name: String,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels (filters).
    pub out_channels: usize,
    /// Square kernel side.
    pub kernel: usize,
    /// Dilation (1: none).
    pub dilation: usize,
    /// Followed by ReLU.
    pub relu: bool,
}

impl ConvSpec {
    /// "Same" padding for odd kernels, so every layer keeps the spatial size.
    pub fn padding(&self) -> usize {
        (self.kernel - 1) * self.dilation / 2
    }
    /// `[out, in, k, k]`.
    pub fn weight_shape(&self) -> [usize; 4] {
        [self.out_channels, self.in_channels, self.kernel, self.kernel]
    }
    /// The weight's parameter name.
    pub fn weight_name(&self) -> String {
        format!("{}.weight", self.name)
    }
    /// The bias's parameter name.
    pub fn bias_name(&self) -> String {
        format!("{}.bias", self.name)
    }
}

/// The auxiliary task of MTG-CNN's second branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuxTask {
    /// Perfect depth normalised to [0, 1].
    Depth,
    /// Binary object mask ("saliency" in the paper).
    Mask,
}

crate::named_enum!(AuxTask, "auxiliary task", AuxTask::Depth => "depth", AuxTask::Mask => "mask" | "saliency");

/// The network families of the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchKind {
    /// GG-CNN2, the baseline.
    GgCnn,
    /// MTG-CNN: GG-CNN with an auxiliary branch (training only).
    MtgCnn,
}

crate::named_enum!(ArchKind, "architecture", ArchKind::GgCnn => "ggcnn", ArchKind::MtgCnn => "mtgcnn");

/// An architecture that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchError {
    /// GG-CNN was asked for an auxiliary task.
    #[error("ggcnn has no auxiliary branch (got --aux {0})")]
    AuxWithoutBranch(AuxTask),
    /// The input size does not survive the pools and up-samplings.
    #[error("input size {0} must be a positive multiple of {DOWNSAMPLE}")]
    InputSize(usize),
}

/// A 1×1 output head: a convolution without activation, producing one named output map.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    /// ONNX output name (see [`crate::layout`]).
    pub output: &'static str,
    /// The 1×1 convolution.
    pub conv: ConvSpec,
}

/// The second half of the network: layers, then 1×1 output heads.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    /// Layers in order.
    pub layers: Vec<Layer>,
    /// Output heads, each reading the last layer.
    pub heads: Vec<Head>,
}

/// A whole network as data: what training builds and the exporter writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Architecture {
    /// GG-CNN or MTG-CNN.
    pub kind: ArchKind,
    /// Input channels (3: RGB).
    pub in_channels: usize,
    /// The shared first half.
    pub shared: Vec<Layer>,
    /// The grasp branch (outputs q, cos, sin, width).
    pub grasp: Branch,
    /// MTG-CNN's auxiliary branch and its task.
    pub aux: Option<(AuxTask, Branch)>,
}

/// GG-CNN2 filter sizes: first half, dilated layers, up-sampling layers.
const FIRST_HALF_FILTERS: usize = 16;
const DILATED_FILTERS: usize = 32;
const UPSAMPLE_FILTERS: usize = 16;
/// The input is downsampled by this factor in the middle of the network (two ×2 max-pools).
pub const DOWNSAMPLE: usize = 4;

fn conv(name: String, cin: usize, cout: usize, kernel: usize, dilation: usize, relu: bool) -> ConvSpec {
    ConvSpec { name, in_channels: cin, out_channels: cout, kernel, dilation, relu }
}

fn first_half(in_channels: usize) -> Vec<Layer> {
    let f = FIRST_HALF_FILTERS;
    vec![
        Layer::Conv(conv("shared.conv1".into(), in_channels, f, 11, 1, true)),
        Layer::Conv(conv("shared.conv2".into(), f, f, 5, 1, true)),
        Layer::MaxPool { size: 2 },
        Layer::Conv(conv("shared.conv3".into(), f, f, 5, 1, true)),
        Layer::Conv(conv("shared.conv4".into(), f, f, 5, 1, true)),
        Layer::MaxPool { size: 2 },
    ]
}

fn second_half(prefix: &str) -> Vec<Layer> {
    let (f, d, u) = (FIRST_HALF_FILTERS, DILATED_FILTERS, UPSAMPLE_FILTERS);
    vec![
        Layer::Conv(conv(format!("{prefix}.dilated1"), f, d, 5, 2, true)),
        Layer::Conv(conv(format!("{prefix}.dilated2"), d, d, 5, 4, true)),
        Layer::Upsample2x,
        Layer::Conv(conv(format!("{prefix}.up1"), d, u, 3, 1, true)),
        Layer::Upsample2x,
        Layer::Conv(conv(format!("{prefix}.up2"), u, u, 3, 1, true)),
    ]
}

fn head(prefix: &str, output: &'static str) -> Head {
    Head { output, conv: conv(format!("{prefix}.head_{output}"), UPSAMPLE_FILTERS, 1, 1, 1, false) }
}

impl Architecture {
    /// GG-CNN for an RGB input.
    pub fn ggcnn() -> Self {
        Architecture {
            kind: ArchKind::GgCnn,
            in_channels: 3,
            shared: first_half(3),
            grasp: Branch {
                layers: second_half("grasp"),
                heads: crate::layout::GRASP_OUTPUTS.iter().map(|o| head("grasp", o)).collect(),
            },
            aux: None,
        }
    }

    /// MTG-CNN: GG-CNN plus an identical second half ending in one auxiliary head.
    pub fn mtgcnn(task: AuxTask) -> Self {
        let aux = Branch { layers: second_half("aux"), heads: vec![head("aux", crate::layout::AUX_OUTPUT)] };
        Architecture { kind: ArchKind::MtgCnn, aux: Some((task, aux)), ..Self::ggcnn() }
    }

    /// The architecture of `kind`; MTG-CNN defaults to the depth task.
    pub fn new(kind: ArchKind, aux: Option<AuxTask>) -> Result<Self, ArchError> {
        match (kind, aux) {
            (ArchKind::GgCnn, None) => Ok(Self::ggcnn()),
            (ArchKind::GgCnn, Some(t)) => Err(ArchError::AuxWithoutBranch(t)),
            (ArchKind::MtgCnn, t) => Ok(Self::mtgcnn(t.unwrap_or(AuxTask::Depth))),
        }
    }

    /// The auxiliary task, if the network has the branch.
    pub fn aux_task(&self) -> Option<AuxTask> {
        self.aux.as_ref().map(|(t, _)| *t)
    }

    /// Every convolution in graph order: shared, grasp branch and heads, aux branch and head.
    pub fn convs(&self) -> Vec<&ConvSpec> {
        fn push<'a>(out: &mut Vec<&'a ConvSpec>, layers: &'a [Layer]) {
            out.extend(layers.iter().filter_map(|l| if let Layer::Conv(c) = l { Some(c) } else { None }));
        }
        let mut out = Vec::new();
        push(&mut out, &self.shared);
        for b in std::iter::once(&self.grasp).chain(self.aux.as_ref().map(|(_, b)| b)) {
            push(&mut out, &b.layers);
            out.extend(b.heads.iter().map(|h| &h.conv));
        }
        out
    }

    /// Parameter names and shapes, in graph order.
    pub fn parameters(&self) -> Vec<(String, Vec<usize>)> {
        self.convs()
            .into_iter()
            .flat_map(|c| [(c.weight_name(), c.weight_shape().to_vec()), (c.bias_name(), vec![c.out_channels])])
            .collect()
    }

    /// Number of trainable scalars.
    pub fn parameter_count(&self) -> usize {
        self.parameters().iter().map(|(_, s)| s.iter().product::<usize>()).sum()
    }

    /// The same network without its auxiliary branch: what is deployed.
    pub fn without_aux(&self) -> Self {
        Architecture { aux: None, ..self.clone() }
    }

    /// Input sizes must survive two ×2 pools and two ×2 up-samplings unchanged.
    pub fn check_input_size(size: usize) -> Result<(), ArchError> {
        if size == 0 || !size.is_multiple_of(DOWNSAMPLE) {
            return Err(ArchError::InputSize(size));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_match_the_paper() {
        // Paper §IV: "The GG-CNN model has 70,000 parameters, whereas the MTG-CNN model has 115,000".
        let gg = Architecture::ggcnn().parameter_count();
        let mtg = Architecture::mtgcnn(AuxTask::Depth).parameter_count();
        assert_eq!(gg, 70_548);
        assert_eq!(mtg, 115_973);
        assert!((gg as f64 / 70_000.0 - 1.0).abs() < 0.02);
        assert!((mtg as f64 / 115_000.0 - 1.0).abs() < 0.02);
    }

    #[test]
    fn mtgcnn_without_aux_has_the_ggcnn_parameters() {
        let a = Architecture::mtgcnn(AuxTask::Mask).without_aux();
        assert_eq!(a.parameters(), Architecture::ggcnn().parameters());
    }

    #[test]
    fn same_padding_keeps_size() {
        let a = Architecture::mtgcnn(AuxTask::Depth);
        for c in a.convs() {
            let eff = (c.kernel - 1) * c.dilation + 1;
            assert_eq!(eff - 2 * c.padding(), 1, "{}", c.name);
        }
        let names: Vec<_> = a.parameters().into_iter().map(|(n, _)| n).collect();
        let mut dedup = names.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), names.len(), "parameter names must be unique");
    }

    #[test]
    fn parse_names() {
        assert_eq!("ggcnn".parse::<ArchKind>().unwrap(), ArchKind::GgCnn);
        assert_eq!("saliency".parse::<AuxTask>().unwrap(), AuxTask::Mask);
        let e = "resnet".parse::<ArchKind>().unwrap_err();
        assert_eq!((e.what, e.got.as_str(), e.expected), ("architecture", "resnet", &["ggcnn", "mtgcnn"][..]));
        assert_eq!(e.to_string(), "unknown architecture `resnet` (expected one of: ggcnn, mtgcnn)");
        assert_eq!(
            Architecture::new(ArchKind::GgCnn, Some(AuxTask::Depth)).unwrap_err(),
            ArchError::AuxWithoutBranch(AuxTask::Depth)
        );
        assert!(Architecture::check_input_size(300).is_ok());
        assert_eq!(
            Architecture::check_input_size(302).unwrap_err().to_string(),
            "input size 302 must be a positive multiple of 4"
        );
    }
}
