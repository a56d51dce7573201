//! Parallelism plan (data, tensor, pipeline, expert parallel; micro-batching; ZeRO; precision) and its validation.

use super::error::{invalid, WorkloadError};
use super::model::ModelSpec;

/// Activation recomputation (Korthikanti et al. 2022, arXiv:2205.05198, Sec. 4-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Recompute {
    /// Keep every activation the backward needs (flash attention keeps no score matrix).
    #[default]
    None,
    /// Recompute the attention core in backward (Megatron `--recompute-granularity selective`).
    Selective,
    /// Keep only each layer's input; re-run the layer's whole forward before its backward
    /// (Megatron `--recompute-granularity full`).
    Full,
    /// Recompute every normalisation and the MLA up-projections in backward, keeping no
    /// output of either (DeepSeek-AI 2024, DeepSeek-V3 report arXiv:2412.19437, Sec. 3.2.3
    /// "Recomputation of RMSNorm and MLA Up-Projection"); on a model without MLA only the norms.
    NormsUpProj,
}

impl Recompute {
    /// The scenario's legacy `recompute = true|false`: `true` is what the step model has always
    /// charged (one extra forward of every layer) = [`Recompute::Full`]; `false` = [`Recompute::None`].
    pub fn from_legacy_bool(on: bool) -> Self {
        if on {
            Recompute::Full
        } else {
            Recompute::None
        }
    }

    /// Parse `none | selective | full` (also `false` / `true` for the legacy boolean).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "none" | "false" => Some(Recompute::None),
            "selective" => Some(Recompute::Selective),
            "full" | "true" => Some(Recompute::Full),
            "norms_up_proj" => Some(Recompute::NormsUpProj),
            _ => None,
        }
    }

    /// Whether any recomputation happens.
    pub fn is_on(self) -> bool {
        self != Recompute::None
    }
}

/// How one training job is laid out on GPUs.
///
/// Layout rule (Megatron-style): the job uses `dp * tp * pp` GPUs. Expert-parallel groups are
/// carved out of the data-parallel dimension: `ep` must divide `dp` (and `experts`); the `ep`
/// data-parallel ranks of one group each hold `experts / ep` experts of every MoE layer and
/// exchange tokens by all-to-all. Expert matrices are additionally sharded over `tp` (expert
/// tensor parallelism = `tp`). Expert gradients are reduced over the `dp / ep` replicas of
/// each expert; non-expert gradients over all `dp` replicas. Sequence parallelism is assumed
/// on whenever `tp > 1` (activations of norms/dropout are sharded by `tp`).
#[derive(Clone, Debug, PartialEq)]
pub struct ParallelPlan {
    /// Data-parallel degree (model replicas).
    pub dp: u32,
    /// Tensor-parallel degree.
    pub tp: u32,
    /// Pipeline-parallel degree (stages).
    pub pp: u32,
    /// Expert-parallel degree (must divide `dp` and the expert count); 1 for dense models.
    pub ep: u32,
    /// Micro-batch size [sequences].
    pub micro_batch_seqs: u32,
    /// Global batch size per optimizer step [sequences].
    pub global_batch_seqs: u32,
    /// ZeRO stage 0..=3 (1: optimizer states sharded over dp; 2: + gradients; 3: + weights).
    pub zero_stage: u8,
    /// Activation recomputation, read by both the memory model and the step's operation list.
    pub recompute: Recompute,
    /// Numeric format of the job's matmuls, weights and activations (`training.precision`).
    pub precision: super::Precision,
}

impl ParallelPlan {
    /// One GPU (dp = tp = pp = ep = 1) training one sequence per micro-batch and per step, no
    /// ZeRO, no recomputation, in `precision`: the plan of a single-device measurement or test.
    pub fn single_gpu(precision: super::Precision) -> Self {
        ParallelPlan {
            dp: 1,
            tp: 1,
            pp: 1,
            ep: 1,
            micro_batch_seqs: 1,
            global_batch_seqs: 1,
            zero_stage: 0,
            recompute: Recompute::None,
            precision,
        }
    }

    /// Bytes per weight/activation element in the compute precision (2 = bf16/fp16).
    pub fn precision_bytes(&self) -> f64 {
        self.precision.bytes_per_element()
    }

    /// GPUs used: `dp * tp * pp` (expert parallelism reuses the data-parallel ranks).
    pub fn gpus(&self) -> u32 {
        self.dp.saturating_mul(self.tp).saturating_mul(self.pp)
    }

    /// Micro-batches per data-parallel rank per step: `global / (dp * micro)`; an error if it
    /// does not divide, naming the nearest valid global batch sizes.
    pub fn micro_batches(&self) -> Result<u32, WorkloadError> {
        let step = self.dp as u64 * self.micro_batch_seqs as u64;
        if step == 0 {
            return Err(invalid(
                if self.dp == 0 {
                    "plan.dp"
                } else {
                    "plan.micro_batch_seqs"
                },
                0,
                "must be at least 1",
            ));
        }
        let g = self.global_batch_seqs as u64;
        if g == 0 || !g.is_multiple_of(step) {
            let lower = (g / step).max(1) * step;
            let upper = (g / step + 1) * step;
            return Err(WorkloadError::BatchNotDivisible {
                global: self.global_batch_seqs,
                dp: self.dp,
                micro: self.micro_batch_seqs,
                step,
                lower,
                upper,
            });
        }
        // g / step <= g <= u32::MAX.
        Ok((g / step) as u32)
    }

    /// Layers `[first, end)` of pipeline `stage` of a `layers`-layer model. When `pp` does not
    /// divide the layers, the first `layers mod pp` stages take one layer more (DeepSpeed
    /// `PipelineModule` `partition_method="uniform"`, `runtime/utils.py::partition_uniform`;
    /// Megatron-LM reaches the same split with `--decoder-first-pipeline-num-layers`): the last
    /// stage, which also runs the LM head and the loss, is never the heavier one.
    pub fn stage_layers(&self, layers: u32, stage: u32) -> std::ops::Range<u32> {
        let pp = self.pp.max(1);
        let (per, extra) = (layers / pp, layers % pp);
        let start = |s: u32| s * per + s.min(extra);
        start(stage).min(layers)..start(stage + 1).min(layers)
    }

    /// Experts of each MoE layer held by one expert-parallel rank (0 for dense models).
    pub fn experts_per_rank(&self, model: &ModelSpec) -> u32 {
        model.moe().map_or(0, |m| m.experts / self.ep.max(1))
    }

    /// Check the plan against the model and the GPU count: positive degrees, `tp | heads`,
    /// `tp | kv_heads`, `tp | ffn widths`, `pp <= layers`, `ep | experts`, `ep | dp`,
    /// `dp*tp*pp == gpus_available`, batch divisibility, `zero_stage <= 3`, precision in (0, 8].
    pub fn validate(&self, model: &ModelSpec, gpus_available: u32) -> Result<(), WorkloadError> {
        let positive: [(&'static str, u32); 6] = [
            ("plan.dp", self.dp),
            ("plan.tp", self.tp),
            ("plan.pp", self.pp),
            ("plan.ep", self.ep),
            ("plan.micro_batch_seqs", self.micro_batch_seqs),
            ("plan.global_batch_seqs", self.global_batch_seqs),
        ];
        for (field, v) in positive {
            if v == 0 {
                return Err(invalid(field, v, "must be at least 1"));
            }
        }
        if self.zero_stage > 3 {
            return Err(invalid(
                "plan.zero_stage",
                self.zero_stage,
                "must be 0, 1, 2 or 3",
            ));
        }
        let divides = |field: &'static str, v: u32, of_field: &str, of: u32| {
            if !of.is_multiple_of(v) {
                Err(invalid(
                    field,
                    v,
                    format!(
                        "must divide {of_field} = {of}; valid values: {}",
                        divisors(of)
                    ),
                ))
            } else {
                Ok(())
            }
        };
        divides("plan.tp", self.tp, "model.heads", model.heads)?;
        // Fewer KV heads than tensor-parallel ranks (multi-query attention, PaLM's 12-way model
        // parallelism, StarCoder's tp 4): each KV head is replicated on `tp / kv_heads` ranks, as the
        // BigCode Megatron-LM fork and JAX/Pax do; otherwise the KV heads split evenly over tp.
        if model.kv_heads >= self.tp || !self.tp.is_multiple_of(model.kv_heads) {
            divides("plan.tp", self.tp, "model.kv_heads", model.kv_heads)?;
        }
        if model.dense_layers() > 0 {
            divides("plan.tp", self.tp, "model.ffn_hidden", model.ffn_hidden)?;
        }
        // Uneven stages are allowed (see [`ParallelPlan::stage_layers`]); every stage needs a layer.
        if self.pp > model.layers {
            return Err(invalid(
                "plan.pp",
                self.pp,
                format!(
                    "must be at most model.layers = {} (every pipeline stage needs a layer)",
                    model.layers
                ),
            ));
        }
        match model.moe() {
            None => {
                if self.ep != 1 {
                    return Err(invalid("plan.ep", self.ep, "must be 1 for a dense model"));
                }
            }
            Some(m) => {
                divides(
                    "plan.tp",
                    self.tp,
                    "model.expert_ffn_hidden",
                    m.expert_ffn_hidden,
                )?;
                divides("plan.ep", self.ep, "model.experts", m.experts)?;
                divides("plan.ep", self.ep, "plan.dp", self.dp)?;
            }
        }
        let product = self.dp as u64 * self.tp as u64 * self.pp as u64;
        if product != gpus_available as u64 {
            return Err(WorkloadError::GpuCountMismatch {
                dp: self.dp,
                tp: self.tp,
                pp: self.pp,
                product,
                available: gpus_available,
            });
        }
        self.micro_batches()?;
        Ok(())
    }
}

/// The framework's pipeline schedule and communication overlap (`[parallel.X] virtual_stages`,
/// `[training] overlap_ep_comm`, `overlap_grad_sync`): what the fast step model needs besides
/// the layout to put the priced ops on a critical path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Model chunks per pipeline stage (interleaved 1F1B, Narayanan et al. 2021, SC'21,
    /// Sec. 2.2.2); 1 = plain 1F1B.
    pub virtual_stages: u32,
    /// Dispatch/combine all-to-alls hidden behind the compute of another micro-batch
    /// (Megatron-LM `--overlap-moe-expert-parallel-comm`, default off).
    pub overlap_ep_comm: bool,
    /// Gradient reduce-scatter / all-reduce overlapped with the last micro-batch's backward
    /// (Megatron-LM `--overlap-grad-reduce`, default off).
    pub overlap_grad_sync: bool,
    /// The distributed optimizer's parameter all-gather overlapped with the next step's
    /// forward, bucket by bucket (Megatron-LM `--overlap-param-gather`, apex
    /// `DistributedFusedAdam(overlap_param_sync=True)`, default off); needs ZeRO 1 or 2.
    pub overlap_param_gather: bool,
    /// Which pipeline schedule runs the passes (`training.pipeline_schedule`).
    pub pipeline: PipelineKind,
}

/// The pipeline schedule family (`training.pipeline_schedule`): Megatron-LM's 1F1B (interleaved
/// with `virtual_stages > 1`, combined with `overlap_ep_comm`) or DeepSeek's DualPipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
pub enum PipelineKind {
    /// 1F1B (PipeDream-Flush; Narayanan et al. 2021), Megatron-LM's default.
    #[default]
    #[serde(rename = "1f1b")]
    OneFOneB,
    /// DualPipe (DeepSeek-AI 2024, "DeepSeek-V3 Technical Report", arXiv:2412.19437, Sec. 3.2.1,
    /// Fig. 5, Table 2; order of chunks from github.com/deepseek-ai/DualPipe `dualpipe/dualpipe.py`):
    /// micro-batches fed from both ends of the pipeline, rank `r` holding stages `r` and
    /// `pp-1-r` (two copies of the parameters), each steady-state forward chunk run together with
    /// a backward chunk of the other direction so that one's all-to-alls hide under the other's
    /// compute.
    #[serde(rename = "dualpipe")]
    DualPipe,
}

impl PipelineKind {
    /// The scenario spelling (`"1f1b"`, `"dualpipe"`).
    pub fn as_str(self) -> &'static str {
        match self {
            PipelineKind::OneFOneB => "1f1b",
            PipelineKind::DualPipe => "dualpipe",
        }
    }
}

impl Default for Schedule {
    /// Megatron-LM core's defaults: plain 1F1B, no overlap (`DistributedDataParallelConfig.
    /// overlap_grad_reduce = False`, `TransformerConfig.overlap_moe_expert_parallel_comm =
    /// False`; `--overlap-grad-reduce` and `--overlap-moe-expert-parallel-comm` are opt-in flags
    /// of `megatron/training/arguments.py`).
    fn default() -> Self {
        Schedule {
            virtual_stages: 1,
            overlap_ep_comm: false,
            overlap_grad_sync: false,
            overlap_param_gather: false,
            pipeline: PipelineKind::OneFOneB,
        }
    }
}

impl Schedule {
    /// Whether the step runs Megatron-LM's combined 1F1B (`overlap_moe_expert_parallel_comm`):
    /// the all-to-all overlap is on and the model has all-to-alls to hide (MoE, ep > 1); the
    /// checks of [`Schedule::validate`] on it apply only then (a dense plan of the same
    /// `[training]` ignores the flag).
    pub fn combined_1f1b(&self, model: &ModelSpec, plan: &ParallelPlan) -> bool {
        self.overlap_ep_comm && model.moe().is_some() && plan.ep > 1
    }

    /// Check the schedule against the model and plan: `virtual_stages >= 1`; with more than one,
    /// `pp >= 2`, at least one layer per model chunk (`pp * virtual_stages <= layers`) and the
    /// micro-batches a multiple of `pp` (Megatron-LM's interleaved schedule asserts both).
    pub fn validate(&self, model: &ModelSpec, plan: &ParallelPlan) -> Result<(), WorkloadError> {
        if self.overlap_param_gather {
            // Only the distributed optimizer (ZeRO 1/2) all-gathers the updated parameters once
            // per step; ZeRO 3 gathers per layer (already on its own stream), ZeRO 0 not at all.
            if !(1..=2).contains(&plan.zero_stage) {
                return Err(invalid(
                    "training.overlap_param_gather",
                    true,
                    format!(
                        "needs zero_stage = 1 or 2 (the distributed optimizer's per-step parameter all-gather), got {}",
                        plan.zero_stage
                    ),
                ));
            }
            if self.pipeline == PipelineKind::DualPipe {
                return Err(invalid(
                    "training.overlap_param_gather",
                    true,
                    "is modelled on the 1F1B schedules only, not with pipeline_schedule = \"dualpipe\"",
                ));
            }
        }
        if self.pipeline == PipelineKind::DualPipe {
            return self.validate_dualpipe(plan);
        }
        if self.combined_1f1b(model, plan) {
            // Megatron-LM's `TransformerConfig.__post_init__` asserts virtual pipeline stages
            // with pipeline parallelism and no full recomputation with
            // `overlap_moe_expert_parallel_comm`; ZeRO-3 gathers inside the combined passes are
            // not modelled. (Without interleaving, the combined passes of neighbouring stages
            // would wait on each other in turn.)
            if plan.pp > 1 && self.virtual_stages < 2 {
                return Err(invalid(
                    "training.overlap_ep_comm",
                    true,
                    format!(
                        "with pp = {} needs virtual_stages >= 2 (Megatron-LM runs the all-to-all overlap only on the interleaved schedule when pipelining)",
                        plan.pp
                    ),
                ));
            }
            if plan.recompute == Recompute::Full {
                return Err(invalid(
                    "training.overlap_ep_comm",
                    true,
                    "needs recompute = \"none\" or \"selective\" (Megatron-LM refuses full recomputation with the all-to-all overlap)",
                ));
            }
            if plan.zero_stage >= 3 {
                return Err(invalid(
                    "training.overlap_ep_comm",
                    true,
                    format!(
                        "is not modelled with ZeRO stage 3 (plan.zero_stage = {}); use zero_stage 0..=2 or overlap_ep_comm = false",
                        plan.zero_stage
                    ),
                ));
            }
        }
        let v = self.virtual_stages;
        if v == 0 {
            return Err(invalid("plan.virtual_stages", v, "must be at least 1"));
        }
        if v == 1 {
            return Ok(());
        }
        if plan.pp < 2 {
            return Err(invalid(
                "plan.virtual_stages",
                v,
                format!(
                    "interleaving needs pipeline stages; with pp = {} use 1",
                    plan.pp
                ),
            ));
        }
        let chunks = plan.pp as u64 * v as u64;
        if chunks > model.layers as u64 {
            return Err(invalid(
                "plan.virtual_stages",
                v,
                format!(
                    "pp x virtual_stages = {chunks} model chunks but model.layers = {}; valid: 1..={}",
                    model.layers,
                    (model.layers / plan.pp.max(1)).max(1)
                ),
            ));
        }
        let m = plan.micro_batches()?;
        if !m.is_multiple_of(plan.pp) {
            return Err(invalid(
                "plan.virtual_stages",
                v,
                format!(
                    "the interleaved schedule needs the micro-batches per step ({m}) to be a multiple of pp = {}; change the batch or use 1",
                    plan.pp
                ),
            ));
        }
        Ok(())
    }
}

impl Schedule {
    /// DualPipe's own checks (`dualpipe/dualpipe.py`, `DualPipe.step`: `assert num_ranks % 2 ==
    /// 0` and `assert num_chunks > 0 and num_chunks % 2 == 0 and num_chunks >= num_ranks * 2`):
    /// an even `pp >= 2`, an even number of micro-batches of at least `2·pp`; it is not
    /// interleaved (each rank holds exactly two chunks), it is its own forward-backward overlap
    /// (Megatron-LM's combined 1F1B does not apply), and ZeRO-3 gathers inside its passes are
    /// not modelled.
    fn validate_dualpipe(&self, plan: &ParallelPlan) -> Result<(), WorkloadError> {
        let key = "training.pipeline_schedule";
        if plan.pp < 2 || !plan.pp.is_multiple_of(2) {
            return Err(invalid(
                key,
                "dualpipe",
                format!(
                    "needs an even number of pipeline stages >= 2 (DualPipe pairs rank r with rank pp-1-r), got pp = {}",
                    plan.pp
                ),
            ));
        }
        let m = plan.micro_batches()?;
        if !m.is_multiple_of(2) || m < 2 * plan.pp {
            return Err(invalid(
                key,
                "dualpipe",
                format!(
                    "needs an even number of micro-batches per step >= 2 x pp = {} (half enter at each end), got {m}; change the batch or use \"1f1b\"",
                    2 * plan.pp
                ),
            ));
        }
        if self.virtual_stages != 1 {
            return Err(invalid(
                key,
                "dualpipe",
                format!(
                    "holds two model chunks per rank by construction; set virtual_stages = 1 (got {})",
                    self.virtual_stages
                ),
            ));
        }
        if self.overlap_ep_comm {
            return Err(invalid(
                key,
                "dualpipe",
                "overlaps its forward and backward chunks itself; remove overlap_ep_comm (Megatron-LM's combined 1F1B)",
            ));
        }
        if plan.zero_stage >= 3 {
            return Err(invalid(
                key,
                "dualpipe",
                format!(
                    "is not modelled with ZeRO stage 3 (zero_stage = {}); use 0..=2",
                    plan.zero_stage
                ),
            ));
        }
        Ok(())
    }
}

/// Divisors of `n`, comma separated (for error messages; `n` is a model dimension, so small work).
fn divisors(n: u32) -> String {
    let mut small = Vec::new();
    let mut large = Vec::new();
    let mut i = 1u32;
    while (i as u64) * (i as u64) <= n as u64 {
        if n.is_multiple_of(i) {
            small.push(i);
            if i != n / i {
                large.push(n / i);
            }
        }
        i += 1;
    }
    large.reverse();
    small.extend(large);
    small
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::super::model::presets::*;
    use super::*;

    fn plan() -> ParallelPlan {
        ParallelPlan {
            dp: 8,
            tp: 2,
            pp: 2,
            ep: 8,
            micro_batch_seqs: 1,
            global_batch_seqs: 256,
            zero_stage: 1,
            recompute: Recompute::Full,
            precision: crate::workload::Precision::Bf16,
        }
    }

    fn field_of(e: WorkloadError) -> &'static str {
        match e {
            WorkloadError::InvalidField { field, .. } => field,
            other => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn the_single_gpu_plan_is_one_gpu_one_micro_batch_and_every_layer() {
        let m = llama2_7b();
        let p = ParallelPlan::single_gpu(crate::workload::Precision::Fp16);
        p.validate(&m, 1).unwrap();
        assert_eq!((p.gpus(), p.micro_batches().unwrap()), (1, 1));
        assert_eq!(p.stage_layers(m.layers, 0), 0..m.layers);
        assert_eq!((p.zero_stage, p.recompute), (0, Recompute::None));
        assert_eq!(p.precision_bytes(), 2.0);
        assert!(matches!(
            p.validate(&m, 2),
            Err(WorkloadError::GpuCountMismatch {
                product: 1,
                available: 2,
                ..
            })
        ));
    }

    #[test]
    fn valid_plan_passes_and_counts() {
        let p = plan();
        p.validate(&mixtral_8x7b(), 32).unwrap();
        assert_eq!(p.gpus(), 32);
        assert_eq!(p.micro_batches().unwrap(), 32);
        assert_eq!(p.experts_per_rank(&mixtral_8x7b()), 1);
    }

    #[test]
    fn non_dividing_batch_names_fields_and_nearest_valid_values() {
        let p = ParallelPlan {
            global_batch_seqs: 100,
            micro_batch_seqs: 3,
            ..plan()
        };
        let e = p.micro_batches().unwrap_err();
        assert_eq!(
            e,
            WorkloadError::BatchNotDivisible {
                global: 100,
                dp: 8,
                micro: 3,
                step: 24,
                lower: 96,
                upper: 120
            }
        );
        let msg = e.to_string();
        assert!(
            msg.contains("plan.global_batch_seqs") && msg.contains("96 or 120"),
            "{msg}"
        );
        // Below one step the lower suggestion is the step itself.
        let p = ParallelPlan {
            global_batch_seqs: 5,
            ..plan()
        };
        assert!(matches!(
            p.micro_batches(),
            Err(WorkloadError::BatchNotDivisible {
                lower: 8,
                upper: 8,
                ..
            })
        ));
    }

    #[test]
    fn gpu_count_mismatch_is_reported() {
        let e = plan().validate(&mixtral_8x7b(), 64).unwrap_err();
        assert!(matches!(
            e,
            WorkloadError::GpuCountMismatch {
                product: 32,
                available: 64,
                ..
            }
        ));
    }

    #[test]
    fn divisibility_rules_name_field_and_valid_values() {
        let m = mixtral_8x7b();
        let e = ParallelPlan {
            tp: 3,
            dp: 8,
            pp: 2,
            ..plan()
        }
        .validate(&m, 48)
        .unwrap_err();
        assert!(e.to_string().contains("1, 2, 4, 8"), "{e}");
        assert_eq!(field_of(e), "plan.tp");
        // pp need not divide the layers (uneven stages), but every stage needs a layer.
        ParallelPlan { pp: 3, ..plan() }.validate(&m, 48).unwrap();
        let e = ParallelPlan {
            pp: 33,
            dp: 1,
            ep: 1,
            global_batch_seqs: 8,
            ..plan()
        }
        .validate(&m, 66)
        .unwrap_err();
        assert!(e.to_string().contains("model.layers = 32"), "{e}");
        assert_eq!(field_of(e), "plan.pp");
        let e = ParallelPlan {
            ep: 16,
            dp: 16,
            ..plan()
        }
        .validate(&m, 64)
        .unwrap_err();
        assert!(e.to_string().contains("model.experts = 8"), "{e}");
        let e = ParallelPlan {
            ep: 4,
            dp: 2,
            global_batch_seqs: 64,
            ..plan()
        }
        .validate(&m, 8)
        .unwrap_err();
        assert!(e.to_string().contains("plan.dp = 2"), "{e}");
        let e = ParallelPlan { ep: 2, ..plan() }
            .validate(&llama2_7b(), 32)
            .unwrap_err();
        assert_eq!(field_of(e), "plan.ep");
    }

    #[test]
    fn uneven_stages_give_the_first_stages_the_extra_layers() {
        let p = ParallelPlan { pp: 4, ..plan() };
        let split: Vec<_> = (0..4).map(|s| p.stage_layers(10, s)).collect();
        assert_eq!(split, vec![0..3, 3..6, 6..8, 8..10]);
        let even: Vec<_> = (0..2).map(|s| plan().stage_layers(32, s)).collect();
        assert_eq!(even, vec![0..16, 16..32]);
    }

    #[test]
    fn schedule_errors_name_the_field_and_what_is_valid() {
        let m = mixtral_8x7b();
        let s = |v| Schedule {
            virtual_stages: v,
            ..Schedule::default()
        };
        s(1).validate(&m, &plan()).unwrap();
        s(4).validate(&m, &plan()).unwrap();
        let e = s(0).validate(&m, &plan()).unwrap_err();
        assert_eq!(field_of(e), "plan.virtual_stages");
        let e = s(2)
            .validate(&m, &ParallelPlan { pp: 1, ..plan() })
            .unwrap_err();
        assert!(e.to_string().contains("pp = 1"), "{e}");
        let e = s(17).validate(&m, &plan()).unwrap_err();
        assert!(e.to_string().contains("valid: 1..=16"), "{e}");
        // One micro-batch per step is not a multiple of pp = 2.
        let e = s(2)
            .validate(
                &m,
                &ParallelPlan {
                    global_batch_seqs: 8,
                    ..plan()
                },
            )
            .unwrap_err();
        assert!(e.to_string().contains("multiple of pp = 2"), "{e}");
    }

    #[test]
    fn dualpipe_refusals_follow_dualpipe_py() {
        // dualpipe.py asserts an even rank count and an even chunk count >= 2 x ranks.
        let m = mixtral_8x7b();
        let d = Schedule {
            pipeline: PipelineKind::DualPipe,
            ..Schedule::default()
        };
        // pp 2, 256 / 8 = 32 micro-batches: valid.
        d.validate(&m, &plan()).unwrap();
        let msg = |e: WorkloadError| {
            let s = e.to_string();
            assert_eq!(field_of(e), "training.pipeline_schedule");
            s
        };
        let e = d
            .validate(&m, &ParallelPlan { pp: 3, ..plan() })
            .unwrap_err();
        assert!(msg(e).contains("pp = 3"));
        let e = d
            .validate(&m, &ParallelPlan { pp: 1, ..plan() })
            .unwrap_err();
        assert!(msg(e).contains("even number of pipeline stages"));
        // 3 micro-batches (odd) and 2 (< 2 x pp = 4).
        for g in [24, 16] {
            let p = ParallelPlan {
                global_batch_seqs: g,
                ..plan()
            };
            let e = d.validate(&m, &p).unwrap_err();
            assert!(msg(e).contains(">= 2 x pp = 4"));
        }
        let v2 = Schedule {
            virtual_stages: 2,
            ..d
        };
        assert!(msg(v2.validate(&m, &plan()).unwrap_err()).contains("virtual_stages = 1"));
        let ovl = Schedule {
            overlap_ep_comm: true,
            ..d
        };
        assert!(msg(ovl.validate(&m, &plan()).unwrap_err()).contains("overlap_ep_comm"));
        let z3 = ParallelPlan {
            zero_stage: 3,
            ..plan()
        };
        assert!(msg(d.validate(&m, &z3).unwrap_err()).contains("ZeRO stage 3"));
    }

    #[test]
    fn zero_and_out_of_range_values_are_rejected() {
        let m = mixtral_8x7b();
        assert_eq!(
            field_of(
                ParallelPlan { dp: 0, ..plan() }
                    .validate(&m, 0)
                    .unwrap_err()
            ),
            "plan.dp"
        );
        assert_eq!(
            field_of(
                ParallelPlan {
                    micro_batch_seqs: 0,
                    ..plan()
                }
                .validate(&m, 32)
                .unwrap_err()
            ),
            "plan.micro_batch_seqs"
        );
        assert_eq!(
            field_of(
                ParallelPlan {
                    zero_stage: 4,
                    ..plan()
                }
                .validate(&m, 32)
                .unwrap_err()
            ),
            "plan.zero_stage"
        );
    }
}
