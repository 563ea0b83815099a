//! Architectures as data. The training crate builds its tch modules from these specs and the ONNX
//! writer builds its graph from the same specs, so the trained net and the exported file cannot drift.
//!
//! GG-CNN follows Morrison et al. (IJRR 2020, "GG-CNN2"); MTG-CNN (the paper) shares GG-CNN's first
//! half and duplicates the second half into an auxiliary branch with one output head.


/// One layer of a branch. Every convolution is followed by ReLU except the 1×1 output heads.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    Conv(ConvSpec),
    /// Max pooling, kernel = stride.
    MaxPool { size: usize },
    /// ×2 bilinear up-sampling, `half_pixel` coordinates (PyTorch `align_corners=False`).
    Upsample2x,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConvSpec {
    /// Parameter name prefix, e.g. `shared.conv1` → `shared.conv1.weight`, `shared.conv1.bias`.
    pub name: String,
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub dilation: usize,
    pub relu: bool,
}

impl ConvSpec {
    /// "Same" padding for odd kernels, so every layer keeps the spatial size.
    pub fn padding(&self) -> usize {
        (self.kernel - 1) * self.dilation / 2
    }
    pub fn weight_shape(&self) -> [usize; 4] {
        [self.out_channels, self.in_channels, self.kernel, self.kernel]
    }
    pub fn weight_name(&self) -> String {
        format!("{}.weight", self.name)
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchKind {
    GgCnn,
    MtgCnn,
}

crate::named_enum!(ArchKind, "architecture", ArchKind::GgCnn => "ggcnn", ArchKind::MtgCnn => "mtgcnn");

/// A 1×1 output head: a convolution without activation, producing one named output map.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    /// ONNX output name (see [`crate::contract`]).
    pub output: &'static str,
    pub conv: ConvSpec,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    pub layers: Vec<Layer>,
    pub heads: Vec<Head>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Architecture {
    pub kind: ArchKind,
    pub in_channels: usize,
    pub shared: Vec<Layer>,
    pub grasp: Branch,
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
                heads: crate::contract::GRASP_OUTPUTS.iter().map(|o| head("grasp", o)).collect(),
            },
            aux: None,
        }
    }

    /// MTG-CNN: GG-CNN plus an identical second half ending in one auxiliary head.
    pub fn mtgcnn(task: AuxTask) -> Self {
        let aux = Branch {
            layers: second_half("aux"),
            heads: vec![head("aux", crate::contract::AUX_OUTPUT)],
        };
        Architecture { kind: ArchKind::MtgCnn, aux: Some((task, aux)), ..Self::ggcnn() }
    }

    pub fn new(kind: ArchKind, aux: Option<AuxTask>) -> Result<Self, String> {
        match (kind, aux) {
            (ArchKind::GgCnn, None) => Ok(Self::ggcnn()),
            (ArchKind::GgCnn, Some(t)) => Err(format!("ggcnn has no auxiliary branch (got --aux {t})")),
            (ArchKind::MtgCnn, t) => Ok(Self::mtgcnn(t.unwrap_or(AuxTask::Depth))),
        }
    }

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
            .flat_map(|c| {
                [(c.weight_name(), c.weight_shape().to_vec()), (c.bias_name(), vec![c.out_channels])]
            })
            .collect()
    }

    pub fn parameter_count(&self) -> usize {
        self.parameters().iter().map(|(_, s)| s.iter().product::<usize>()).sum()
    }

    /// The same network without its auxiliary branch: what is deployed.
    pub fn without_aux(&self) -> Self {
        Architecture { aux: None, ..self.clone() }
    }

    /// Input sizes must survive two ×2 pools and two ×2 up-samplings unchanged.
    pub fn check_input_size(size: usize) -> Result<(), String> {
        if size == 0 || size % DOWNSAMPLE != 0 {
            return Err(format!("input size {size} must be a positive multiple of {DOWNSAMPLE}"));
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
        assert!("resnet".parse::<ArchKind>().unwrap_err().contains("resnet"));
        assert!(Architecture::new(ArchKind::GgCnn, Some(AuxTask::Depth)).is_err());
        assert!(Architecture::check_input_size(300).is_ok());
        assert!(Architecture::check_input_size(302).is_err());
    }
}
