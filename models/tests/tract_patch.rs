//! The vendored tract-core patches (vendor/tract-core/PATCH.md) against the ONNX definitions
//! written out plainly:
//! - im2col panels copied as contiguous rows: convolutions on shapes where panels straddle rows,
//!   padding and dilation are present and widths are not multiples of the kernel's panel width, so
//!   the patched fast path and tract's own gather both run, and both must be exact;
//! - the vectorised 2×2 stride-2 max-pool: even and odd sizes, `ceil_mode` (a partial last row and
//!   column left to the scalar walk) and padding (not taken by the fast path), bit for bit;
//! - a convolution's Relu fused into its matrix product: no separate pass left, values clamped;
//! - the direct convolution (patch 5), both its AVX-512 and its AVX2 kernel: row widths around
//!   its vector and block sizes, kernels, dilations and paddings of every kind, two images, its
//!   fused Relu or `Max` floor, and the cases it must leave to tract (and, where it runs, patches
//!   1, 3 and 4 with it turned off); and the shipped model's maps and decoded grasps with it on
//!   and off.

use grasp_models::backend::tract::{optimised_plan, optimised_plan_with};
use tract_onnx::pb;
use tract_onnx::prelude::*;

fn attr_ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        ints: v.to_vec(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ..Default::default()
    }
}

fn value(name: &str, shape: &[usize]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    let dims =
        shape.iter().map(|&d| Dimension { value: Some(Value::DimValue(d as i64)), ..Default::default() }).collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: Some(pb::TensorShapeProto { dim: dims }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A one-node ONNX model: `x` (shape `input`) through `node` to `y` (shape `output`).
fn one_node_model(
    node: pb::NodeProto,
    initializer: Vec<pb::TensorProto>,
    input: &[usize],
    output: &[usize],
) -> pb::ModelProto {
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: 13 }],
        graph: Some(pb::GraphProto {
            node: vec![node],
            initializer,
            input: vec![value("x", input)],
            output: vec![value("y", output)],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A stride-1 convolution's geometry.
#[derive(Clone, Copy, Debug)]
struct ConvCase {
    n: usize,
    cin: usize,
    cout: usize,
    kh: usize,
    kw: usize,
    /// Dilation (rows, columns).
    d: (usize, usize),
    /// Zero padding [top, left, bottom, right].
    pads: [usize; 4],
    h: usize,
    w: usize,
}

impl ConvCase {
    /// Square kernel `k`, dilation `d`, "same" padding, one image.
    fn same(cin: usize, cout: usize, k: usize, d: usize, h: usize, w: usize) -> Self {
        let p = (k - 1) * d / 2;
        ConvCase { n: 1, cin, cout, kh: k, kw: k, d: (d, d), pads: [p; 4], h, w }
    }
    fn out_hw(&self) -> (usize, usize) {
        let [t, l, b, r] = self.pads;
        (self.h + t + b - (self.kh - 1) * self.d.0, self.w + l + r - (self.kw - 1) * self.d.1)
    }
    fn input_shape(&self) -> [usize; 4] {
        [self.n, self.cin, self.h, self.w]
    }
    fn weights(&self) -> Vec<f32> {
        (0..self.cout * self.cin * self.kh * self.kw).map(|i| ((i * 7919) % 997) as f32 / 997.0 - 0.5).collect()
    }
    fn input(&self) -> Vec<f32> {
        (0..self.n * self.cin * self.h * self.w).map(|i| ((i * 104_729) % 1009) as f32 / 1009.0 - 0.5).collect()
    }

    /// The convolution as a one-node ONNX model.
    fn model(&self, weights: &[f32]) -> pb::ModelProto {
        let [t, l, b, r] = self.pads;
        let node = pb::NodeProto {
            op_type: "Conv".into(),
            input: vec!["x".into(), "w".into()],
            output: vec!["y".into()],
            attribute: vec![
                attr_ints("kernel_shape", &[self.kh as i64, self.kw as i64]),
                attr_ints("pads", &[t as i64, l as i64, b as i64, r as i64]),
                attr_ints("dilations", &[self.d.0 as i64, self.d.1 as i64]),
            ],
            ..Default::default()
        };
        let kernel = pb::TensorProto {
            name: "w".into(),
            dims: vec![self.cout as i64, self.cin as i64, self.kh as i64, self.kw as i64],
            data_type: pb::tensor_proto::DataType::Float as i32,
            float_data: weights.to_vec(),
            ..Default::default()
        };
        let (oh, ow) = self.out_hw();
        one_node_model(node, vec![kernel], &self.input_shape(), &[self.n, self.cout, oh, ow])
    }

    /// ONNX's definition, summed in f64.
    fn reference(&self, x: &[f32], wt: &[f32]) -> Vec<f32> {
        let ConvCase { n, cin, cout, kh, kw, d, pads, h, w } = *self;
        let (oh, ow) = self.out_hw();
        let mut y = vec![0.0f32; n * cout * oh * ow];
        for b in 0..n {
            for o in 0..cout {
                for i in 0..oh {
                    for j in 0..ow {
                        let mut s = 0.0f64;
                        for c in 0..cin {
                            for u in 0..kh {
                                for v in 0..kw {
                                    let p = (i + u * d.0) as isize - pads[0] as isize;
                                    let q = (j + v * d.1) as isize - pads[1] as isize;
                                    if p >= 0 && q >= 0 && (p as usize) < h && (q as usize) < w {
                                        let x = x[((b * cin + c) * h + p as usize) * w + q as usize];
                                        s += (wt[((o * cin + c) * kh + u) * kw + v] * x) as f64;
                                    }
                                }
                            }
                        }
                        y[((b * cout + o) * oh + i) * ow + j] = s as f32;
                    }
                }
            }
        }
        y
    }
}

/// The optimised plan's op names.
fn op_names(plan: &grasp_models::backend::tract::Plan) -> Vec<String> {
    plan.model().nodes.iter().map(|n| n.op.name().to_string()).collect()
}

#[cfg(target_arch = "x86_64")]
fn has(feature: &str) -> bool {
    match feature {
        "avx512f" => std::is_x86_feature_detected!("avx512f"),
        "avx2+fma" => std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"),
        _ => false,
    }
}
#[cfg(not(target_arch = "x86_64"))]
fn has(_: &str) -> bool {
    false
}

const WITHOUT_DIRECT: [(&str, &str); 1] = [("TRACT_DISABLE_DIRECT_CONV", "true")];
/// The direct convolution's AVX2 kernel where AVX-512 would be taken.
const AVX2_DIRECT: [(&str, &str); 1] = [("TRACT_DIRECT_CONV_AVX2", "true")];

/// The direct convolution (patch 5) an eligible layer becomes on this host with `knobs`: its
/// AVX-512 kernel, its AVX2 one, or none (then tract's own lowerings run).
fn expected_direct(knobs: &[(&str, &str)]) -> Option<&'static str> {
    if knobs == WITHOUT_DIRECT {
        None
    } else if has("avx512f") && knobs != AVX2_DIRECT {
        Some("DirectConvAvx512")
    } else if has("avx2+fma") {
        Some("DirectConvAvx2")
    } else {
        None
    }
}

/// The direct convolution op in `ops`, if any.
fn direct_op(ops: &[String]) -> Option<&str> {
    ops.iter().map(|s| s.as_str()).find(|op| op.starts_with("DirectConv"))
}

/// Runs `case` optimised with `knobs` and returns the worst difference from the definition;
/// checks the plan holds the direct convolution this host gives an `eligible` layer.
fn conv_error(case: &ConvCase, knobs: &[(&str, &str)], eligible: bool) -> f32 {
    let (x, wt) = (case.input(), case.weights());
    let plan = optimised_plan_with(&case.model(&wt), &case.input_shape(), knobs).unwrap();
    let ops = op_names(&plan);
    let expected = if eligible { expected_direct(knobs) } else { None };
    assert_eq!(direct_op(&ops), expected, "{case:?} with {knobs:?}: plan {ops:?}");
    let out = plan.run(tvec!(Tensor::from_shape(&case.input_shape(), &x).unwrap().into_tvalue())).unwrap();
    let (oh, ow) = case.out_hw();
    assert_eq!(out[0].shape(), &[case.n, case.cout, oh, ow], "{case:?}");
    let y = out[0].try_as_plain_ram().unwrap().as_slice::<f32>().unwrap();
    let r = case.reference(&x, &wt);
    y.iter().zip(&r).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max)
}

#[test]
fn patched_im2col_convolutions_match_the_definition() {
    // (in, out, kernel, dilation, height, width): conv1-like, conv2-like, a dilated one, a
    // width below one panel, and more outputs than one panel of rows. Run with the direct
    // convolution (patch 5) off, so that tract's im2col path with patches 1 and 4 is what runs.
    for (cin, cout, k, d, h, w) in [
        (3, 16, 11, 1, 23, 37),
        (16, 16, 5, 1, 19, 29),
        (16, 32, 5, 2, 17, 26),
        (4, 8, 3, 1, 9, 7),
        (8, 40, 3, 1, 13, 30),
    ] {
        let case = ConvCase::same(cin, cout, k, d, h, w);
        let worst = conv_error(&case, &WITHOUT_DIRECT, false);
        assert!(worst < 1e-4, "im2col conv {case:?}: off by {worst}");
    }
}

#[test]
fn direct_convolutions_match_the_definition() {
    for (knobs, what) in [(&[][..], "default"), (&AVX2_DIRECT[..], "AVX2 kernel")] {
        if expected_direct(knobs).is_none() {
            eprintln!("direct convolution ({what}) not tested: this CPU lacks it (the fallback is tested)");
        }
    }
    let same = ConvCase::same;
    let cases = [
        // GG-CNN's layers at small sizes: conv1, conv2, the dilated pair, the 3×3 after up-sampling.
        same(3, 16, 11, 1, 23, 37),
        same(16, 16, 5, 1, 19, 29),
        same(16, 32, 5, 2, 17, 26),
        same(32, 32, 5, 4, 19, 19),
        same(32, 16, 3, 1, 12, 40),
        // Row widths around the 16-point vector and the 48-point block: 1, 15, 16, 17, 47, 48, 49, 97.
        same(2, 8, 3, 1, 3, 1),
        same(2, 8, 3, 1, 4, 15),
        same(2, 8, 3, 1, 4, 16),
        same(2, 8, 3, 1, 4, 17),
        same(1, 8, 5, 1, 5, 47),
        same(1, 8, 5, 1, 5, 48),
        same(1, 8, 5, 1, 5, 49),
        same(3, 24, 3, 2, 6, 97),
        // Kernel wider than the row; rectangular kernel, unequal dilations and padding (none,
        // more than the kernel reaches, one side only); two images.
        same(2, 8, 7, 1, 9, 5),
        ConvCase { n: 1, cin: 3, cout: 16, kh: 3, kw: 7, d: (2, 1), pads: [0, 0, 0, 0], h: 14, w: 40 },
        ConvCase { n: 1, cin: 3, cout: 16, kh: 5, kw: 3, d: (1, 3), pads: [6, 9, 1, 0], h: 11, w: 21 },
        ConvCase { n: 2, cin: 4, cout: 16, kh: 3, kw: 3, d: (1, 1), pads: [1, 1, 1, 1], h: 10, w: 50 },
    ];
    for knobs in [&[][..], &AVX2_DIRECT[..]] {
        for case in cases {
            let worst = conv_error(&case, knobs, true);
            assert!(worst < 1e-4, "direct conv {case:?} with {knobs:?}: off by {worst}");
        }
    }
    // Output channels not a multiple of 8 keep tract's lowerings; a 1×1 becomes tract's matrix
    // product before any lowering is chosen.
    for case in [same(4, 12, 3, 1, 8, 20), same(16, 8, 1, 1, 7, 33)] {
        assert!(conv_error(&case, &[], false) < 1e-4, "{case:?}");
    }
}
/// 2×2 max-pool, stride 2, with `pads` [top, left, bottom, right] and `ceil_mode`, as ONNX defines
/// it (padding never wins the max).
fn max_pool_reference(
    x: &[f32],
    c: usize,
    h: usize,
    w: usize,
    pads: [usize; 4],
    ceil: bool,
) -> (Vec<f32>, usize, usize) {
    let out_len = |n: usize, before: usize, after: usize| {
        let span = n + before + after - 2;
        if ceil {
            span.div_ceil(2) + 1
        } else {
            span / 2 + 1
        }
    };
    let (oh, ow) = (out_len(h, pads[0], pads[2]), out_len(w, pads[1], pads[3]));
    let mut y = vec![f32::NEG_INFINITY; c * oh * ow];
    for ch in 0..c {
        for oy in 0..oh {
            for ox in 0..ow {
                for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let (iy, ix) =
                        ((2 * oy + dy) as isize - pads[0] as isize, (2 * ox + dx) as isize - pads[1] as isize);
                    if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                        let v = x[(ch * h + iy as usize) * w + ix as usize];
                        let o = &mut y[(ch * oh + oy) * ow + ox];
                        *o = o.max(v);
                    }
                }
            }
        }
    }
    (y, oh, ow)
}

#[test]
fn patched_two_by_two_max_pool_matches_the_definition() {
    // (channels, height, width, pads, ceil_mode): GG-CNN's two pools, odd sizes (the last row and
    // column dropped), odd sizes with ceil_mode (kept, partial windows), widths below one vector,
    // padding (the generic path).
    for (c, h, w, pads, ceil) in [
        (16, 224, 224, [0; 4], false),
        (16, 150, 150, [0; 4], false),
        (3, 33, 17, [0; 4], false),
        (3, 33, 17, [0; 4], true),
        (2, 5, 7, [0; 4], true),
        (4, 31, 40, [1, 1, 0, 0], false),
    ] {
        let x: Vec<f32> = (0..c * h * w).map(|i| ((i * 104_729) % 1009) as f32 / 1009.0 - 0.5).collect();
        let (r, oh, ow) = max_pool_reference(&x, c, h, w, pads, ceil);
        let node = pb::NodeProto {
            op_type: "MaxPool".into(),
            input: vec!["x".into()],
            output: vec!["y".into()],
            attribute: vec![
                attr_ints("kernel_shape", &[2, 2]),
                attr_ints("strides", &[2, 2]),
                attr_ints("pads", &[pads[0] as i64, pads[1] as i64, pads[2] as i64, pads[3] as i64]),
                pb::AttributeProto {
                    name: "ceil_mode".into(),
                    i: ceil as i64,
                    r#type: pb::attribute_proto::AttributeType::Int as i32,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let model = one_node_model(node, vec![], &[1, c, h, w], &[1, c, oh, ow]);
        let plan = optimised_plan(&model, &[1, c, h, w]).unwrap();
        let out = plan.run(tvec!(Tensor::from_shape(&[1, c, h, w], &x).unwrap().into_tvalue())).unwrap();
        assert_eq!(out[0].shape(), &[1, c, oh, ow], "{c}×{h}×{w} pads {pads:?} ceil {ceil}");
        let y = out[0].try_as_plain_ram().unwrap().as_slice::<f32>().unwrap();
        let wrong = y.iter().zip(&r).position(|(a, b)| a != b);
        assert_eq!(wrong, None, "max-pool {c}×{h}×{w} pads {pads:?} ceil {ceil}: first wrong output");
    }
}

/// `conv` followed by `op_type(conv[, floor])` as an ONNX model whose output is `y` (and `conv` too
/// when `conv_is_output`).
fn conv_then(case: &ConvCase, wt: &[f32], op_type: &str, floor: Option<f32>, conv_is_output: bool) -> pb::ModelProto {
    let mut model = case.model(wt);
    let (oh, ow) = case.out_hw();
    let graph = model.graph.as_mut().unwrap();
    graph.node[0].output = vec!["conv".into()];
    let mut inputs = vec!["conv".to_string()];
    if let Some(f) = floor {
        graph.initializer.push(pb::TensorProto {
            name: "floor".into(),
            data_type: pb::tensor_proto::DataType::Float as i32,
            float_data: vec![f],
            ..Default::default()
        });
        inputs.push("floor".into());
    }
    graph.node.push(pb::NodeProto {
        op_type: op_type.into(),
        input: inputs,
        output: vec!["y".into()],
        ..Default::default()
    });
    if conv_is_output {
        graph.output.push(value("conv", &[case.n, case.cout, oh, ow]));
    }
    model
}

#[test]
fn a_convolutions_relu_runs_inside_it_and_clamps_exactly() {
    // Patch 3 (into im2col's matrix product, direct convolution off) and patch 5 (into the
    // direct convolution's store); then a Max by 0.25 (patch 5's floor), and a convolution whose
    // raw output is also wanted (nothing may be fused into it).
    let case = ConvCase::same(4, 16, 5, 1, 13, 17);
    let wt = case.weights();
    let x = case.input();
    let raw = case.reference(&x, &wt);
    let run = |model: &pb::ModelProto, knobs: &[(&str, &str)]| {
        let plan = optimised_plan_with(model, &case.input_shape(), knobs).unwrap();
        let out = plan.run(tvec!(Tensor::from_shape(&case.input_shape(), &x).unwrap().into_tvalue())).unwrap();
        let outputs: Vec<Vec<f32>> =
            out.iter().map(|t| t.try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().to_vec()).collect();
        (op_names(&plan), outputs)
    };
    let worst = |y: &[f32], r: &[f32]| y.iter().zip(r).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    for knobs in [&WITHOUT_DIRECT[..], &[][..], &AVX2_DIRECT[..]] {
        for (op_type, floor) in [("Relu", None), ("Max", Some(0.25f32))] {
            let clamp = floor.unwrap_or(0.0);
            let (ops, y) = run(&conv_then(&case, &wt, op_type, floor, false), knobs);
            assert!(
                !ops.iter().any(|op| op.contains("ByScalar") || op == "Max"),
                "{op_type} with {knobs:?} still runs as its own pass: {ops:?}"
            );
            assert_eq!(direct_op(&ops), expected_direct(knobs), "{ops:?}");
            let r: Vec<f32> = raw.iter().map(|v| v.max(clamp)).collect();
            assert!(y[0].contains(&clamp) && y[0].iter().any(|&v| v > clamp), "both sides of the clamp occur");
            assert!(worst(&y[0], &r) < 1e-4, "{op_type} with {knobs:?}: off by {}", worst(&y[0], &r));
        }
        let (ops, y) = run(&conv_then(&case, &wt, "Relu", None, true), knobs);
        let r: Vec<f32> = raw.iter().map(|v| v.max(0.0)).collect();
        assert!(worst(&y[0], &r) < 1e-4, "Relu output, conv also an output, {knobs:?}: {ops:?}");
        assert!(y[1].iter().any(|&v| v < 0.0), "the raw convolution output was clamped: {ops:?}");
        assert!(worst(&y[1], &raw) < 1e-4, "raw output, {knobs:?}: {ops:?}");
    }
}

/// The shipped model decodes to the same grasps with the direct convolution (patch 5) as with
/// tract's own lowerings (issue 13: "the same grasps within the stated tolerance"), on a drawn
/// scene: three bars of different colours and angles on a shaded table.
#[test]
fn the_shipped_model_gives_the_same_grasps_with_and_without_the_direct_convolution() {
    use grasp_models::decode::{Decoder, GraspMaps};
    use grasp_models::onnx::GraspModelFile;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ggcnn-p-rgb-224.onnx");
    let file = GraspModelFile::read(&path).unwrap();
    assert_eq!(file.upsample_form(), Some(Default::default()), "shipped in the form tract runs fastest");
    let size = file.info.input_size;
    let plane = size * size;
    let mut input = vec![0f32; 3 * plane];
    let bars = [
        (70.0, 80.0, 0.3f32, 90.0, 18.0, [200.0, 40.0, 40.0]),
        (150.0, 140.0, 1.9, 70.0, 24.0, [30.0, 160.0, 60.0]),
        (100.0, 170.0, -0.7, 60.0, 14.0, [40.0, 60.0, 210.0]),
    ];
    for y in 0..size {
        for x in 0..size {
            let shade = 120.0 + 30.0 * (x as f32 / size as f32) - 20.0 * (y as f32 / size as f32);
            let mut rgb = [shade, shade, shade * 0.95];
            for &(cx, cy, a, len, thick, colour) in &bars {
                let (dx, dy) = (x as f32 - cx, y as f32 - cy);
                let (along, across) = (dx * a.cos() + dy * a.sin(), -dx * a.sin() + dy * a.cos());
                if along.abs() < len / 2.0 && across.abs() < thick / 2.0 {
                    rgb = colour;
                }
            }
            for c in 0..3 {
                input[c * plane + y * size + x] = rgb[c];
            }
        }
    }
    grasp_models::preprocess::normalise(&file.info, &mut input);
    let shape = file.info.input_shape();
    let names = file.output_names();
    let run = |knobs: &[(&str, &str)]| {
        let plan = optimised_plan_with(&file.proto, &shape, knobs).unwrap();
        let out = plan.run(tvec!(Tensor::from_shape(&shape, &input).unwrap().into_tvalue())).unwrap();
        let map = |name: &str| {
            let i = names.iter().position(|n| n == name).unwrap();
            out[i].try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().to_vec()
        };
        let maps = GraspMaps { size, q: map("q"), cos: map("cos"), sin: map("sin"), width: map("width"), aux: None };
        let mut grasps = vec![];
        Decoder::new(file.info.decode.clone()).decode(&maps, 3, &mut grasps);
        (op_names(&plan), maps, grasps)
    };
    let (ops_direct, direct, grasps_direct) = run(&[]);
    let (ops_tract, tract, grasps_tract) = run(&WITHOUT_DIRECT);
    assert_eq!(direct_op(&ops_direct), expected_direct(&[]), "{ops_direct:?}");
    assert_eq!(direct_op(&ops_tract), None, "{ops_tract:?}");
    for (name, a, b) in [
        ("q", &direct.q, &tract.q),
        ("cos", &direct.cos, &tract.cos),
        ("sin", &direct.sin, &tract.sin),
        ("width", &direct.width, &tract.width),
    ] {
        let worst = a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "map {name}: off by {worst}");
    }
    assert!(
        !grasps_tract.is_empty() && grasps_direct.len() == grasps_tract.len(),
        "{grasps_direct:?} / {grasps_tract:?}"
    );
    for (a, b) in grasps_direct.iter().zip(&grasps_tract) {
        assert_eq!((a.x, a.y), (b.x, b.y), "peak moved");
        assert!((a.angle - b.angle).abs() < 1e-4 && (a.width - b.width).abs() < 1e-3, "{a:?} / {b:?}");
        assert!((a.quality - b.quality).abs() < 1e-5, "{a:?} / {b:?}");
    }
}
