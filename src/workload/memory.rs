//! Per-GPU memory of a training plan (weights, gradients, optimizer states, activations) and the fits-in-HBM check.

use super::error::{invalid, WorkloadError};
use super::model::ModelSpec;
use super::plan::{ParallelPlan, PipelineKind, Recompute};
use super::precision::Precision;
use super::step_ops::{Fp8Recipe, Framework, GradReduceDtype};

/// Bytes in one GiB.
pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Optimizer bytes per parameter for mixed-precision Adam: fp32 master weights + momentum +
/// variance = 12 B (Rajbhandari et al. 2020, "ZeRO", arXiv:1910.02054, Sec. 3.1: K = 12).
pub const ADAM_MIXED_OPT_BYTES_PER_PARAM: f64 = 12.0;
/// Optimizer bytes per parameter when training in fp32 (no separate master copy): m + v = 8 B.
pub const ADAM_FP32_OPT_BYTES_PER_PARAM: f64 = 8.0;

/// Bytes per parameter of fp32 weights or gradients (TF's float32 variables).
const FP32_BYTES: f64 = 4.0;
/// Bytes per parameter of bf16 weights or gradients.
const BF16_BYTES: f64 = 2.0;

/// Optimizer state bytes per parameter under a framework with fp32 variables
/// ([`Framework::fp32_variables`]: Mesh TensorFlow, TF 1.x `TPUEstimator`): their runs use
/// Adafactor factored and without momentum (T5: `AdafactorOptimizer.factored = True`,
/// `beta1 = 0.0` in the operative config, github.com/google-research/text-to-text-transfer-transformer
/// `t5/models/test_data/operative_config.gin`; Tensor2Tensor `common_hparams`:
/// `optimizer_adafactor_factored=True`, `optimizer_adafactor_beta1=0.0`, and
/// `update_hparams_for_tpu` switches TPU runs to Adafactor "as it uses less memory than Adam"):
/// a row and a column vector per matrix, negligible beside the matrix, and no master copy
/// (the variables are the fp32 master). Adam there keeps m and v: 8 B.
const FP32_VARIABLES_ADAFACTOR_OPT_BYTES: f64 = 0.0;

/// Memory needed on one GPU [bytes]; for the pipeline stage that needs the most.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryBreakdown {
    /// Compute-precision weights [bytes].
    pub weights_bytes: f64,
    /// Gradients: compute precision, fp32 under an fp32 reduction or fp32 variables [bytes].
    pub grads_bytes: f64,
    /// Optimizer states (fp32 master, m, v) [bytes].
    pub optimizer_bytes: f64,
    /// Activations kept for backward, all in-flight micro-batches [bytes].
    pub activations_bytes: f64,
    /// Memory that lives only during the optimizer step, when the activations are freed: the
    /// fp32 copy of 16-bit gradients Megatron-LM's optimizer makes ([`MemoryStates::MixedAdamMainGradCopy`]) [bytes].
    pub step_transient_bytes: f64,
    /// Peak: weights + gradients + optimizer states + the larger of the activations and the
    /// step's transient memory [bytes].
    pub total_bytes: f64,
}

impl MemoryBreakdown {
    /// One-line description in GiB.
    pub fn describe(&self) -> String {
        let step = if self.step_transient_bytes > 0.0 {
            format!(
                " (at the optimizer step instead: fp32 gradient copy {:.1} GiB)",
                self.step_transient_bytes / GIB
            )
        } else {
            String::new()
        };
        format!(
            "weights {:.1} GiB + grads {:.1} GiB + optimizer {:.1} GiB + activations {:.1} GiB{step} = {:.1} GiB",
            self.weights_bytes / GIB,
            self.grads_bytes / GIB,
            self.optimizer_bytes / GIB,
            self.activations_bytes / GIB,
            self.total_bytes / GIB
        )
    }
}

/// Parameters held by one GPU of a pipeline stage [parameter count].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StageParams {
    /// Non-expert parameters (attention, norms, dense FFN, router, shared experts, embeddings).
    pub dense: f64,
    /// Routed-expert parameters (sharded over `ep` and `tp`).
    pub expert: f64,
}

/// Layers `[first, end)` of pipeline stage `stage` (see [`ParallelPlan::stage_layers`]).
pub fn stage_layers(model: &ModelSpec, plan: &ParallelPlan, stage: u32) -> std::ops::Range<u32> {
    plan.stage_layers(model.layers, stage)
}

/// Parameters on one GPU of `stage`: the stage's layers sharded by `tp` (experts also by `ep`),
/// the embedding on stage 0, the LM head and final norm on the last stage.
pub fn stage_params(model: &ModelSpec, plan: &ParallelPlan, stage: u32) -> StageParams {
    let tp = plan.tp.max(1) as f64;
    let d = model.d_model as f64;
    let v = model.vocab as f64;
    let mut dense = 0.0;
    let mut expert = 0.0;
    for layer in stage_layers(model, plan, stage) {
        dense += model.layer_dense_params(layer);
        if let Some(m) = model.moe().filter(|_| model.is_moe_layer(layer)) {
            dense += model.router_params() + m.shared_experts as f64 * model.expert_params();
            expert += plan.experts_per_rank(model) as f64 * model.expert_params();
        }
    }
    let last = stage + 1 == plan.pp.max(1);
    if stage == 0 {
        // The learned position table is replicated over TP (a plain `nn.Embedding` in
        // Megatron-LM): times `tp` here, as `dense` is divided by `tp` below.
        dense += v * d + model.position_params() * tp;
    }
    if last {
        // Tied embeddings: one matrix when stage 0 is also the last; with pp > 1 the last stage
        // keeps its own copy (Megatron-LM keeps a copy on both ends and all-reduces its gradient).
        if !(model.arch.tied_embeddings && stage == 0) {
            dense += v * d;
        }
        dense += model.final_norm_params();
    }
    StageParams {
        dense: dense / tp,
        expert: expert / tp,
    }
}

/// Activation bytes kept for backward by one layer for one micro-batch on one GPU, when the
/// layer's activations are all stored (`Recompute::None` or `Selective`; see
/// [`stored_activation_bytes_per_layer`] for what each setting keeps).
///
/// Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models"
/// (arXiv:2205.05198), Sec. 4: per layer `s*b*h*(34 + 5*a*s/h)` bytes at 2-byte activations,
/// divided by `t` with tensor + sequence parallelism. The `5*a*s^2*b` attention-score term is
/// the eager (non-flash) kernel's: attention here is FlashAttention, which keeps no score
/// matrix, only the fp32 log-sum-exp per query and head, `4*a*s*b` (Dao 2023, FlashAttention-2,
/// Sec. 3.1.1). Generalised term by term: attention `2sbh + sbh` (QKV input; the dropout mask,
/// 1 byte, only with `hidden_dropout > 0`)
/// `+ 2sb*q + 2sb*(k+v) + 2sb*o` (Q, K, V, attention output; `= 7sbh + 4sb*h_kv` for standard
/// attention, GQA shrinks K and V), MLA also its latents `2sb*(q_lora + kv_lora + rope)`; two
/// norms `4sbh`; MLP `2sbh + sbh + 6sbf` (input, mask; SwiGLU; equals the paper's 19sbh at f = 8h/3) or
/// `3sbh + 4sbf` (GELU, the paper's 19sbh at f = 4h); MoE MLP
/// `3sbh + k*c*(2sbh + m*sb*f_e) + m*sb*f_e*shared` (`m` = 6 SwiGLU, 4 GELU) plus fp32 router
/// logits `4sbE`, with `c` the capacity factor (1 if dropless); Transformer-XL positions add
/// `2sb*q + 2s*q` (the position term's inputs) and, except under selective recompute, the
/// shifted position scores `2as^2b`. 2-byte terms scale with `precision_bytes / 2`.
pub fn activation_bytes_per_layer(model: &ModelSpec, plan: &ParallelPlan, layer: u32) -> f64 {
    activation_bytes_per_layer_under(model, plan, layer, Fp8Recipe::TransformerEngine)
}

/// [`activation_bytes_per_layer`] under FP8 recipe `recipe` (it matters only with
/// `precision = "fp8"`; see [`deepseek_fp8_activation_bytes`] for DeepSeek-V3's).
pub fn activation_bytes_per_layer_under(
    model: &ModelSpec,
    plan: &ParallelPlan,
    layer: u32,
    recipe: Fp8Recipe,
) -> f64 {
    if model.arch.enc_dec.is_some() {
        // Each block at its stack's length, plus a decoder block's cross-attention.
        return super::enc_dec::activation_bytes(model, plan, layer, |view| {
            activation_bytes_per_layer_under(view, plan, layer, recipe)
        });
    }
    if plan.precision == Precision::Fp8 && recipe == Fp8Recipe::Deepseek {
        return deepseek_fp8_activation_bytes(model, plan, layer);
    }
    if let Some(b) = super::step_ops::evolved_activation_bytes(model, plan, layer) {
        return b / plan.tp.max(1) as f64;
    }
    let s = model.seq_len as f64;
    let b = plan.micro_batch_seqs as f64;
    let h = model.d_model as f64;
    let t = plan.tp.max(1) as f64;
    let a = model.heads as f64;
    let sb = s * b;
    let q = a * model.qk_head_dim() as f64;
    let kv = model.kv_heads as f64 * (model.qk_head_dim() + model.v_head_dim()) as f64;
    let o = a * model.v_head_dim() as f64;
    let mut units = 2.0 * sb * h + 2.0 * sb * q + 2.0 * sb * kv + 2.0 * sb * o + 4.0 * sb * h;
    if let Some(m) = &model.arch.mla {
        units += 2.0 * sb * (m.q_lora_rank + m.kv_lora_rank + m.qk_rope_head_dim) as f64;
    }
    if model.arch.position == super::arch::Position::TransformerXl {
        // Transformer-XL (`step_ops::positions::transformer_xl`): the position term's inputs
        // `rr_head_q` (sb x q) and `r_head_k` (s x q, shared by the batch) for its backward
        // einsums, and, unless selective recompute replays the score-sized ops, the shifted
        // position scores `a s^2 b` that the attention backward reads as its bias.
        units += 2.0 * sb * q + 2.0 * s * q;
        if plan.recompute != Recompute::Selective {
            units += 2.0 * a * s * sb;
        }
    }
    let mlp_units = 2.0 * model.arch.act.matrices();
    let mut fp32 = if plan.recompute == Recompute::Selective {
        0.0
    } else {
        4.0 * a * sb
    };
    if plan.recompute == Recompute::NormsUpProj {
        // Not kept (DeepSeek-V3 report Sec. 3.2.3): the two norms' outputs, which are the
        // attention's and the MLP's input (2sbh each); with MLA also the up-projections'
        // outputs Q, K, V (recomputed from the kept latents before the attention backward).
        units -= 4.0 * sb * h;
        if model.arch.mla.is_some() {
            units -= 2.0 * sb * q + 2.0 * sb * kv;
        }
    }
    match model.moe() {
        Some(m) if model.is_moe_layer(layer) => {
            let fe = m.expert_ffn_hidden as f64;
            let k = m.top_k as f64;
            let c = m.capacity_factor.unwrap_or(1.0);
            units += 2.0 * sb * h
                + k * c * (2.0 * sb * h + mlp_units * sb * fe)
                + mlp_units * sb * fe * m.shared_experts as f64;
            fp32 += 4.0 * sb * m.experts as f64;
        }
        _ => units += 2.0 * sb * h + mlp_units * sb * model.ffn_hidden as f64,
    }
    if model.arch.parallel_residual {
        // The parallel block (dense only): both norms read the layer input, one tensor kept
        // once (the serial block's second norm reads the mid-block residual: `4sbh` above).
        units -= 2.0 * sb * h;
        // One shared norm (PaLM): its output is both the QKV and the MLP input, kept once.
        if model.arch.parallel_shared_norm && plan.recompute != Recompute::NormsUpProj {
            units -= 2.0 * sb * h;
        }
    }
    (units * plan.precision_bytes() / 2.0 + hidden_dropout_mask_bytes(model, plan) + fp32) / t
}

/// Bytes of the two hidden-dropout masks one layer keeps for its backward (after the attention
/// and after the MLP; one byte per element, `step_ops::dropout::MASK_BYTES`), before the TP
/// split: `2sbh` with `model.hidden_dropout > 0` (Korthikanti et al. 2022, Sec. 4.1: `sbh` each),
/// else none: the same setting the step's `bias_dropout_add` ops read. Attention dropout keeps
/// no mask here: FlashAttention regenerates it from the Philox seed and offset in its backward
/// (flash-attention `dropout.h`); the unfused core's `as^2b` mask, like its score matrix, is
/// not counted by this FlashAttention memory model.
fn hidden_dropout_mask_bytes(model: &ModelSpec, plan: &ParallelPlan) -> f64 {
    if model.arch.has_hidden_dropout() {
        2.0 * model.seq_len as f64 * plan.micro_batch_seqs as f64 * model.d_model as f64
    } else {
        0.0
    }
}

/// Activation bytes one layer keeps for its backward (as [`activation_bytes_per_layer`]) under
/// DeepSeek-V3's FP8 recipe (DeepSeek-AI 2024, arXiv:2412.19437): what a linear caches for its
/// backward is FP8, 1 byte (Sec. 3.3.3 "cache activations in FP8 format for the backward pass of
/// the Linear operator"), except the input of the linear after attention, kept in E5M6, 12 bits
/// = 1.5 bytes (Sec. 3.3.3 (1)); the MoE SwiGLU keeps its inputs in FP8 and recomputes its output
/// (Sec. 3.3.3 (2)), so the expert down-projection's input is not kept; norm inputs, attention
/// inputs Q, K, V and the rotary part stay BF16, 2 bytes (Sec. 3.3.1: normalization and attention
/// operators in original precision); a dense FFN's activation input stays BF16 (it is no linear's
/// input) and its output is the down-projection's FP8 input; dropout masks 1 byte and the fp32
/// log-sum-exp and router logits as [`activation_bytes_per_layer`]. With `NormsUpProj`
/// (Sec. 3.2.3) the norm outputs (the attention's and the MLP's linear inputs) and, with MLA, Q,
/// K, V are not kept.
fn deepseek_fp8_activation_bytes(model: &ModelSpec, plan: &ParallelPlan, layer: u32) -> f64 {
    let sb = model.seq_len as f64 * plan.micro_batch_seqs as f64;
    let h = model.d_model as f64;
    let a = model.heads as f64;
    let q = a * model.qk_head_dim() as f64;
    let kv = model.kv_heads as f64 * (model.qk_head_dim() + model.v_head_dim()) as f64;
    let o = a * model.v_head_dim() as f64;
    let rc = plan.recompute;
    let norms_rc = rc == Recompute::NormsUpProj;
    let (fp8, e5m6, bf16) = (1.0, 1.5, 2.0);
    // Attention: its linear input (norm output), dropout mask, Q K V, the out-projection input,
    // the two norms' inputs.
    let mut bytes = if norms_rc { 0.0 } else { fp8 * sb * h }
        + hidden_dropout_mask_bytes(model, plan) / 2.0
        + e5m6 * sb * o
        + bf16 * 2.0 * sb * h;
    if !(norms_rc && model.arch.mla.is_some()) {
        bytes += bf16 * sb * (q + kv);
    }
    if let Some(m) = &model.arch.mla {
        // Latents: the up-projections' FP8 inputs; the rotary key part feeds attention.
        bytes += fp8 * sb * (m.q_lora_rank + m.kv_lora_rank) as f64
            + bf16 * sb * m.qk_rope_head_dim as f64;
    }
    let mut fp32 = if rc == Recompute::Selective {
        0.0
    } else {
        4.0 * a * sb
    };
    // The MLP's linear input (norm output) and its dropout mask.
    bytes +=
        if norms_rc { 0.0 } else { fp8 * sb * h } + hidden_dropout_mask_bytes(model, plan) / 2.0;
    let act_in = model.arch.act.matrices() - 1.0; // activation inputs: 2 SwiGLU, 1 GELU
    match model.moe() {
        Some(m) if model.is_moe_layer(layer) => {
            let fe = m.expert_ffn_hidden as f64;
            let kc = m.top_k as f64 * m.capacity_factor.unwrap_or(1.0);
            // Per assignment: the up-projection's FP8 input, the SwiGLU's FP8 inputs (its
            // output recomputed); the shared experts read the layer input already kept.
            bytes += kc * (fp8 * sb * h + fp8 * act_in * sb * fe)
                + m.shared_experts as f64 * fp8 * act_in * sb * fe;
            fp32 += 4.0 * sb * m.experts as f64;
        }
        _ => {
            let f = model.ffn_hidden as f64;
            bytes += bf16 * act_in * sb * f + fp8 * sb * f;
        }
    }
    (bytes + fp32) / plan.tp.max(1) as f64
}

/// Activation bytes one layer keeps between its forward and its backward for one micro-batch
/// on one GPU under `plan.recompute`: `None`, `Selective` and `NormsUpProj` keep
/// [`activation_bytes_per_layer`] (selective recompute with flash attention saves only the
/// log-sum-exp: the score matrix is never stored); `Full` keeps the layer input, `2sbh/t`
/// (Korthikanti et al. 2022, Table 2).
pub fn stored_activation_bytes_per_layer(
    model: &ModelSpec,
    plan: &ParallelPlan,
    layer: u32,
) -> f64 {
    stored_activation_bytes_per_layer_under(model, plan, layer, Fp8Recipe::TransformerEngine)
}

/// [`stored_activation_bytes_per_layer`] under FP8 recipe `recipe`: DeepSeek's keeps the layer
/// input (the residual stream) in BF16 under full recompute (Sec. 3.3.1).
pub fn stored_activation_bytes_per_layer_under(
    model: &ModelSpec,
    plan: &ParallelPlan,
    layer: u32,
    recipe: Fp8Recipe,
) -> f64 {
    match plan.recompute {
        Recompute::None | Recompute::Selective | Recompute::NormsUpProj => {
            activation_bytes_per_layer_under(model, plan, layer, recipe)
        }
        Recompute::Full => {
            let bytes = if plan.precision == Precision::Fp8 && recipe == Fp8Recipe::Deepseek {
                2.0
            } else {
                plan.precision_bytes()
            };
            // The layer's input at its stack's length (and an encoder-decoder's encoder output).
            super::enc_dec::full_recompute_input_elems(model, plan, layer) * bytes
                / plan.tp.max(1) as f64
        }
    }
}

/// Per-GPU memory for the stage that needs the most. Mixed-precision Adam: weights and grads
/// in `precision_bytes` (bf16 under Transformer Engine FP8), 12 B/param fp32 master+m+v (8 B if
/// `precision_bytes >= 4`), and Megatron-LM's step-time fp32 gradient copy
/// ([`MemoryStates::MixedAdamMainGradCopy`]); ZeRO 1
/// shards optimizer states, 2 also gradients, 3 also weights, over the data-parallel replicas of
/// each parameter (`dp` for non-expert, `dp/ep` for expert parameters). Under 1F1B, stage `i`
/// keeps `min(pp - i, micro_batches)` micro-batches of activations in flight (what
/// [`stored_activation_bytes_per_layer`] keeps under `plan.recompute`; with full recompute also
/// the working set of the one layer being recomputed); the last stage also keeps fp32 logits
/// (`4*s*b*vocab/tp`).
pub fn memory_per_gpu(model: &ModelSpec, plan: &ParallelPlan) -> MemoryBreakdown {
    memory_per_gpu_under(
        model,
        plan,
        PipelineKind::OneFOneB,
        (Fp8Recipe::TransformerEngine, MemoryStates::MixedAdam),
    )
}

/// What the framework keeps per parameter besides the activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MemoryStates {
    /// Megatron / DeepSpeed mixed precision with Adam-sized states: weights and gradients in
    /// compute precision, 12 B/param fp32 master + m + v (8 B when training in fp32).
    #[default]
    MixedAdam,
    /// As `MixedAdam`, with the gradients accumulated and reduced in fp32
    /// (`training.grad_reduce_dtype = "fp32"` under Megatron-LM: `accumulate_allreduce_grads_in_fp32`,
    /// `grad_reduce_in_fp32` in Megatron-Core): the contiguous gradient buffer is fp32 and each
    /// compute-precision `.grad` is added into its `main_grad` view and freed as soon as it is
    /// computed (`megatron/core/distributed/distributed_data_parallel.py`: `param.main_grad.add_(
    /// param.grad.data); param.grad = None`), so 4 B/param of gradients in place of 2 — Megatron-LM's
    /// own count, `docs/user-guide/features/dist_optimizer.md`: "bf16 parameters, fp32
    /// gradients" 18 B/param (6 + 12/d with the distributed optimizer) against 16 for bf16
    /// gradients (2 + 2 + 12, ZeRO). The distributed optimizer does not shard the buffer (ZeRO 2 does).
    MixedAdamFp32Grads,
    /// Megatron-LM mixed precision with a 16-bit gradient buffer (fp16 training, or bf16 with
    /// the gradients reduced in bf16: `grad_reduce_dtype` unset or "bf16"): as `MixedAdam`, plus
    /// the fp32 copy of the gradients the optimizer makes at its step
    /// (`Float16OptimizerWithFloat16Params._copy_model_grads_to_main_grads`: `main_param.grad =
    /// model_param.main_grad.float()`; the distributed optimizer's `shard_main_param.grad =
    /// shard_model_grad.float()`, its shard only; NVIDIA/Megatron-LM `megatron/core/optimizer/`,
    /// read 2026-12-02): 4 B/param, 4/d under the distributed optimizer (ZeRO 1) — the
    /// `docs/source/api-guide/dist_optimizer.md` table's "fp16 parameters, fp16 gradients" 20
    /// B/param (4 + 16/d distributed). The copy is freed by `zero_grad(set_to_none=True)` at
    /// the start of the next `train_step`, before any forward ("the space used by this field can
    /// be safely deallocated at this point"), so it never coexists with the activations: it
    /// counts in the peak as [`MemoryBreakdown::step_transient_bytes`]. With fp32 gradients
    /// (`MixedAdamFp32Grads`) `.float()` returns the buffer itself: no copy.
    MixedAdamMainGradCopy,
    /// fp32 variables (Mesh TensorFlow, TF 1.x `TPUEstimator`): fp32 weights and gradients;
    /// Adafactor factored without momentum (`adafactor = true`) or Adam's m and v.
    Fp32Variables {
        /// Whether the optimizer is Adafactor (else Adam / AdamW).
        adafactor: bool,
    },
}

impl MemoryStates {
    /// The states of a job with optimizer `adafactor` under `framework`, its gradients reduced
    /// in `grad_reduce` (`training.grad_reduce_dtype`; None: their own format). Only Megatron-LM
    /// keeps an fp32 gradient buffer for an fp32 reduction (and an fp32 copy at the optimizer
    /// step of a 16-bit one): DeepSpeed's (`gpt-neox`) casts each
    /// bucket to fp32 just for its all-reduce (`fp32_allreduce`, a bucket-sized transient), and
    /// fp32 variables have fp32 gradients anyway.
    pub fn of(
        framework: Framework,
        adafactor: bool,
        grad_reduce: Option<GradReduceDtype>,
    ) -> MemoryStates {
        if framework.fp32_variables() {
            MemoryStates::Fp32Variables { adafactor }
        } else if framework == Framework::Megatron && grad_reduce == Some(GradReduceDtype::Fp32) {
            MemoryStates::MixedAdamFp32Grads
        } else if framework == Framework::Megatron {
            MemoryStates::MixedAdamMainGradCopy
        } else {
            MemoryStates::MixedAdam
        }
    }
}

/// [`memory_per_gpu`] under pipeline schedule `pipeline`, FP8 recipe `recipe`
/// ([`activation_bytes_per_layer_under`]) and the framework's per-parameter `states`. DualPipe (DeepSeek-AI 2024,
/// arXiv:2412.19437, Sec. 3.2.1 and Table 2: "2x" parameters, "PP+1" activations): rank `r`
/// holds stages `r` and `pp-1-r` with their weights, gradients and optimizer states; at its
/// peak (the first forward-backward chunk of `dualpipe.py`'s step 4) it keeps `pp - h`
/// micro-batches of its near-end stage `h = min(r, pp-1-r)` and `h + 1` of its far-end stage
/// `pp-1-h` (counted from the order of `DualPipe.step`: steps 1-2 run `2(pp/2-h-1) + h+1`
/// near and `h+1` far forwards, step 3 keeps the far count, step 4 adds one near forward
/// before its first backward frees one); ranks 0 and `pp-1` each end a direction and keep
/// its fp32 logits.
pub fn memory_per_gpu_under(
    model: &ModelSpec,
    plan: &ParallelPlan,
    pipeline: PipelineKind,
    (recipe, states): (Fp8Recipe, MemoryStates),
) -> MemoryBreakdown {
    let pp = plan.pp.max(1);
    let dp = plan.dp.max(1) as f64;
    let edp = (plan.dp.max(1) / plan.ep.max(1)).max(1) as f64;
    let (p, opt) = match states {
        MemoryStates::MixedAdam
        | MemoryStates::MixedAdamFp32Grads
        | MemoryStates::MixedAdamMainGradCopy => {
            if plan.precision_bytes() >= 4.0 {
                (plan.precision_bytes(), ADAM_FP32_OPT_BYTES_PER_PARAM)
            } else if plan.precision == Precision::Fp8 && recipe == Fp8Recipe::TransformerEngine {
                // Transformer Engine's FP8 keeps the parameters and their gradients in bf16
                // (only GEMM inputs are cast to FP8, the weights once per step).
                (BF16_BYTES, ADAM_MIXED_OPT_BYTES_PER_PARAM)
            } else {
                (plan.precision_bytes(), ADAM_MIXED_OPT_BYTES_PER_PARAM)
            }
        }
        MemoryStates::Fp32Variables { adafactor: true } => {
            (FP32_BYTES, FP32_VARIABLES_ADAFACTOR_OPT_BYTES)
        }
        MemoryStates::Fp32Variables { adafactor: false } => {
            (FP32_BYTES, ADAM_FP32_OPT_BYTES_PER_PARAM)
        }
    };
    // Bytes per parameter of the fp32 gradient copy made at the optimizer step (16-bit
    // gradients under Megatron-LM only; none when training in fp32).
    let copy = if states == MemoryStates::MixedAdamMainGradCopy && p < FP32_BYTES {
        FP32_BYTES
    } else {
        0.0
    };
    // Bytes per parameter of the gradients.
    let g = if states == MemoryStates::MixedAdamFp32Grads {
        FP32_BYTES.max(p)
    } else {
        p
    };
    let shard = |stage_at_least: u8, n: f64| {
        if plan.zero_stage >= stage_at_least {
            n
        } else {
            1.0
        }
    };
    let micro_batches = plan.micro_batches().unwrap_or(pp).max(1);
    let dual = pipeline == PipelineKind::DualPipe && pp >= 2;
    let per_mb = |stage: u32| -> f64 {
        stage_layers(model, plan, stage)
            .map(|l| stored_activation_bytes_per_layer_under(model, plan, l, recipe))
            .sum()
    };
    let working = |stage: u32| -> f64 {
        if plan.recompute == Recompute::Full {
            stage_layers(model, plan, stage)
                .map(|l| activation_bytes_per_layer_under(model, plan, l, recipe))
                .fold(0.0, f64::max)
        } else {
            0.0
        }
    };
    // Logits of the tokens the head runs on (an encoder-decoder's targets).
    let logits =
        4.0 * model.target_len() as f64 * plan.micro_batch_seqs as f64 * model.vocab as f64
            / plan.tp.max(1) as f64;
    let mut worst: Option<MemoryBreakdown> = None;
    for stage in 0..pp {
        // The stages whose parameters this rank holds.
        let (near, far) = (
            stage.min(pp - 1 - stage),
            pp - 1 - stage.min(pp - 1 - stage),
        );
        let sp = if dual {
            let (a, b) = (
                stage_params(model, plan, near),
                stage_params(model, plan, far),
            );
            StageParams {
                dense: a.dense + b.dense,
                expert: a.expert + b.expert,
            }
        } else {
            stage_params(model, plan, stage)
        };
        let weights = p * (sp.dense / shard(3, dp) + sp.expert / shard(3, edp));
        let grads = g * (sp.dense / shard(2, dp) + sp.expert / shard(2, edp));
        let optimizer = opt * (sp.dense / shard(1, dp) + sp.expert / shard(1, edp));
        // Sharded as the main parameters it is the gradient of.
        let step = copy * (sp.dense / shard(1, dp) + sp.expert / shard(1, edp));
        let mut acts = if dual {
            let half = (micro_batches / 2).max(1);
            (pp - near).min(half) as f64 * per_mb(near)
                + (near + 1).min(half) as f64 * per_mb(far)
                + working(near).max(working(far))
        } else {
            let in_flight = (pp - stage).min(micro_batches) as f64;
            per_mb(stage) * in_flight + working(stage)
        };
        if stage + 1 == pp || (dual && stage == 0) {
            acts += logits;
        }
        let m = MemoryBreakdown {
            weights_bytes: weights,
            grads_bytes: grads,
            optimizer_bytes: optimizer,
            activations_bytes: acts,
            step_transient_bytes: step,
            total_bytes: weights + grads + optimizer + acts.max(step),
        };
        if worst.as_ref().is_none_or(|w| m.total_bytes > w.total_bytes) {
            worst = Some(m);
        }
    }
    worst.unwrap_or(MemoryBreakdown {
        weights_bytes: 0.0,
        grads_bytes: 0.0,
        optimizer_bytes: 0.0,
        activations_bytes: 0.0,
        step_transient_bytes: 0.0,
        total_bytes: 0.0,
    })
}

/// The memory breakdown if it fits in `hbm_bytes` per GPU, else [`WorkloadError::DoesNotFit`]
/// saying by how many GiB it is over.
pub fn check_fits(
    model: &ModelSpec,
    plan: &ParallelPlan,
    hbm_bytes: f64,
) -> Result<MemoryBreakdown, WorkloadError> {
    check_fits_under(
        model,
        plan,
        (
            PipelineKind::OneFOneB,
            Fp8Recipe::TransformerEngine,
            MemoryStates::MixedAdam,
        ),
        hbm_bytes,
    )
}

/// [`check_fits`] under a pipeline schedule and an FP8 recipe ([`memory_per_gpu_under`]).
pub fn check_fits_under(
    model: &ModelSpec,
    plan: &ParallelPlan,
    (pipeline, recipe, states): (PipelineKind, Fp8Recipe, MemoryStates),
    hbm_bytes: f64,
) -> Result<MemoryBreakdown, WorkloadError> {
    if !(hbm_bytes.is_finite() && hbm_bytes > 0.0) {
        return Err(invalid(
            "hardware.hbm_bytes",
            hbm_bytes,
            "must be a finite number of bytes > 0",
        ));
    }
    let m = memory_per_gpu_under(model, plan, pipeline, (recipe, states));
    if m.total_bytes > hbm_bytes {
        return Err(WorkloadError::DoesNotFit {
            need_gib: m.total_bytes / GIB,
            have_gib: hbm_bytes / GIB,
            over_gib: (m.total_bytes - hbm_bytes) / GIB,
            breakdown: m.describe(),
        });
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::super::model::presets::*;
    use super::*;

    const H100_HBM_BYTES: f64 = 80e9; // H100 SXM: 80 GB HBM3 (NVIDIA H100 datasheet).

    fn plan(dp: u32, tp: u32, pp: u32, zero: u8) -> ParallelPlan {
        ParallelPlan {
            dp,
            tp,
            pp,
            ep: 1,
            micro_batch_seqs: 1,
            global_batch_seqs: 64 * dp,
            zero_stage: zero,
            recompute: Recompute::Selective,
            precision: crate::workload::Precision::Bf16,
        }
    }

    #[test]
    fn korthikanti_34sbh_recovered_for_mha_with_8h_over_3_swiglu() {
        // A model matching the paper's assumptions (MHA, FFN params = 8h^2) gives 34sbh with
        // flash attention (no 5as^2b score term; + the 4as fp32 log-sum-exp, 0.09 % here).
        let mut m = llama2_7b();
        m.ffn_hidden = 8 * m.d_model / 3 + 1; // 10923: as close to 8h/3 as integers allow
                                              // The paper counts two hidden-dropout masks (Megatron-LM's `--hidden-dropout 0.1`).
        m.arch.hidden_dropout = 0.1;
        let (s, h, a) = (m.seq_len as f64, m.d_model as f64, m.heads as f64);
        let p = ParallelPlan {
            recompute: Recompute::None,
            ..plan(1, 1, 1, 0)
        };
        let expect = s * h * 34.0 + 4.0 * a * s;
        let got = activation_bytes_per_layer(&m, &p, 0);
        assert!((got / expect - 1.0).abs() < 1e-3, "{got} vs {expect}");
        // The eager kernel's 5as^2b score term (5x the rest at s = 4096) is gone.
        assert!(got < s * h * (34.0 + 5.0 * a * s / h) / 5.0);
        // Selective (+ SP, tp 4): 34sbh/t (eq. 6).
        let p = ParallelPlan {
            recompute: Recompute::Selective,
            tp: 4,
            ..p
        };
        let got = stored_activation_bytes_per_layer(&m, &p, 0);
        assert!((got / (s * h * 34.0 / 4.0) - 1.0).abs() < 1e-3);
        // Full: 2sbh/t (Table 2).
        let p = ParallelPlan {
            recompute: Recompute::Full,
            ..p
        };
        let got = stored_activation_bytes_per_layer(&m, &p, 0);
        assert!((got / (s * h * 2.0 / 4.0) - 1.0).abs() < 1e-12);
        // Without dropout the two 1-byte masks (2sbh) are not kept: 32sbh (+ the log-sum-exp).
        m.arch.hidden_dropout = 0.0;
        let p = ParallelPlan {
            recompute: Recompute::None,
            tp: 1,
            ..p
        };
        let got = activation_bytes_per_layer(&m, &p, 0);
        assert!((got / (s * h * 32.0 + 4.0 * a * s) - 1.0).abs() < 1e-3);
    }

    #[test]
    fn the_parallel_block_keeps_its_shared_input_once() {
        // Serial 32sbh (no dropout, the Korthikanti model above); the parallel block's two
        // norms read one input (-2sbh: 30sbh); one shared norm also has one output for both
        // branches (-2sbh more: 28sbh). The fp32 log-sum-exp 4as is common to all three.
        let mut m = llama2_7b();
        m.ffn_hidden = 8 * m.d_model / 3 + 1;
        let (s, h, a) = (m.seq_len as f64, m.d_model as f64, m.heads as f64);
        let p = ParallelPlan {
            recompute: Recompute::None,
            ..plan(1, 1, 1, 0)
        };
        let per = |m: &ModelSpec| (activation_bytes_per_layer(m, &p, 0) - 4.0 * a * s) / (s * h);
        let serial = per(&m);
        assert!((serial - 32.0).abs() < 1e-2, "{serial}");
        m.arch.parallel_residual = true;
        assert!((serial - per(&m) - 2.0).abs() < 1e-9, "{}", per(&m));
        m.arch.parallel_shared_norm = true;
        assert!((serial - per(&m) - 4.0).abs() < 1e-9, "{}", per(&m));
    }

    #[test]
    fn dense_70b_on_8x80gb_dp8_does_not_fit_and_says_by_how_much() {
        let m = llama2_70b();
        let e = check_fits(&m, &plan(8, 1, 1, 0), H100_HBM_BYTES).unwrap_err();
        match &e {
            WorkloadError::DoesNotFit {
                need_gib,
                have_gib,
                over_gib,
                breakdown,
            } => {
                // 16 B/param x 69e9 params = 1.1 TB of model states on one GPU.
                assert!(*need_gib > 1000.0, "{need_gib}");
                assert!((need_gib - have_gib - over_gib).abs() < 1e-9);
                assert!(breakdown.contains("optimizer"));
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("over by"), "{e}");
    }

    #[test]
    fn dense_70b_fits_once_sharded_over_tp8_and_enough_gpus() {
        let m = llama2_70b();
        // tp = 8 on only 8 GPUs still needs 16 B x 69e9 / 8 = 138 GB per GPU: no plan on
        // 8 x 80 GB holds mixed-precision Adam for 70B parameters (1.1 TB > 640 GB).
        let over8 = check_fits(&m, &plan(1, 8, 1, 0), H100_HBM_BYTES).unwrap_err();
        assert!(matches!(over8, WorkloadError::DoesNotFit { over_gib, .. } if over_gib > 40.0));
        // tp = 8 x pp = 4 (32 GPUs) fits; so does tp = 8 with ZeRO-3 over dp = 4.
        let fit = check_fits(&m, &plan(1, 8, 4, 0), H100_HBM_BYTES).unwrap();
        assert!(fit.total_bytes < H100_HBM_BYTES && fit.activations_bytes > 0.0);
        check_fits(&m, &plan(4, 8, 1, 3), H100_HBM_BYTES).unwrap();
    }

    #[test]
    fn fp32_variables_hold_fp32_weights_and_grads_and_adafactor_no_master() {
        let m = llama2_7b();
        let p = plan(8, 1, 1, 0);
        let under = |states| {
            memory_per_gpu_under(
                &m,
                &p,
                PipelineKind::OneFOneB,
                (Fp8Recipe::default(), states),
            )
        };
        let n = m.params_total();
        let ada = under(MemoryStates::Fp32Variables { adafactor: true });
        assert!((ada.weights_bytes / n - 4.0).abs() < 1e-9);
        assert!((ada.grads_bytes / n - 4.0).abs() < 1e-9);
        assert_eq!(ada.optimizer_bytes, 0.0);
        let adam = under(MemoryStates::Fp32Variables { adafactor: false });
        assert!((adam.optimizer_bytes / n - 8.0).abs() < 1e-9);
        // Megatron's bf16 mixed precision: 2 + 2 + 12 B; same activations either way.
        let mixed = under(MemoryStates::MixedAdam);
        assert!(
            ((mixed.weights_bytes + mixed.grads_bytes + mixed.optimizer_bytes) / n - 16.0).abs()
                < 1e-9
        );
        assert_eq!(mixed.activations_bytes, ada.activations_bytes);
        assert_eq!(
            MemoryStates::of(Framework::Megatron, true, None),
            MemoryStates::MixedAdamMainGradCopy
        );
        assert_eq!(
            MemoryStates::of(Framework::GptNeox, true, None),
            MemoryStates::MixedAdam
        );
    }

    /// Megatron-LM with the gradients reduced in fp32 keeps an fp32 gradient buffer: 2 + 4 + 12
    /// = 18 B/param (its dist_optimizer.md table), 6 + 12/d under the distributed optimizer
    /// (ZeRO 1); DeepSpeed's transient fp32 cast and bf16 reductions keep 2 B gradients.
    #[test]
    fn an_fp32_gradient_reduction_keeps_fp32_gradients_under_megatron() {
        let m = llama2_7b();
        let n = m.params_total();
        let per_param = |zero: u8, states| {
            let b = memory_per_gpu_under(
                &m,
                &plan(8, 1, 1, zero),
                PipelineKind::OneFOneB,
                (Fp8Recipe::default(), states),
            );
            (b.weights_bytes + b.grads_bytes + b.optimizer_bytes) / n
        };
        let fp32_grads = MemoryStates::of(Framework::Megatron, false, Some(GradReduceDtype::Fp32));
        assert_eq!(fp32_grads, MemoryStates::MixedAdamFp32Grads);
        assert!((per_param(0, fp32_grads) - 18.0).abs() < 1e-9);
        assert!((per_param(1, fp32_grads) - (6.0 + 12.0 / 8.0)).abs() < 1e-9);
        assert!((per_param(0, MemoryStates::MixedAdam) - 16.0).abs() < 1e-9);
        for (framework, dtype, states) in [
            (
                Framework::Megatron,
                Some(GradReduceDtype::Bf16),
                MemoryStates::MixedAdamMainGradCopy,
            ),
            (
                Framework::Megatron,
                None,
                MemoryStates::MixedAdamMainGradCopy,
            ),
            (
                Framework::GptNeox,
                Some(GradReduceDtype::Fp32),
                MemoryStates::MixedAdam,
            ),
            (Framework::GptNeox, None, MemoryStates::MixedAdam),
        ] {
            assert_eq!(
                MemoryStates::of(framework, false, dtype),
                states,
                "{framework:?} {dtype:?}"
            );
        }
    }

    /// Megatron-LM's bytes per parameter, `docs/source/api-guide/dist_optimizer.md` (d = data
    /// parallel size), counted by hand:
    /// - fp16 params + fp16 grads: 2 + 2 + fp32 grad copy 4 + master 4 + Adam m, v 8 = 20;
    ///   distributed 2 + 2 + (4 + 4 + 8)/d = 4 + 16/d;
    /// - bf16 params + fp32 grads: 2 + 4 + 4 + 8 = 18; distributed 6 + 12/d;
    /// - fp32 params + fp32 grads: 4 + 4 + 8 = 16; distributed 8 + 8/d.
    ///
    /// The fp32 copy of 16-bit gradients exists only at the optimizer step: the peak holds it
    /// or the activations, whichever is larger.
    #[test]
    fn megatron_bytes_per_param_match_its_distributed_optimizer_table() {
        let m = llama2_7b();
        let n = m.params_total();
        let d = 8.0;
        let at = |precision: Precision, zero: u8, grad_reduce| {
            let p = ParallelPlan {
                precision,
                ..plan(8, 1, 1, zero)
            };
            let states = MemoryStates::of(Framework::Megatron, false, grad_reduce);
            memory_per_gpu_under(
                &m,
                &p,
                PipelineKind::OneFOneB,
                (Fp8Recipe::default(), states),
            )
        };
        let per_param = |b: &MemoryBreakdown| {
            (b.weights_bytes + b.grads_bytes + b.optimizer_bytes + b.step_transient_bytes) / n
        };
        let fp32 = Some(GradReduceDtype::Fp32);
        for (precision, grad_reduce, plain, dist) in [
            (Precision::Fp16, None, 20.0, 4.0 + 16.0 / d),
            (
                Precision::Bf16,
                Some(GradReduceDtype::Bf16),
                20.0,
                4.0 + 16.0 / d,
            ),
            (Precision::Bf16, fp32, 18.0, 6.0 + 12.0 / d),
            (Precision::Fp16, fp32, 18.0, 6.0 + 12.0 / d),
            (Precision::Fp32, None, 16.0, 8.0 + 8.0 / d),
        ] {
            let b = at(precision, 0, grad_reduce);
            assert!(
                (per_param(&b) - plain).abs() < 1e-9,
                "{precision:?} {grad_reduce:?}: {}",
                per_param(&b)
            );
            let b = at(precision, 1, grad_reduce);
            assert!(
                (per_param(&b) - dist).abs() < 1e-9,
                "{precision:?} {grad_reduce:?} dist: {}",
                per_param(&b)
            );
        }
        // The copy (4 B/param, 27 GB here) and the activations of one 4096-token micro-batch
        // (selective recompute, about 18 GB) never coexist: the peak takes the copy.
        let b = at(Precision::Fp16, 0, None);
        assert!((b.step_transient_bytes / n - 4.0).abs() < 1e-9);
        assert!(b.step_transient_bytes > b.activations_bytes);
        let states = b.weights_bytes + b.grads_bytes + b.optimizer_bytes;
        assert!((b.total_bytes - (states + b.step_transient_bytes)).abs() < 1.0);
        assert!(b.describe().contains("optimizer step"));
        // Under the distributed optimizer over 8 ranks the copy (0.5 B/param) hides under them.
        let b = at(Precision::Fp16, 1, None);
        assert!(b.step_transient_bytes < b.activations_bytes);
        let states = b.weights_bytes + b.grads_bytes + b.optimizer_bytes;
        assert!((b.total_bytes - (states + b.activations_bytes)).abs() < 1.0);
        // fp32 gradients: no copy, no transient.
        assert_eq!(at(Precision::Bf16, 0, fp32).step_transient_bytes, 0.0);
        // FP8 under Transformer Engine: bf16 parameters and gradients, as bf16 training (20 B).
        let b = at(Precision::Fp8, 0, None);
        assert!((per_param(&b) - 20.0).abs() < 1e-9, "{}", per_param(&b));
        assert!((b.weights_bytes / n - 2.0).abs() < 1e-9);
    }

    #[test]
    fn zero_stages_shard_successively_more() {
        let m = llama2_7b();
        let z: Vec<MemoryBreakdown> = (0..=3)
            .map(|s| memory_per_gpu(&m, &plan(8, 1, 1, s)))
            .collect();
        assert!(
            z[1].optimizer_bytes < z[0].optimizer_bytes && z[1].grads_bytes == z[0].grads_bytes
        );
        assert!(z[2].grads_bytes < z[1].grads_bytes && z[2].weights_bytes == z[1].weights_bytes);
        assert!(z[3].weights_bytes < z[2].weights_bytes);
        // ZeRO-0 model states are 16 B per parameter.
        let states = z[0].weights_bytes + z[0].grads_bytes + z[0].optimizer_bytes;
        assert!((states / (16.0 * m.params_total()) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn expert_weights_shard_over_ep_and_recompute_saves_memory() {
        let m = mixtral_8x7b();
        let p1 = ParallelPlan {
            ep: 1,
            ..plan(8, 1, 1, 0)
        };
        let p8 = ParallelPlan {
            ep: 8,
            ..p1.clone()
        };
        let w1 = memory_per_gpu(&m, &p1).weights_bytes;
        let w8 = memory_per_gpu(&m, &p8).weights_bytes;
        let expected = 2.0 * (m.params_total() - m.routed_expert_params_total() * 7.0 / 8.0);
        assert!(
            w8 < w1 && (w8 / expected - 1.0).abs() < 1e-9,
            "{w8} {expected}"
        );
        let no_rc = memory_per_gpu(
            &m,
            &ParallelPlan {
                recompute: Recompute::None,
                ..p8.clone()
            },
        );
        assert!(no_rc.activations_bytes > memory_per_gpu(&m, &p8).activations_bytes);
    }

    #[test]
    fn stage_zero_keeps_pp_microbatches_in_flight() {
        let m = llama2_7b();
        let p = plan(1, 1, 4, 0);
        let per_layer = activation_bytes_per_layer(&m, &p, 0);
        let mem = memory_per_gpu(&m, &p);
        // Stage 0: 8 layers x 4 micro-batches in flight (the worst stage).
        assert!((mem.activations_bytes / (per_layer * 8.0 * 4.0) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn dualpipe_holds_two_stages_and_pp_plus_one_micro_batches() {
        // DeepSeek-V3 report Table 2: DualPipe "2x" parameters and "PP+1" activations.
        let m = llama2_7b();
        let p = ParallelPlan {
            recompute: Recompute::None,
            ..plan(2, 1, 4, 0)
        };
        let one = memory_per_gpu(&m, &p);
        let two = memory_per_gpu_under(
            &m,
            &p,
            PipelineKind::DualPipe,
            (Fp8Recipe::default(), MemoryStates::MixedAdam),
        );
        // Even stages of 8 layers; the worst 1F1B stage holds the embedding or the head, a
        // DualPipe rank 0 holds both (stage 0 and stage 3).
        let (s0, s3) = (stage_params(&m, &p, 0), stage_params(&m, &p, 3));
        assert!((two.weights_bytes - 2.0 * (s0.dense + s3.dense)).abs() < 1.0);
        assert!(two.weights_bytes > 1.9 * one.weights_bytes);
        // Activations: every rank keeps pp + 1 = 5 micro-batches of equal stages (+ logits at
        // both ends); 1F1B's stage 0 keeps pp = 4.
        let per_mb: f64 = (0..8)
            .map(|l| stored_activation_bytes_per_layer(&m, &p, l))
            .sum();
        let logits = 4.0 * m.seq_len as f64 * m.vocab as f64;
        assert!((two.activations_bytes - (5.0 * per_mb + logits)).abs() < 1.0);
    }

    #[test]
    fn deepseek_recompute_keeps_neither_norm_nor_up_projection_outputs() {
        // DeepSeek-V3 report Sec. 3.2.3: less kept than no recompute, more than full.
        let m = deepseek_v3();
        let at = |r| {
            let p = ParallelPlan {
                recompute: r,
                ..plan(1, 1, 1, 0)
            };
            stored_activation_bytes_per_layer(&m, &p, 5)
        };
        let (none, ds, full) = (
            at(Recompute::None),
            at(Recompute::NormsUpProj),
            at(Recompute::Full),
        );
        assert!(full < ds && ds < none, "{full} {ds} {none}");
        // By hand: 4sbh (norm outputs) + 2sb(q + kv) (MLA up-projection outputs), bf16.
        let (s, h) = (m.seq_len as f64, m.d_model as f64);
        let q = m.heads as f64 * m.qk_head_dim() as f64;
        let kv = m.kv_heads as f64 * (m.qk_head_dim() + m.v_head_dim()) as f64;
        assert!((none - ds - (4.0 * s * h + 2.0 * s * (q + kv))).abs() < 1.0);
    }

    #[test]
    fn deepseek_fp8_keeps_linear_inputs_in_fp8_and_the_rest_in_bf16() {
        // DeepSeek-V3 report Sec. 3.3.1/3.3.3, by hand for a standard-attention SwiGLU layer:
        // attention input 1 + mask 1 + out-proj input (E5M6) 1.5 + norm inputs 4 + Q, K, V
        // 2 x 3 (sbh), MLP input 1 + mask 1 (sbh), SwiGLU inputs 2 x 2 + down input 1 (sbf),
        // the fp32 log-sum-exp 4as.
        let mut m = llama2_7b();
        m.arch.hidden_dropout = 0.1; // the two 1-byte masks counted below
        let p = ParallelPlan {
            recompute: Recompute::None,
            precision: crate::workload::Precision::Fp8,
            ..plan(1, 1, 1, 0)
        };
        let (s, h, f, a) = (
            m.seq_len as f64,
            m.d_model as f64,
            m.ffn_hidden as f64,
            m.heads as f64,
        );
        let got = activation_bytes_per_layer_under(&m, &p, 0, Fp8Recipe::Deepseek);
        let want = 15.5 * s * h + 5.0 * s * f + 4.0 * a * s;
        assert!((got - want).abs() < 1.0, "{got} vs {want}");
        // Between all-FP8 and all-BF16.
        let bf = ParallelPlan {
            precision: crate::workload::Precision::Bf16,
            ..p.clone()
        };
        assert!(got < activation_bytes_per_layer(&m, &bf, 0));
        assert!(got > activation_bytes_per_layer(&m, &p, 0));
        // DeepSeek-V3's MoE layer under its own recompute keeps less than without it.
        let ds = deepseek_v3();
        let with = |r| {
            let q = ParallelPlan {
                recompute: r,
                ..p.clone()
            };
            stored_activation_bytes_per_layer_under(&ds, &q, 5, Fp8Recipe::Deepseek)
        };
        assert!(with(Recompute::NormsUpProj) < with(Recompute::None));
        assert!(with(Recompute::Full) < with(Recompute::NormsUpProj));
    }

    #[test]
    fn bad_hbm_is_an_error() {
        let e = check_fits(&llama2_7b(), &plan(1, 1, 1, 0), f64::NAN).unwrap_err();
        assert!(e.to_string().contains("hardware.hbm_bytes"));
    }
}
