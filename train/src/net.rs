//! GG-CNN / MTG-CNN in tch, built layer by layer from [`grasp_models::Architecture`]: the same
//! specs drive the ONNX writer, so parameter names, shapes and the forward computation agree.

use grasp_models::arch::{Architecture, Branch, ConvSpec, Layer};
use grasp_models::onnx::{NamedWeights, WeightTensor};
use std::collections::BTreeMap;
use tch::nn::{self, Module};
use tch::{Device, Tensor};

/// The maps one forward pass produces, each `[N, 1, S, S]`.
pub struct Outputs {
    /// Grasp quality.
    pub q: Tensor,
    /// cos 2Φ.
    pub cos: Tensor,
    /// sin 2Φ.
    pub sin: Tensor,
    /// Width.
    pub width: Tensor,
    /// Auxiliary output (MTG-CNN).
    pub aux: Option<Tensor>,
}

/// An [`Architecture`] as libtorch modules.
pub struct GraspNet {
    /// What it was built from.
    pub arch: Architecture,
    shared: Vec<Step>,
    grasp: (Vec<Step>, Vec<nn::Conv2D>),
    aux: Option<(Vec<Step>, Vec<nn::Conv2D>)>,
}

enum Step {
    Conv(nn::Conv2D, bool),
    MaxPool(i64),
    Upsample2x,
}

fn conv(vs: &nn::Path, c: &ConvSpec) -> nn::Conv2D {
    // PyTorch's defaults: Kaiming-uniform weights, bias ~ U(±1/√fan_in).
    let bound = 1.0 / ((c.in_channels * c.kernel * c.kernel) as f64).sqrt();
    let cfg = nn::ConvConfig {
        padding: c.padding() as i64,
        dilation: c.dilation as i64,
        bs_init: nn::Init::Uniform { lo: -bound, up: bound },
        ..Default::default()
    };
    let mut path = vs.clone();
    for part in c.name.split('.') {
        path = path / part;
    }
    nn::conv2d(path, c.in_channels as i64, c.out_channels as i64, c.kernel as i64, cfg)
}

fn steps(vs: &nn::Path, layers: &[Layer]) -> Vec<Step> {
    layers
        .iter()
        .map(|l| match l {
            Layer::Conv(c) => Step::Conv(conv(vs, c), c.relu),
            Layer::MaxPool { size } => Step::MaxPool(*size as i64),
            Layer::Upsample2x => Step::Upsample2x,
        })
        .collect()
}

fn branch(vs: &nn::Path, b: &Branch) -> (Vec<Step>, Vec<nn::Conv2D>) {
    (steps(vs, &b.layers), b.heads.iter().map(|h| conv(vs, &h.conv)).collect())
}

fn run(steps: &[Step], mut x: Tensor) -> Tensor {
    for s in steps {
        x = match s {
            Step::Conv(c, relu) => {
                let y = c.forward(&x);
                if *relu {
                    y.relu()
                } else {
                    y
                }
            }
            Step::MaxPool(k) => x.max_pool2d([*k, *k], [*k, *k], [0, 0], [1, 1], false),
            Step::Upsample2x => {
                let s = x.size();
                x.upsample_bilinear2d([s[2] * 2, s[3] * 2], false, Some(2.0), Some(2.0))
            }
        };
    }
    x
}

impl GraspNet {
    /// Creates the variables of `arch` under `vs.root()`, named as `arch.parameters()`.
    pub fn new(vs: &nn::VarStore, arch: &Architecture) -> Self {
        let root = vs.root();
        GraspNet {
            arch: arch.clone(),
            shared: steps(&root, &arch.shared),
            grasp: branch(&root, &arch.grasp),
            aux: arch.aux.as_ref().map(|(_, b)| branch(&root, b)),
        }
    }

    /// Runs a batch `[n, 3, S, S]`.
    pub fn forward(&self, x: &Tensor) -> Outputs {
        let features = run(&self.shared, x.shallow_clone());
        let g = run(&self.grasp.0, features.shallow_clone());
        let h = &self.grasp.1;
        Outputs {
            q: h[0].forward(&g),
            cos: h[1].forward(&g),
            sin: h[2].forward(&g),
            width: h[3].forward(&g),
            aux: self.aux.as_ref().map(|(steps, heads)| heads[0].forward(&run(steps, features))),
        }
    }
}

/// Copies every variable of `vs` to host memory, keyed by its name.
pub fn named_weights(vs: &nn::VarStore) -> Result<NamedWeights, tch::TchError> {
    let mut map = BTreeMap::new();
    for (name, t) in vs.variables() {
        let t = t.to_device(Device::Cpu).to_kind(tch::Kind::Float).contiguous();
        let shape = t.size().iter().map(|&d| d as usize).collect();
        let data = Vec::<f32>::try_from(t.flatten(0, -1))?;
        map.insert(name, WeightTensor { shape, data });
    }
    Ok(NamedWeights(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use grasp_models::AuxTask;

    #[test]
    fn variables_are_the_architecture_parameters() {
        for arch in [Architecture::ggcnn(), Architecture::mtgcnn(AuxTask::Depth)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let _net = GraspNet::new(&vs, &arch);
            let w = named_weights(&vs).unwrap();
            let mut expected = arch.parameters();
            expected.sort();
            let got: Vec<_> = w.0.iter().map(|(k, v)| (k.clone(), v.shape.clone())).collect();
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn forward_keeps_the_input_size() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = GraspNet::new(&vs, &Architecture::mtgcnn(AuxTask::Mask));
        let out = tch::no_grad(|| net.forward(&Tensor::zeros([2, 3, 32, 32], (tch::Kind::Float, Device::Cpu))));
        for t in [&out.q, &out.cos, &out.sin, &out.width, out.aux.as_ref().unwrap()] {
            assert_eq!(t.size(), [2, 1, 32, 32]);
        }
    }
}
