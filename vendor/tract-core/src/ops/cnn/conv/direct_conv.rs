//! grasp-edge patch 5: a direct f32 convolution for narrow, stride-1 NCHW layers on x86-64
//! (AVX-512F, or AVX2 + FMA).
//!
//! For a layer with few output channels (GG-CNN's are 16 or 32), im2col + matrix product packs a
//! column panel per 12 output points that the single 16-row weight panel then uses once: the
//! packing costs half as much as the product (BENCHMARKS.md, issue 13). This op never packs the
//! input. With AVX-512 it holds 8 output channels × 48 consecutive output points of one row in 24
//! registers (with AVX2, 4 channels × 16 points in 8 of its 16) and, for each input channel and
//! kernel tap, loads those input points where they lie (3 (2) vector loads, masked at the row's
//! ends, so no padded copy is made) and does 24 (8) FMAs with the tap's weights broadcast. Zero padding
//! above and below is skipped rows. An optional floor (`max(x, c)`, a Relu when c = 0) is applied
//! at the store, fused from the node that follows.
//!
//! Eligible (checked in `Conv::codegen`): f32, NCHW or CHW, group 1, two spatial axes, unit
//! strides, any dilation and zero padding, output channels a multiple of 8, concrete shapes, an
//! x86-64 host with AVX-512F or AVX2 + FMA at run time. Each output point sums its taps in the
//! order input channel, kernel row, kernel column, with FMAs: equal to im2col's result up to
//! rounding.

use crate::internal::*;
use crate::ops::binary::{OptBinByScalar, TypedBinOp};
use crate::ops::math::Max;

/// Output channels must be a multiple of this (the larger of the kernels' channel blocks).
pub const DIRECT_OC_MULTIPLE: usize = 8;
/// Vectors of output points per block along a row, at most (see [`DirectIsa::vectors`]).
#[cfg(target_arch = "x86_64")]
const MAX_VECTORS: usize = 3;

/// The instruction set a [`DirectConv`] runs with.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum DirectIsa {
    /// 16 lanes, 8 output channels × 3 vectors of accumulators (24 of 32 registers).
    Avx512,
    /// 8 lanes, 4 output channels × 2 vectors (8 of 16 registers: with 3 vectors, 12
    /// accumulators, 3 inputs and a broadcast weight leave none spare, and the compiler spilled
    /// an accumulator to the stack every tap, at 2.3× the time).
    Avx2Fma,
}

impl DirectIsa {
    /// The best kernel this host runs, if any; `avx2_only` skips AVX-512 (tests, benches).
    /// A feature tract-linalg was told to leave out (`TRACT_CPU_ISA=-avx512f`) is left out here
    /// too, so that tract's own kernels and these are compared on the same instruction set.
    pub fn detect(avx2_only: bool) -> Option<DirectIsa> {
        #[cfg(target_arch = "x86_64")]
        {
            use tract_linalg::isa::{Isa, native};
            let isa = native();
            if !avx2_only && isa.has(Isa::X86_64Avx512f) && std::is_x86_feature_detected!("avx512f") {
                return Some(DirectIsa::Avx512);
            }
            if isa.has(Isa::X86_64Avx2)
                && isa.has(Isa::X86_64Fma)
                && std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma")
            {
                return Some(DirectIsa::Avx2Fma);
            }
        }
        let _ = avx2_only;
        None
    }

    #[cfg(target_arch = "x86_64")]
    fn lanes(self) -> usize {
        match self {
            DirectIsa::Avx512 => 16,
            DirectIsa::Avx2Fma => 8,
        }
    }

    /// Vectors of output points per block.
    #[cfg(target_arch = "x86_64")]
    fn vectors(self) -> usize {
        match self {
            DirectIsa::Avx512 => 3,
            DirectIsa::Avx2Fma => 2,
        }
    }

    /// Output channels per block.
    fn oc_block(self) -> usize {
        match self {
            DirectIsa::Avx512 => 8,
            DirectIsa::Avx2Fma => 4,
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct DirectConv {
    pub isa: DirectIsa,
    /// Output shape, as the convolution's (`[n,] c, h, w`).
    pub output_shape: TVec<usize>,
    pub n: usize,
    pub c_in: usize,
    pub h_in: usize,
    pub w_in: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub dil_h: usize,
    pub dil_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub h_out: usize,
    pub w_out: usize,
    /// `max(x, floor)` at the store (bits of the f32), fused from a following `Max`.
    pub floor_bits: Option<u32>,
}

impl DirectConv {
    /// The kernel, given as `[o][i·kh·kw]` (`KernelFormat::kernel_as_group_o_ihw`, group 1), as
    /// the op reads it: `[channel block][i·kh·kw][block]`, so that one tap's weights for a block
    /// are adjacent. Done once, when the plan is built.
    pub fn pack_kernel(&self, kernel_o_ihw: &Tensor) -> TractResult<Tensor> {
        let ihw = self.c_in * self.kh * self.kw;
        let kernel = kernel_o_ihw.cast_to::<f32>()?;
        let view = kernel.try_as_plain_ram()?;
        let kernel = view.as_slice::<f32>()?;
        ensure!(kernel.len() == self.c_out * ihw, "DirectConv: kernel of {} values", kernel.len());
        let ob = self.isa.oc_block();
        let mut packed = vec![0f32; kernel.len()];
        for b in 0..self.c_out / ob {
            for i in 0..ihw {
                for o in 0..ob {
                    packed[(b * ihw + i) * ob + o] = kernel[(b * ob + o) * ihw + i];
                }
            }
        }
        tensor1(&packed).into_shape(&[self.c_out / ob, ihw, ob])
    }

    /// The bias as one value per output channel (it may come as none, one, or one per channel).
    pub fn pack_bias(&self, bias: &Tensor) -> TractResult<Tensor> {
        let bias = bias.cast_to::<f32>()?;
        let view = bias.try_as_plain_ram()?;
        let bias = view.as_slice::<f32>()?;
        let per_channel = match bias.len() {
            0 => vec![0.0; self.c_out],
            1 => vec![bias[0]; self.c_out],
            n if n == self.c_out => bias.to_vec(),
            n => bail!("DirectConv: {n} bias values for {} channels", self.c_out),
        };
        Ok(tensor1(&per_channel))
    }
}

impl Op for DirectConv {
    fn name(&self) -> StaticName {
        match self.isa {
            DirectIsa::Avx512 => "DirectConvAvx512".into(),
            DirectIsa::Avx2Fma => "DirectConvAvx2".into(),
        }
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{}x{}x{} -> {}x{}x{}, kernel {}x{} dilation {}x{} pad top {} left {}, floor {:?}",
            self.c_in,
            self.h_in,
            self.w_in,
            self.c_out,
            self.h_out,
            self.w_out,
            self.kh,
            self.kw,
            self.dil_h,
            self.dil_w,
            self.pad_top,
            self.pad_left,
            self.floor_bits.map(f32::from_bits)
        )])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for DirectConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (img, packed, bias) = args_3!(inputs);
        ensure!(img.datum_type() == f32::datum_type(), "DirectConv is f32 only");
        ensure!(
            DirectIsa::detect(self.isa == DirectIsa::Avx2Fma) == Some(self.isa),
            "DirectConv: this host lacks {:?}",
            self.isa
        );
        #[cfg(target_arch = "x86_64")]
        {
            Ok(tvec!(self.eval_x86(&img, &packed, &bias)?.into_tvalue()))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (img, packed, bias);
            bail!("DirectConv runs on x86-64 only")
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl DirectConv {
    /// The convolution, on a host that has `self.isa` (checked by the caller), with the kernel
    /// and bias as [`Self::pack_kernel`] and [`Self::pack_bias`] made them.
    fn eval_x86(&self, img: &Tensor, packed: &Tensor, bias: &Tensor) -> TractResult<Tensor> {
        ensure!(img.len() == self.n * self.c_in * self.h_in * self.w_in, "input size");
        ensure!(packed.len() == self.c_out * self.c_in * self.kh * self.kw, "packed kernel size");
        ensure!(bias.len() == self.c_out, "bias size");
        let (packed, bias) = (packed.try_as_plain_ram()?, bias.try_as_plain_ram()?);
        let (packed, bias) = (packed.as_slice::<f32>()?, bias.as_slice::<f32>()?);
        let mut output = unsafe { Tensor::uninitialized::<f32>(&self.output_shape)? };
        ensure!(output.len() == self.n * self.c_out * self.h_out * self.w_out, "output size");
        let img = unsafe { img.as_slice_unchecked::<f32>() };
        let out_base = unsafe { output.as_ptr_mut_unchecked::<f32>() } as usize;
        // One work unit per output row of one image: units write disjoint rows (of every
        // channel), so they split across the executor's threads with no other change.
        let rows = self.n * self.h_out;
        let mut units = vec![0u8; rows];
        let work = rows * self.w_out * self.c_out;
        tract_linalg::multithread::par_chunks_mut(&mut units, 1, work, |first, chunk| {
            let mut masks = vec![[0u16; MAX_VECTORS]; self.kw];
            for row in first..first + chunk.len() {
                let out = out_base as *mut f32;
                unsafe {
                    match self.isa {
                        DirectIsa::Avx512 => self.row_x86::<Avx512>(img, packed, bias, &mut masks, out, row),
                        DirectIsa::Avx2Fma => self.row_x86::<Avx2Fma>(img, packed, bias, &mut masks, out, row),
                    }
                }
            }
            Ok(())
        })?;
        Ok(output)
    }
}

/// One instruction set's block kernel.
#[cfg(target_arch = "x86_64")]
trait BlockKernel {
    const ISA: DirectIsa;
    /// `oc_block` output channels × `V` vectors of one row: bias, every tap, floor, store.
    ///
    /// # Safety
    /// The instruction set present; `g` describes the image; `weights` holds this block's
    /// `c_in·kh·kw·oc_block` packed weights; `out` is the block's first output point, with
    /// `oc_block` channel planes after it.
    unsafe fn block<const V: usize>(
        g: &BlockGeometry,
        weights: *const f32,
        bias: &[f32],
        floor: Option<f32>,
        out: *mut f32,
    );
}

#[cfg(target_arch = "x86_64")]
struct Avx512;
#[cfg(target_arch = "x86_64")]
struct Avx2Fma;

#[cfg(target_arch = "x86_64")]
impl DirectConv {
    /// Every channel block of output row `row` (image `row / h_out`, line `row % h_out`).
    ///
    /// # Safety
    /// `K`'s instruction set present; `out` points at an output of `n·c_out·h_out·w_out` floats of which this
    /// call writes row `row` of every channel only.
    /// `masks` is scratch of `kw` entries, reused from row to row.
    unsafe fn row_x86<K: BlockKernel>(
        &self,
        img: &[f32],
        packed: &[f32],
        bias: &[f32],
        masks: &mut [[u16; MAX_VECTORS]],
        out: *mut f32,
        row: usize,
    ) {
        unsafe {
            let (ni, y) = (row / self.h_out, row % self.h_out);
            let plane_in = self.h_in * self.w_in;
            let plane_out = self.h_out * self.w_out;
            let image = &img[ni * self.c_in * plane_in..][..self.c_in * plane_in];
            // Kernel rows that land inside the input (the others read zero padding).
            let iy0 = y as isize - self.pad_top as isize;
            let valid_ky = |ky: usize| {
                let iy = iy0 + (ky * self.dil_h) as isize;
                iy >= 0 && (iy as usize) < self.h_in
            };
            let ky_lo = (0..self.kh).find(|&ky| valid_ky(ky)).unwrap_or(self.kh);
            let ky_hi = (0..self.kh).rev().find(|&ky| valid_ky(ky)).map_or(ky_lo, |ky| ky + 1);
            let kvol = self.kh * self.kw;
            let (lanes, ob) = (K::ISA.lanes(), K::ISA.oc_block());
            let mut x0 = 0;
            while x0 < self.w_out {
                let vectors = (self.w_out - x0).div_ceil(lanes).min(K::ISA.vectors());
                // Lanes of each load that fall inside the input row, per kernel column.
                let xbase = x0 as isize - self.pad_left as isize;
                for (kx, m) in masks.iter_mut().enumerate() {
                    for (j, mj) in m.iter_mut().enumerate() {
                        let first = xbase + (kx * self.dil_w + j * lanes) as isize;
                        *mj = lane_mask(lanes, -first, self.w_in as isize - first);
                    }
                }
                let mut store = [0u16; MAX_VECTORS];
                for (j, s) in store.iter_mut().enumerate() {
                    *s = lane_mask(lanes, 0, self.w_out as isize - (x0 + j * lanes) as isize);
                }
                let full = ((1u32 << lanes) - 1) as u16;
                let interior = masks.iter().all(|m| m[..vectors].iter().all(|&b| b == full));
                for b in 0..self.c_out / ob {
                    let geometry = BlockGeometry {
                        image: image.as_ptr(),
                        plane_in,
                        w_in: self.w_in,
                        iy0,
                        ky_lo,
                        ky_hi,
                        kw: self.kw,
                        kh: self.kh,
                        dil_h: self.dil_h,
                        dil_w: self.dil_w,
                        c_in: self.c_in,
                        xbase,
                        masks: &*masks,
                        store,
                        interior,
                        plane_out,
                    };
                    let weights = packed[b * self.c_in * kvol * ob..].as_ptr();
                    let bias = &bias[b * ob..][..ob];
                    let o = out.add((ni * self.c_out + b * ob) * plane_out + y * self.w_out + x0);
                    let floor = self.floor_bits.map(f32::from_bits);
                    match vectors {
                        1 => K::block::<1>(&geometry, weights, bias, floor, o),
                        2 => K::block::<2>(&geometry, weights, bias, floor, o),
                        _ => K::block::<3>(&geometry, weights, bias, floor, o),
                    }
                }
                x0 += vectors * lanes;
            }
        }
    }
}

/// The bits of lanes `lo..hi` (clamped to `0..lanes`).
#[cfg(target_arch = "x86_64")]
fn lane_mask(lanes: usize, lo: isize, hi: isize) -> u16 {
    let lo = lo.clamp(0, lanes as isize) as u32;
    let hi = hi.clamp(0, lanes as isize) as u32;
    if hi <= lo { 0 } else { (((1u32 << (hi - lo)) - 1) << lo) as u16 }
}

#[cfg(target_arch = "x86_64")]
struct BlockGeometry<'a> {
    image: *const f32,
    plane_in: usize,
    w_in: usize,
    iy0: isize,
    ky_lo: usize,
    ky_hi: usize,
    kh: usize,
    kw: usize,
    dil_h: usize,
    dil_w: usize,
    c_in: usize,
    xbase: isize,
    masks: &'a [[u16; MAX_VECTORS]],
    store: [u16; MAX_VECTORS],
    /// Every load of the block lies inside the input row (no mask needed).
    interior: bool,
    plane_out: usize,
}

#[cfg(target_arch = "x86_64")]
impl BlockKernel for Avx512 {
    const ISA: DirectIsa = DirectIsa::Avx512;

    #[target_feature(enable = "avx512f")]
    #[allow(clippy::needless_range_loop)] // constant indices keep the accumulators in registers
    unsafe fn block<const V: usize>(
        g: &BlockGeometry,
        weights: *const f32,
        bias: &[f32],
        floor: Option<f32>,
        out: *mut f32,
    ) {
        unsafe {
            use std::arch::x86_64::*;
            const OB: usize = 8;
            const LANES: usize = 16;
            let mut acc = [[_mm512_setzero_ps(); V]; OB];
            for o in 0..OB {
                for j in 0..V {
                    acc[o][j] = _mm512_set1_ps(bias[o]);
                }
            }
            for ci in 0..g.c_in {
                let channel = g.image.add(ci * g.plane_in);
                for ky in g.ky_lo..g.ky_hi {
                    let iy = g.iy0 + (ky * g.dil_h) as isize;
                    let line = channel.wrapping_offset(iy * g.w_in as isize + g.xbase);
                    let taps = weights.add(((ci * g.kh + ky) * g.kw) * OB);
                    for kx in 0..g.kw {
                        // Masked lanes are neither read nor faulted on: the row's ends need no
                        // padding. (A masked load costs what a plain one does here.)
                        let at = line.wrapping_add(kx * g.dil_w);
                        let mask = g.masks.get_unchecked(kx);
                        let mut v = [_mm512_setzero_ps(); V];
                        for j in 0..V {
                            v[j] = _mm512_maskz_loadu_ps(mask[j], at.wrapping_add(j * LANES));
                        }
                        let w = taps.add(kx * OB);
                        for o in 0..OB {
                            let wo = _mm512_set1_ps(*w.add(o));
                            for j in 0..V {
                                acc[o][j] = _mm512_fmadd_ps(wo, v[j], acc[o][j]);
                            }
                        }
                    }
                }
            }
            let floor = floor.map(|f| _mm512_set1_ps(f));
            for o in 0..OB {
                let plane = out.add(o * g.plane_out);
                for j in 0..V {
                    let value = match floor {
                        Some(f) => _mm512_max_ps(acc[o][j], f),
                        None => acc[o][j],
                    };
                    _mm512_mask_storeu_ps(plane.add(j * LANES), g.store[j], value);
                }
            }
        }
    }
}

/// The AVX2 mask of the lanes set in `bits` (lane i ↔ bit i).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2_mask(bits: u16) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    let lane_bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    let set = _mm256_and_si256(_mm256_set1_epi32(bits as i32), lane_bits);
    _mm256_cmpeq_epi32(set, lane_bits)
}

#[cfg(target_arch = "x86_64")]
impl BlockKernel for Avx2Fma {
    const ISA: DirectIsa = DirectIsa::Avx2Fma;

    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::needless_range_loop)] // constant indices keep the accumulators in registers
    unsafe fn block<const V: usize>(
        g: &BlockGeometry,
        weights: *const f32,
        bias: &[f32],
        floor: Option<f32>,
        out: *mut f32,
    ) {
        unsafe {
            use std::arch::x86_64::*;
            const OB: usize = 4;
            const LANES: usize = 8;
            let mut acc = [[_mm256_setzero_ps(); V]; OB];
            for o in 0..OB {
                for j in 0..V {
                    acc[o][j] = _mm256_set1_ps(bias[o]);
                }
            }
            for ci in 0..g.c_in {
                let channel = g.image.add(ci * g.plane_in);
                for ky in g.ky_lo..g.ky_hi {
                    let iy = g.iy0 + (ky * g.dil_h) as isize;
                    let line = channel.wrapping_offset(iy * g.w_in as isize + g.xbase);
                    let taps = weights.add(((ci * g.kh + ky) * g.kw) * OB);
                    for kx in 0..g.kw {
                        let at = line.wrapping_add(kx * g.dil_w);
                        let mut v = [_mm256_setzero_ps(); V];
                        if g.interior {
                            for j in 0..V {
                                v[j] = _mm256_loadu_ps(at.add(j * LANES));
                            }
                        } else {
                            // vmaskmovps neither reads nor faults on masked lanes.
                            let mask = g.masks.get_unchecked(kx);
                            for j in 0..V {
                                let m = avx2_mask(mask[j]);
                                v[j] = _mm256_maskload_ps(at.wrapping_add(j * LANES), m);
                            }
                        }
                        let w = taps.add(kx * OB);
                        for o in 0..OB {
                            let wo = _mm256_set1_ps(*w.add(o));
                            for j in 0..V {
                                acc[o][j] = _mm256_fmadd_ps(wo, v[j], acc[o][j]);
                            }
                        }
                    }
                }
            }
            let floor = floor.map(|f| _mm256_set1_ps(f));
            for o in 0..OB {
                let plane = out.add(o * g.plane_out);
                for j in 0..V {
                    let value = match floor {
                        Some(f) => _mm256_max_ps(acc[o][j], f),
                        None => acc[o][j],
                    };
                    if g.store[j] == 0xff {
                        _mm256_storeu_ps(plane.add(j * LANES), value);
                    } else {
                        _mm256_maskstore_ps(plane.add(j * LANES), avx2_mask(g.store[j]), value);
                    }
                }
            }
        }
    }
}

impl TypedOp for DirectConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 3);
        Ok(tvec!(inputs[0].datum_type.fact(&*self.output_shape)))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let macs = self.n * self.c_out * self.h_out * self.w_out * self.c_in * self.kh * self.kw;
        Ok(tvec!((Cost::FMA(inputs[0].datum_type), macs.to_dim())))
    }

    /// Takes in a following `max(x, c)` with a one-element f32 constant `c` (an ONNX Relu, by
    /// then lowered or not), applied at the store instead of as its own pass over the output.
    fn fuse(&self, model: &TypedModel, node: &TypedNode) -> TractResult<Option<TypedModelPatch>> {
        rule_if!(self.floor_bits.is_none());
        rule_if_some!(succ = model.single_succ(node.id)?);
        let is_max = succ.op_as::<OptBinByScalar>().is_some_and(|op| op.binop.is::<Max>())
            || succ.op_as::<TypedBinOp>().is_some_and(|op| op.0.is::<Max>());
        rule_if!(is_max && succ.inputs.len() == 2);
        let ours = OutletId::new(node.id, 0);
        // Our raw output must not be wanted elsewhere (a model output, or twice by the Max).
        rule_if!(!model.outputs.contains(&ours));
        rule_if!(succ.inputs.iter().filter(|i| **i == ours).count() == 1);
        let other = succ.inputs.iter().find(|i| **i != ours).unwrap();
        let other = model.outlet_fact(*other)?;
        rule_if!(other.shape.volume() == 1.to_dim() && other.datum_type == f32::datum_type());
        rule_if_some!(konst = other.konst.clone());
        // The Max must not broadcast our output to another shape.
        rule_if!(model.outlet_fact(succ.id.into())?.shape == model.outlet_fact(ours)?.shape);
        let floor = konst.cast_to_scalar::<f32>()?;
        let mut patch = TypedModelPatch::new("direct-conv-floor");
        let taps = patch.taps(model, &node.inputs)?;
        let op = Self { floor_bits: Some(floor.to_bits()), ..self.clone() };
        let wire = patch.wire_node(&node.name, op, &taps)?[0];
        patch.shunt_outside(model, succ.id.into(), wire)?;
        Ok(Some(patch))
    }

    as_op!();
}
