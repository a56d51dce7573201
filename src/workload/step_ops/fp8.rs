//! Transformer Engine's delayed-scaling bookkeeping: the per-module amax-history and scale
//! updates that FP8 training launches besides its casts (which `layer::Emit::linear` charges).

use super::layer::{Ctx, Emit};
use super::{KernelClass as K, Op};

/// How Transformer Engine updates its FP8 amax history and scaling factors
/// (`training.fp8_scale_update`; read only under `precision = "fp8"` with the
/// Transformer Engine recipe). Read from the `DelayedScaling` code of each TE release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fp8ScaleUpdate {
    /// TE 0.x to 1.3: at every forward and every backward pass each TE module copies its
    /// reduced amax back from the global buffer and runs the TorchScript
    /// `_fused_amax_and_scale_update` (`torch.max` over the history, `torch.roll` of the
    /// history, `fill_` of its newest row, the scale / inverse-scale arithmetic): at least
    /// [`JIT_LAUNCHES_PER_MODULE`] launches per module and pass (TE v0.8 `module.py`
    /// `prepare_forward` / `_prepare_backward`, `fp8.py` `amax_and_scale_update`; the same in TE
    /// commit 09ba842 of 2023-10, `module/base.py`, `fp8.py`).
    PerModuleJit,
    /// TE 1.4 and 1.5: the same per-module update as one C++ kernel
    /// (`tex.fused_amax_and_scale_update`) after the amax copy: [`CPP_LAUNCHES_PER_MODULE`]
    /// launches per module and pass (TE v1.4 `fp8.py` `_fused_amax_and_scale_update`).
    PerModule,
    /// TE 1.6 and later (the default): one `torch.cat` and one multi-tensor
    /// `tex.fused_amax_and_scale_update_after_reduction` per `fp8_autocast` region and pass
    /// (TE v1.6rc1 `fp8.py` `reduce_and_update_fp8_tensors`), a handful of launches per model
    /// chunk and micro-batch; not charged (under 0.1 ms per micro-batch).
    #[default]
    Fused,
}

impl Fp8ScaleUpdate {
    /// The scenario spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Fp8ScaleUpdate::PerModuleJit => "per_module_jit",
            Fp8ScaleUpdate::PerModule => "per_module",
            Fp8ScaleUpdate::Fused => "fused",
        }
    }

    /// Kernel launches of one module's update in one pass (0: not per module).
    pub fn launches_per_module(self) -> u32 {
        match self {
            Fp8ScaleUpdate::PerModuleJit => JIT_LAUNCHES_PER_MODULE,
            Fp8ScaleUpdate::PerModule => CPP_LAUNCHES_PER_MODULE,
            Fp8ScaleUpdate::Fused => 0,
        }
    }
}

/// Launches of one TE module's amax/scale update in one pass under TE 0.x-1.3: the amax copy
/// from the reduced global buffer (`copy_amax_from_global_buffer`: `amax_history[0] = buffer[..]`),
/// `torch.max(amax_history, dim=0)`, `torch.roll(amax_history, -1, 0)`, `amax_history[0].fill_(0)`
/// and one kernel for the scale and inverse-scale arithmetic (`_default_sf_compute`,
/// `_compute_scaling_factor_inverse`, assuming the TorchScript fuser merges that elementwise
/// chain into one kernel; unfused it is 4-12 more): 5, a lower bound. TE v0.8 `fp8.py`
/// `_default_get_amax`, `update_amax_history`, `fused_amax_and_scale_update`.
pub const JIT_LAUNCHES_PER_MODULE: u32 = 5;

/// Launches of one TE module's update in one pass under TE 1.4-1.5: the amax copy and
/// `tex.fused_amax_and_scale_update` (TE v1.4 `fp8.py`).
pub const CPP_LAUNCHES_PER_MODULE: u32 = 2;

/// TE modules of a dense transformer layer holding FP8 GEMMs, each with its own delayed-scaling
/// state: TE `TransformerLayer` = `MultiheadAttention` (`LayerNormLinear` QKV, `Linear`
/// projection) + `LayerNormMLP` (fc1 and fc2 in one module): 3. This is what NeMo's GPT with
/// `transformer_engine: True` builds (`AutocastTransformerLayer(TransformerLayer)` in
/// `nemo/collections/nlp/modules/common/megatron/transformer.py`), the code of the MLPerf
/// GPT-3 rounds v3.0/v3.1; Megatron-Core's TE layer spec has 4 (fc1 and fc2 separate).
pub const TE_MODULES_PER_DENSE_LAYER: u32 = 3;

/// TE modules of the attention block alone (`LayerNormLinear` QKV, `Linear` projection): what
/// an MoE layer is charged (its expert modules are not counted).
pub const TE_MODULES_PER_ATTENTION: u32 = 2;

/// The per-module amax/scale updates of one layer, forward and backward (an op each, with one
/// launch per kernel; the amax history is a few KB, so each launch costs its launch floor).
/// Nothing unless the step runs Transformer Engine FP8 with a per-module update.
pub(super) fn scale_updates(e: &mut Emit, c: &Ctx, moe_layer: bool) {
    let per = c.cfg.fp8_scale_update.launches_per_module();
    if !c.fp8 || per == 0 {
        return;
    }
    let modules = if moe_layer {
        TE_MODULES_PER_ATTENTION
    } else {
        TE_MODULES_PER_DENSE_LAYER
    };
    let op = Op::compute("fp8.scale_update", K::Elementwise, 0.0, 0.0).launches(per * modules);
    e.push(op.clone(), &[op]);
}

/// GEMMs that stay in the higher precision under an FP8 recipe: the LM head and the MoE gate.
/// Transformer Engine runs FP8 only inside its own modules (`Linear`, `LayerNormLinear`,
/// `LayerNormMLP`, grouped expert linears), and Megatron/NeMo build the output layer and the
/// router as plain PyTorch/Megatron linears in bf16; DeepSeek-V3 keeps "the embedding module, the
/// output head, MoE gating modules, normalization operators, and attention operators" in
/// BF16/FP32 (DeepSeek-V3 report, arXiv:2412.19437, Sec. 3.3.1). The attention core (flash or
/// unfused score/context matmuls, which carry no GEMM shape) is in that list too.
pub const HIGHER_PRECISION_GEMMS: [&str; 2] = ["head.logits", "moe.router"];

/// Whether `op` runs its matmul in FP8 when the step's precision is FP8: a shaped GEMM (a
/// linear layer's forward, input-gradient or weight-gradient GEMM, dense or grouped) that is not
/// in [`HIGHER_PRECISION_GEMMS`]. Everything else (attention, norms, elementwise) runs in the
/// recipe's higher precision.
pub fn gemm_runs_in_fp8(op: &Op) -> bool {
    matches!(op.class, K::Gemm | K::GroupedGemm)
        && op.gemm.is_some()
        && !HIGHER_PRECISION_GEMMS.contains(&op.name)
}
