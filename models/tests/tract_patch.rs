//! The vendored tract-core patches (vendor/tract-core/PATCH.md) against the ONNX definitions
//! written out plainly:
//! - im2col panels copied as contiguous rows: convolutions on shapes where panels straddle rows,
//!   padding and dilation are present and widths are not multiples of the kernel's panel width, so
//!   the patched fast path and tract's own gather both run, and both must be exact;
//! - the vectorised 2×2 stride-2 max-pool: even and odd sizes, `ceil_mode` (a partial last row and
//!   column left to the scalar walk) and padding (not taken by the fast path), bit for bit;
//! - a convolution's Relu fused into its matrix product: no separate pass left, values clamped.

use grasp_models::backend::tract::optimised_plan;
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

/// One `Conv` (same padding, stride 1) as an ONNX model.
fn conv_model(
    cin: usize,
    cout: usize,
    k: usize,
    dilation: usize,
    h: usize,
    w: usize,
    weights: &[f32],
) -> pb::ModelProto {
    let pad = ((k - 1) * dilation / 2) as i64;
    let node = pb::NodeProto {
        op_type: "Conv".into(),
        input: vec!["x".into(), "w".into()],
        output: vec!["y".into()],
        attribute: vec![
            attr_ints("kernel_shape", &[k as i64, k as i64]),
            attr_ints("pads", &[pad; 4]),
            attr_ints("dilations", &[dilation as i64; 2]),
        ],
        ..Default::default()
    };
    let kernel = pb::TensorProto {
        name: "w".into(),
        dims: vec![cout as i64, cin as i64, k as i64, k as i64],
        data_type: pb::tensor_proto::DataType::Float as i32,
        float_data: weights.to_vec(),
        ..Default::default()
    };
    one_node_model(node, vec![kernel], &[1, cin, h, w], &[1, cout, h, w])
}

#[allow(clippy::too_many_arguments)]
fn reference(x: &[f32], wt: &[f32], cin: usize, cout: usize, k: usize, d: usize, h: usize, w: usize) -> Vec<f32> {
    let pad = ((k - 1) * d / 2) as isize;
    let mut y = vec![0.0f32; cout * h * w];
    for o in 0..cout {
        for i in 0..h {
            for j in 0..w {
                let mut s = 0.0f64;
                for c in 0..cin {
                    for u in 0..k {
                        for v in 0..k {
                            let (p, q) = (i as isize + (u * d) as isize - pad, j as isize + (v * d) as isize - pad);
                            if p >= 0 && q >= 0 && (p as usize) < h && (q as usize) < w {
                                s += (wt[((o * cin + c) * k + u) * k + v] * x[(c * h + p as usize) * w + q as usize])
                                    as f64;
                            }
                        }
                    }
                }
                y[(o * h + i) * w + j] = s as f32;
            }
        }
    }
    y
}

#[test]
fn patched_im2col_convolutions_match_the_definition() {
    // (in, out, kernel, dilation, height, width): conv1-like, conv2-like, a dilated one, a
    // width below one panel, and more outputs than one panel of rows.
    for (cin, cout, k, d, h, w) in [
        (3, 16, 11, 1, 23, 37),
        (16, 16, 5, 1, 19, 29),
        (16, 32, 5, 2, 17, 26),
        (4, 8, 3, 1, 9, 7),
        (8, 40, 3, 1, 13, 30),
    ] {
        let n_w = cout * cin * k * k;
        let wt: Vec<f32> = (0..n_w).map(|i| ((i * 7919) % 997) as f32 / 997.0 - 0.5).collect();
        let x: Vec<f32> = (0..cin * h * w).map(|i| ((i * 104_729) % 1009) as f32 / 1009.0 - 0.5).collect();
        let plan = optimised_plan(&conv_model(cin, cout, k, d, h, w, &wt), &[1, cin, h, w]).unwrap();
        let out = plan.run(tvec!(Tensor::from_shape(&[1, cin, h, w], &x).unwrap().into_tvalue())).unwrap();
        let y = out[0].try_as_plain_ram().unwrap().as_slice::<f32>().unwrap();
        let r = reference(&x, &wt, cin, cout, k, d, h, w);
        let worst = y.iter().zip(&r).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "conv {cin}→{cout} {k}×{k}/{d} on {h}×{w}: off by {worst}");
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

#[test]
fn a_convolutions_relu_runs_inside_its_matrix_product_and_clamps_exactly() {
    let (cin, cout, k, h, w) = (4, 16, 5, 13, 17);
    let wt: Vec<f32> = (0..cout * cin * k * k).map(|i| ((i * 7919) % 997) as f32 / 997.0 - 0.5).collect();
    let mut model = conv_model(cin, cout, k, 1, h, w, &wt);
    let graph = model.graph.as_mut().unwrap();
    graph.node[0].output = vec!["conv".into()];
    graph.node.push(pb::NodeProto {
        op_type: "Relu".into(),
        input: vec!["conv".into()],
        output: vec!["y".into()],
        ..Default::default()
    });
    let plan = optimised_plan(&model, &[1, cin, h, w]).unwrap();
    let ops: Vec<String> = plan.model().nodes.iter().map(|n| n.op.name().to_string()).collect();
    assert!(
        !ops.iter().any(|op| op.contains("ByScalar") || op == "Max"),
        "the Relu still runs as its own pass: {ops:?}"
    );
    let x: Vec<f32> = (0..cin * h * w).map(|i| ((i * 104_729) % 1009) as f32 / 1009.0 - 0.5).collect();
    let out = plan.run(tvec!(Tensor::from_shape(&[1, cin, h, w], &x).unwrap().into_tvalue())).unwrap();
    let y = out[0].try_as_plain_ram().unwrap().as_slice::<f32>().unwrap();
    let r: Vec<f32> = reference(&x, &wt, cin, cout, k, 1, h, w).into_iter().map(|v| v.max(0.0)).collect();
    assert!(y.contains(&0.0) && y.iter().any(|&v| v > 0.0), "both sides of the clamp occur");
    let worst = y.iter().zip(&r).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "off by {worst}");
}
