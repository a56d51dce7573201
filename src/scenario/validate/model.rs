//! Validation of `[models.*]` and `[parallel.*]`: the architecture, the expert kernel and the parallelism plan.

use super::super::raw::*;
use super::super::*;
use super::Validator;
use crate::workload::{self, FfnKind, MoeSpec};

impl Validator<'_> {
    pub(super) fn job(
        &self,
        which: &str,
        m: &RawModel,
        p: Option<&RawParallel>,
        (t, precision): (&RawTraining, Precision),
        cluster: &Cluster,
        moe: bool,
    ) -> Result<Job, ScenarioError> {
        let k = |f: &str| format!("models.{which}.{f}");
        let heads = self.count(&k("heads"), m.heads)?;
        let ffn = if moe {
            let experts = self.count(
                &k("experts"),
                m.experts.ok_or_else(|| {
                    self.loc.invalid(
                        &k("experts"),
                        "an MoE model needs `experts` (a positive integer)",
                    )
                })?,
            )?;
            let top_k = self.count(
                &k("top_k"),
                m.top_k.ok_or_else(|| {
                    self.loc
                        .invalid(&k("top_k"), "an MoE model needs `top_k` (1..=experts)")
                })?,
            )?;
            if top_k > experts {
                return Err(self.loc.invalid(
                    &k("top_k"),
                    format!("top_k = {top_k} exceeds experts = {experts}; valid: 1..={experts}"),
                ));
            }
            let capacity_factor = match &m.capacity_factor {
                None => return Err(self.loc.invalid(&k("capacity_factor"), "an MoE model needs `capacity_factor`: a number > 0 (e.g. 1.25) or \"dropless\"")),
                Some(toml::Value::String(s)) if s == "dropless" => None,
                Some(toml::Value::Float(f)) if *f > 0.0 && f.is_finite() => Some(*f),
                Some(toml::Value::Integer(i)) if *i > 0 => Some(*i as f64),
                Some(v) => return Err(self.loc.invalid(&k("capacity_factor"), format!("`{v}` is not valid: a number > 0 (e.g. 1.25) or \"dropless\""))),
            };
            let expert_ffn_hidden = self.count(
                &k("expert_ffn_hidden"),
                m.expert_ffn_hidden.ok_or_else(|| {
                    self.loc.invalid(
                        &k("expert_ffn_hidden"),
                        "an MoE model needs `expert_ffn_hidden` (width of one expert's FFN)",
                    )
                })?,
            )?;
            let shared_experts = match m.shared_experts {
                Some(s) if s >= 0 => s as u32,
                Some(s) => {
                    return Err(self
                        .loc
                        .invalid(&k("shared_experts"), format!("must be ≥ 0, got {s}")))
                }
                None => 0,
            };
            let moe_every = match m.moe_every {
                Some(n) => self.count(&k("moe_every"), n)?,
                None => 1,
            };
            FfnKind::Moe(MoeSpec {
                experts,
                top_k,
                capacity_factor,
                expert_ffn_hidden,
                shared_experts,
                moe_every,
            })
        } else {
            for (f, present) in [
                ("experts", m.experts.is_some()),
                ("top_k", m.top_k.is_some()),
                ("capacity_factor", m.capacity_factor.is_some()),
                ("expert_ffn_hidden", m.expert_ffn_hidden.is_some()),
                ("moe_impl", m.moe_impl.is_some()),
                ("moe_group_size", m.moe_group_size.is_some()),
                ("moe_min_capacity", m.moe_min_capacity.is_some()),
            ] {
                if present {
                    return Err(self.loc.invalid(
                        &k(f),
                        "the dense model cannot have MoE fields; move it to [models.moe]",
                    ));
                }
            }
            FfnKind::Dense
        };
        let moe_impl = m.moe_impl.unwrap_or_default();
        if let (MoeImpl::Megablocks, FfnKind::Moe(spec)) = (moe_impl, &ffn) {
            // MegaBlocks' dMoE is dropless by construction and has no shared experts
            // (megablocks 1647a0e `layers/dmoe.py`); a capacity or shared experts would be read by
            // the routing replay and the parameter count but not by its op list.
            if spec.capacity_factor.is_some() {
                return Err(self.loc.invalid(
                    &k("capacity_factor"),
                    "moe_impl = \"megablocks\" is dropless by construction; capacity_factor must be \"dropless\"",
                ));
            }
            if spec.shared_experts > 0 {
                return Err(self.loc.invalid(
                    &k("shared_experts"),
                    format!(
                        "moe_impl = \"megablocks\" has no shared experts; shared_experts must be 0 (or left out), got {}",
                        spec.shared_experts
                    ),
                ));
            }
        }
        let expert_kernel =
            match (moe_impl, m.expert_kernel) {
                (MoeImpl::Megatron, ek) => ek.unwrap_or(ExpertKernel::Grouped),
                // MegaBlocks' dMoE: block-sparse products over the block-padded rows
                // (megablocks commit 1647a0e, `layers/dmoe.py`), priced as the grouped GEMM.
                (MoeImpl::Megablocks, None | Some(ExpertKernel::Grouped)) => ExpertKernel::Grouped,
                (MoeImpl::Megablocks, Some(other)) => {
                    let got = match other {
                        ExpertKernel::Grouped => "grouped",
                        ExpertKernel::Loop => "loop",
                        ExpertKernel::Padded => "padded",
                    };
                    return Err(self.loc.invalid(
                        &k("expert_kernel"),
                        format!(
                            "moe_impl = \"megablocks\" runs its experts as block-sparse products \
                             over the block-padded rows; expert_kernel must be \"grouped\" (or \
                             left out), got \"{got}\""
                        ),
                    ));
                }
                // Tutel's experts are one batched matmul over the padded buffer (microsoft/tutel
                // v0.2.0, `tutel/experts/ffn.py` L74-76): padded, whatever else is asked for.
                // Mesh TF's experts are einsums over the `[E, G * C]` padded slots: batched too.
                (MoeImpl::Tutel | MoeImpl::Einsum, None | Some(ExpertKernel::Padded)) => {
                    ExpertKernel::Padded
                }
                (imp @ (MoeImpl::Tutel | MoeImpl::Einsum), Some(other)) => {
                    let got = match other {
                        ExpertKernel::Grouped => "grouped",
                        ExpertKernel::Loop => "loop",
                        ExpertKernel::Padded => "padded",
                    };
                    return Err(self.loc.invalid(
                        &k("expert_kernel"),
                        format!(
                        "moe_impl = \"{}\" runs its experts as a batched matmul over the padded \
                         buffer; expert_kernel must be \"padded\" (or left out), got \"{got}\"",
                        if imp == MoeImpl::Tutel { "tutel" } else { "einsum" }
                    ),
                    ));
                }
            };
        let einsum = self.einsum_config(which, m, moe_impl, &ffn)?;
        let model = ModelSpec {
            name: m.name.clone(),
            layers: self.count(&k("layers"), m.layers)?,
            d_model: self.count(&k("d_model"), m.d_model)?,
            heads,
            kv_heads: match m.kv_heads {
                Some(v) => self.count(&k("kv_heads"), v)?,
                None => heads,
            },
            seq_len: self.count(&k("seq_len"), m.seq_len)?,
            vocab: self.count(&k("vocab"), m.vocab)?,
            ffn_hidden: self.count(&k("ffn_hidden"), m.ffn_hidden)?,
            ffn,
            arch: self.arch(which, m)?,
        };
        model
            .validate()
            .map_err(|e| self.loc.invalid(&format!("models.{which}"), e.to_string()))?;
        let p = p.ok_or_else(|| {
            self.loc.invalid(
                "parallel",
                format!(
                    "model `{which}` needs a [parallel.{which}] table with dp, tp, pp{}",
                    if moe { ", ep" } else { "" }
                ),
            )
        })?;
        let pk = |f: &str| format!("parallel.{which}.{f}");
        let ep = match (p.ep, moe) {
            (Some(e), true) => self.count(&pk("ep"), e)?,
            (None, true) => {
                return Err(self.loc.invalid(
                    &pk("ep"),
                    "an MoE plan needs `ep` (expert-parallel ranks; 1 = no expert parallelism)",
                ))
            }
            (Some(_), false) => {
                return Err(self.loc.invalid(
                    &pk("ep"),
                    "a dense model has no experts to spread; remove `ep`",
                ))
            }
            (None, false) => 1,
        };
        if t.fp8_recipe.is_some() && precision != Precision::Fp8 {
            return Err(self.loc.invalid(
                "training.fp8_recipe",
                format!(
                    "an FP8 recipe applies only with precision = \"fp8\", got \"{}\"; remove `fp8_recipe` or set the precision to fp8",
                    precision.as_str()
                ),
            ));
        }
        if let Some(u) = t.fp8_scale_update {
            let recipe = t.fp8_recipe.unwrap_or_default();
            if precision != Precision::Fp8
                || recipe != crate::workload::step_ops::Fp8Recipe::TransformerEngine
            {
                return Err(self.loc.invalid(
                    "training.fp8_scale_update",
                    format!(
                        "`{}` is Transformer Engine's FP8 amax/scale update; it applies only with precision = \"fp8\" and fp8_recipe = \"transformer-engine\" (got precision \"{}\"{}); remove `fp8_scale_update`",
                        u.as_str(),
                        precision.as_str(),
                        if precision == Precision::Fp8 { ", fp8_recipe \"deepseek\"" } else { "" }
                    ),
                ));
            }
        }
        if let Some(u) = t.fp8_amax_reduce {
            let recipe = t.fp8_recipe.unwrap_or_default();
            if precision != Precision::Fp8
                || recipe != crate::workload::step_ops::Fp8Recipe::TransformerEngine
            {
                return Err(self.loc.invalid(
                    "training.fp8_amax_reduce",
                    format!(
                        "`{}` is Transformer Engine's FP8 amax all-reduce; it applies only with precision = \"fp8\" and fp8_recipe = \"transformer-engine\" (got precision \"{}\"{}); remove `fp8_amax_reduce`",
                        u.as_str(),
                        precision.as_str(),
                        if precision == Precision::Fp8 { ", fp8_recipe \"deepseek\"" } else { "" }
                    ),
                ));
            }
        }
        if t.grad_reduce_dtype == Some(GradReduceDtype::Bf16)
            && matches!(
                precision,
                Precision::Fp32 | Precision::Tf32 | Precision::Fp16
            )
        {
            return Err(self.loc.invalid(
                "training.grad_reduce_dtype",
                format!(
                    "a bf16 gradient reduction applies to bf16 or fp8 training, got precision = \"{}\"; use \"fp32\" or remove `grad_reduce_dtype` (the gradients' own format)",
                    precision.as_str()
                ),
            ));
        }
        if !(0..=3).contains(&t.zero_stage) {
            return Err(self.loc.invalid(
                "training.zero_stage",
                format!("ZeRO stage must be 0, 1, 2 or 3, got {}", t.zero_stage),
            ));
        }
        let plan = ParallelPlan {
            dp: self.count(&pk("dp"), p.dp)?,
            tp: self.count(&pk("tp"), p.tp)?,
            pp: self.count(&pk("pp"), p.pp)?,
            ep,
            micro_batch_seqs: self.count("training.micro_batch_seqs", t.micro_batch_seqs)?,
            global_batch_seqs: self.count("training.global_batch_seqs", t.global_batch_seqs)?,
            zero_stage: t.zero_stage as u8,
            recompute: self.recompute(t)?,
            precision,
        };
        plan.validate(&model, cluster.gpus).map_err(|e| {
            self.loc
                .invalid(&format!("parallel.{which}"), e.to_string())
        })?;
        // The schedule first: DualPipe holds two stages' parameters per rank.
        if moe_impl == MoeImpl::Einsum && plan.tp > 1 {
            // Mesh TF's model-parallel MoE splits d_model / the hidden width over a second mesh
            // dimension (`d_model_split`); the op list models the expert-parallel layout only.
            return Err(self.loc.invalid(
                &pk("tp"),
                format!(
                    "moe_impl = \"einsum\" is modelled without tensor parallelism; tp must be 1, got {}",
                    plan.tp
                ),
            ));
        }
        if moe_impl == MoeImpl::Tutel && plan.tp > 1 {
            // Tutel v0.2.0's layer routes every rank's whole token set over its group and shards
            // experts only when they are fewer than the ranks; the op list models tp = 1.
            return Err(self.loc.invalid(
                &pk("tp"),
                format!(
                    "moe_impl = \"tutel\" is modelled without tensor parallelism; tp must be 1, got {}",
                    plan.tp
                ),
            ));
        }
        if moe_impl == MoeImpl::Megablocks && plan.tp > 1 {
            // MegaBlocks 1647a0e's dMoE slices its expert weights over expert parallelism only
            // (`create_expert_weights`); the op list models tp = 1.
            return Err(self.loc.invalid(
                &pk("tp"),
                format!(
                    "moe_impl = \"megablocks\" is modelled without tensor parallelism; tp must be 1, got {}",
                    plan.tp
                ),
            ));
        }
        if model.enc_dec().is_some() && plan.pp > 1 {
            return Err(self.loc.invalid(
                &pk("pp"),
                format!(
                    "an encoder-decoder is modelled without pipeline parallelism (its two stacks are not placed on stages), got pp = {}; valid: pp = 1",
                    plan.pp
                ),
            ));
        }
        let schedule = self.schedule(which, p, t, &model, &plan)?;
        let framework = t.framework.unwrap_or_default();
        self.framework_fits(framework, t, &plan)?;
        workload::step_ops::evolved_plan_fits(&model, &plan, framework, precision)
            .map_err(|e| self.loc.invalid(&k("block"), e.to_string()))?;
        let optimizer = t.optimizer.unwrap_or_default();
        // The einsum layer's own activations (dispatch/combine tensors, padded slots) come out of
        // the HBM the rest of the plan may use.
        if moe_impl == MoeImpl::Einsum && framework == Framework::MeshTensorflow {
            // Mesh TF's `_split_into_groups` raises unless a chip's tokens split evenly over its
            // cores (moe.py); moesim would otherwise fall back to one-token groups.
            let cores = u64::from(workload::step_ops::MESH_TF_CORES_PER_CHIP);
            let tokens = u64::from(plan.micro_batch_seqs) * u64::from(model.seq_len);
            if !tokens.is_multiple_of(cores) {
                return Err(self.loc.invalid(
                    "training.micro_batch_seqs",
                    format!(
                        "the einsum MoE layer under framework = \"mesh-tensorflow\" splits a chip's {tokens} tokens per micro-batch over its {cores} cores (moe.py `_split_into_groups`); micro_batch_seqs x seq_len must be a multiple of {cores}"
                    ),
                ));
            }
        }
        let einsum_bytes = if moe_impl == MoeImpl::Einsum {
            einsum_stage_bytes(&model, &plan, einsum, framework)
        } else {
            0.0
        };
        workload::check_fits_under(
            &model,
            &plan,
            (
                schedule.pipeline,
                t.fp8_recipe.unwrap_or_default(),
                workload::MemoryStates::of(
                    framework,
                    optimizer == OptimizerKind::Adafactor,
                    t.grad_reduce_dtype,
                ),
            ),
            cluster.accelerator.hbm_bytes - einsum_bytes,
        )
        .map_err(|e| {
            self.loc.invalid(
                &format!("parallel.{which}"),
                format!(
                    "{e} on {} ({:.0} GiB HBM{})",
                    cluster.accelerator.name,
                    cluster.accelerator.hbm_bytes / (1u64 << 30) as f64,
                    if einsum_bytes != 0.0 {
                        format!(
                            ", less {:.1} GiB of the einsum MoE layer's dispatch/combine tensors and padded slots",
                            einsum_bytes / (1u64 << 30) as f64
                        )
                    } else {
                        String::new()
                    }
                ),
            )
        })?;
        Ok(Job {
            schedule,
            model,
            plan,
            expert_kernel,
            router_kernel: t.router_kernel.unwrap_or_default(),
            optimizer,
            // Mesh TensorFlow and TPUEstimator have no sequence parallelism.
            sequence_parallel: t
                .sequence_parallel
                .unwrap_or(framework == Framework::Megatron || framework == Framework::GptNeox),
            attention_kernel: t.attention_kernel.unwrap_or_default(),
            framework,
            fp8_recipe: t.fp8_recipe.unwrap_or_default(),
            fp8_scale_update: t.fp8_scale_update.unwrap_or_default(),
            fp8_amax_reduce: t.fp8_amax_reduce.unwrap_or_default(),
            moe_impl,
            einsum,
            grad_reduce_dtype: t.grad_reduce_dtype,
        })
    }

    /// The TF-on-TPU frameworks' limits: no optimizer sharding (`zero_stage = 0`), no
    /// sequence parallelism, no pipeline; `TPUEstimator` is pure data parallelism.
    fn framework_fits(
        &self,
        framework: Framework,
        t: &RawTraining,
        plan: &ParallelPlan,
    ) -> Result<(), ScenarioError> {
        let name = match framework {
            Framework::MeshTensorflow => "mesh-tensorflow",
            Framework::TpuEstimator => "tpu-estimator",
            Framework::Megatron => return Ok(()),
            Framework::GptNeox => {
                // GPT-NeoX v1.0 trains through DeepSpeed's pipeline engine even at pp 1, which
                // all-reduces the gradients after the last backward; DeepSpeed reads
                // `overlap_comm` under ZeRO-2 only (workload/step_ops/deepspeed.rs).
                if plan.zero_stage == 1 && t.overlap_grad_sync == Some(true) {
                    return Err(self.loc.invalid(
                        "training.overlap_grad_sync",
                        "framework \"gpt-neox\" with zero_stage = 1 all-reduces the gradients after the backward (DeepSpeed's pipeline engine; `overlap_comm` is read by ZeRO-2 only); valid: false, or leave it out".to_string(),
                    ));
                }
                return Ok(());
            }
        };
        if !framework.shards_optimizer() && plan.zero_stage != 0 {
            return Err(self.loc.invalid(
                "training.zero_stage",
                format!("framework \"{name}\" keeps a whole optimizer per data-parallel replica (no ZeRO sharding), got zero_stage = {}; valid: 0", plan.zero_stage),
            ));
        }
        if t.sequence_parallel == Some(true) {
            return Err(self.loc.invalid(
                "training.sequence_parallel",
                format!("framework \"{name}\" all-reduces its model-parallel partial sums (no sequence parallelism); valid: false, or leave it out"),
            ));
        }
        if plan.pp > 1 {
            return Err(self.loc.invalid(
                "training.framework",
                format!(
                    "framework \"{name}\" has no pipeline parallelism, got pp = {}; valid: pp = 1",
                    plan.pp
                ),
            ));
        }
        if framework == Framework::TpuEstimator && plan.tp > 1 {
            return Err(self.loc.invalid(
                "training.framework",
                format!("framework \"tpu-estimator\" is pure data parallelism (CrossShardOptimizer), got tp = {}; valid: tp = 1, or framework = \"mesh-tensorflow\" for model parallelism", plan.tp),
            ));
        }
        Ok(())
    }
}

/// The einsum MoE layer's activations beyond `workload::memory`'s MoE count on the stage that
/// keeps the most ([`workload::step_ops::einsum_activation_bytes`] per MoE layer and
/// micro-batch): 1F1B keeps `min(pp - stage, micro-batches)` micro-batches in flight; under
/// full recomputation only the layer being recomputed holds them [bytes].
fn einsum_stage_bytes(
    model: &workload::ModelSpec,
    plan: &workload::ParallelPlan,
    cfg: workload::step_ops::EinsumConfig,
    framework: Framework,
) -> f64 {
    let per = workload::step_ops::einsum_activation_bytes(model, plan, cfg, framework);
    if plan.recompute == workload::Recompute::Full {
        return per.max(0.0);
    }
    let pp = plan.pp.max(1);
    let mbs = plan.micro_batches().unwrap_or(pp).max(1);
    (0..pp)
        .map(|st| {
            let moe = plan
                .stage_layers(model.layers, st)
                .filter(|&l| model.is_moe_layer(l))
                .count() as f64;
            moe * (pp - st).min(mbs) as f64 * per
        })
        .fold(f64::MIN, f64::max)
}

#[cfg(test)]
mod tests {
    use crate::scenario::{parse_scenario, Scenario};
    use crate::workload::arch::Position;
    use crate::workload::step_ops::{OptimizerKind, RouterKernel};
    use crate::workload::{Act, Block, EtSpec, NormKind, Recompute, RouterScore};
    use std::path::Path;

    const BASE: &str = include_str!("../../../scenarios/single_node.toml");

    /// A whole scenario text parsed as `s.toml`; an error as its message.
    fn parse(text: &str) -> Result<Scenario, String> {
        parse_scenario("s.toml", text, Path::new(".")).map_err(|e| e.to_string())
    }

    /// The shipped one-node scenario with `from` replaced by `to`.
    fn with(from: &str, to: &str) -> Result<Scenario, String> {
        assert!(BASE.contains(from), "{from}");
        parse(&BASE.replacen(from, to, 1))
    }

    fn err(from: &str, to: &str) -> String {
        match with(from, to) {
            Ok(_) => panic!("`{to}` was accepted"),
            Err(e) => e,
        }
    }

    const MOE: &str = "expert_ffn_hidden = 2816\n";

    /// DeepSeek-style MLA dims for the MoE model, appended after its other keys.
    const MLA: &str = "[models.moe.mla]\nq_lora_rank = 0\nkv_lora_rank = 256\nqk_nope_head_dim = 64\nqk_rope_head_dim = 32\nv_head_dim = 64\n";

    /// The shipped scenario with its MoE model on Mesh TF's einsum layer (capacity factor 1.25)
    /// and the `[models.moe]` keys `extra`.
    fn einsum(extra: &str) -> String {
        BASE.replacen(
            "capacity_factor = \"dropless\"",
            "capacity_factor = 1.25",
            1,
        )
        .replacen(MOE, &format!("{MOE}moe_impl = \"einsum\"\n{extra}"), 1)
    }

    // Every new key reaches the domain types; absent keys keep today's model.
    #[test]
    fn architecture_and_training_keys_reach_the_job() {
        let s = with(
            MOE,
            "expert_ffn_hidden = 2816\nhead_dim = 128\nfirst_dense_layers = 1\nmoe_every = 1\nsliding_window = 512\ntied_embeddings = true\nact = \"gelu\"\nnorm = \"layernorm\"\nrouter_score = \"sigmoid\"\n",
        )
        .and_then(|_| {
            with(
                "recompute = false",
                "recompute = \"selective\"\nrouter_kernel = \"fused\"\noptimizer = \"adafactor\"\nsequence_parallel = false",
            )
        });
        let s = s.expect("valid");
        let moe = s.moe.as_ref().expect("moe job");
        assert_eq!(moe.plan.recompute, Recompute::Selective);
        assert_eq!(moe.router_kernel, RouterKernel::Fused);
        assert_eq!(moe.optimizer, OptimizerKind::Adafactor);
        assert!(!moe.ops_config().sequence_parallel);
        let s = with(
            MOE,
            "expert_ffn_hidden = 2816\nhead_dim = 128\nfirst_dense_layers = 1\nsliding_window = 512\ntied_embeddings = true\nact = \"gelu\"\nnorm = \"layernorm\"\nrouter_score = \"sigmoid\"\n",
        )
        .expect("valid");
        let a = &s.moe.as_ref().expect("moe").model.arch;
        assert_eq!(a.head_dim, Some(128));
        assert_eq!(a.first_dense_layers, 1);
        assert_eq!(a.sliding_window, Some(512));
        assert!(a.tied_embeddings);
        assert_eq!(
            (a.act, a.norm, a.router_score),
            (Act::Gelu, NormKind::LayerNorm, RouterScore::Sigmoid)
        );
        let d = s.dense.as_ref().expect("dense");
        assert_eq!(d.model.arch, crate::workload::Arch::default());
        assert_eq!(d.plan.recompute, Recompute::None);
        assert_eq!(d.optimizer, OptimizerKind::Adam);
        assert!(d.sequence_parallel);
    }

    // The legacy boolean keeps its meaning: true = a full forward recomputed.
    #[test]
    fn legacy_recompute_true_is_full() {
        let s = with("recompute = false", "recompute = true").expect("valid");
        assert_eq!(s.moe.as_ref().expect("moe").plan.recompute, Recompute::Full);
        let s = with("recompute = false", "recompute = \"none\"").expect("valid");
        assert_eq!(s.moe.as_ref().expect("moe").plan.recompute, Recompute::None);
    }

    #[test]
    fn mla_dims_are_read() {
        let s = with(MOE, &format!("{MOE}{MLA}")).expect("valid");
        let m = s.moe.as_ref().expect("moe").model.arch.mla.expect("mla");
        assert_eq!(
            (m.kv_lora_rank, m.qk_rope_head_dim, m.q_lora_rank),
            (256, 32, 0)
        );
    }

    // Each bad value names file:line:col, the key and the valid values.
    #[test]
    fn unknown_act_lists_the_valid_names() {
        let e = err(MOE, "expert_ffn_hidden = 2816\nact = \"relu\"\n");
        assert!(
            e.starts_with("s.toml:36:7: `models.moe.act`")
                && e.contains("relu")
                && e.contains("swiglu")
                && e.contains("gelu"),
            "{e}"
        );
    }

    #[test]
    fn evolved_transformer_block_reaches_the_job_and_bad_combinations_are_named() {
        const DENSE: &str = "vocab = 32000\nffn_hidden = 2816\n\n[parallel.moe]";
        let et = |extra: &str| {
            format!("vocab = 32000\nffn_hidden = 4096\nblock = \"evolved-transformer\"\n{extra}\n[parallel.moe]")
        };
        let s = with(
            DENSE,
            &et("encoder_layers = 1\nhidden_dropout = 0.1\nattention_dropout = 0.1\n"),
        )
        .expect("valid");
        let a = &s.dense.as_ref().expect("dense job").model.arch;
        assert_eq!(
            a.block,
            Block::EvolvedTransformer(EtSpec { encoder_cells: 1 })
        );
        // The cells read the standard dropout keys (the embedded inputs at the hidden rate).
        assert_eq!(
            (a.hidden_dropout, a.attention_dropout, a.embedding_dropout),
            (0.1, 0.1, 0.1)
        );
        assert_eq!(a.norm, NormKind::LayerNorm, "T2T's layer norm by default");
        let e = err(
            DENSE,
            "vocab = 32000\nffn_hidden = 2816\nblock = \"evolved\"\n\n[parallel.moe]",
        );
        assert!(
            e.contains("`models.dense.block`") && e.contains("evolved-transformer"),
            "{e}"
        );
        // The retired encoder-cell key names its replacement, under either block.
        for toml in [
            et("et_encoder_cells = 1\n"),
            DENSE.replacen("\n\n", "\net_encoder_cells = 1\n\n", 1),
        ] {
            let e = err(DENSE, &toml);
            assert!(
                e.contains("`models.dense.et_encoder_cells`") && e.contains("encoder_layers = 1"),
                "{e}"
            );
        }
        // The cells run encoder and decoder on seq_len each: target_len may only repeat it.
        let s = with(DENSE, &et("encoder_layers = 1\ntarget_len = 1024\n")).expect("valid");
        let a = &s.dense.as_ref().expect("dense job").model.arch;
        assert_eq!(
            a.block,
            Block::EvolvedTransformer(EtSpec { encoder_cells: 1 })
        );
        let e = err(DENSE, &et("encoder_layers = 1\ntarget_len = 128\n"));
        assert!(
            e.contains("`models.dense.target_len`") && e.contains("target_len = 1024"),
            "{e}"
        );
        let e = err(DENSE, &et("norm = \"rmsnorm\"\n"));
        assert!(
            e.contains("`models.dense.norm`") && e.contains("layernorm"),
            "{e}"
        );
        let e = err(DENSE, &et("act = \"gelu\"\n"));
        assert!(e.contains("`models.dense.act`"), "{e}");
        // The retired key names its replacements, with its rate, under either block.
        for toml in [
            et("et_dropout = 0.1\n"),
            DENSE.replacen("\n\n", "\net_dropout = 0.1\n\n", 1),
        ] {
            let e = err(DENSE, &toml);
            assert!(
                e.contains("`models.dense.et_dropout`")
                    && e.contains("hidden_dropout = 0.1")
                    && e.contains("attention_dropout = 0.1"),
                "{e}"
            );
        }
        let e = err(DENSE, &et("hidden_dropout = 1.5\n"));
        assert!(
            e.contains("`models.dense.hidden_dropout`") && e.contains("[0, 1)"),
            "{e}"
        );
        let e = err(DENSE, &et("encoder_layers = 12\n"));
        assert!(
            e.contains("model.encoder_layers") && e.contains("below model.layers"),
            "{e}"
        );
        let e = err(
            DENSE,
            "vocab = 32000\nffn_hidden = 2816\nblock = \"evolved-transformer\"\n\n[parallel.moe]",
        );
        assert!(e.contains("model.ffn_hidden") && e.contains("4096"), "{e}");
        let e = err(
            MOE,
            "expert_ffn_hidden = 2816\nblock = \"evolved-transformer\"\n",
        );
        assert!(
            e.contains("`models.moe`") && e.contains("MoE layers"),
            "{e}"
        );
        let base = BASE.replacen(DENSE, &et(""), 1).replacen(
            "[parallel.dense]\ndp = 8\ntp = 1",
            "[parallel.dense]\ndp = 4\ntp = 2",
            1,
        );
        let e = parse(&base).map(|_| ()).expect_err("tp 2");
        assert!(
            e.contains("`models.dense.block`") && e.contains("plan.tp"),
            "{e}"
        );
    }

    #[test]
    fn unknown_norm_lists_the_valid_names() {
        let e = err(MOE, "expert_ffn_hidden = 2816\nnorm = \"batchnorm\"\n");
        assert!(
            e.contains("`models.moe.norm`") && e.contains("rmsnorm") && e.contains("layernorm"),
            "{e}"
        );
    }

    #[test]
    fn unknown_router_score_lists_the_valid_names() {
        let e = err(MOE, "expert_ffn_hidden = 2816\nrouter_score = \"tanh\"\n");
        assert!(
            e.contains("`models.moe.router_score`") && e.contains("sigmoid"),
            "{e}"
        );
    }

    #[test]
    fn router_score_on_the_dense_model_is_an_error() {
        let e = err(
            "ffn_hidden = 2816\n\n[parallel.moe]",
            "ffn_hidden = 2816\nrouter_score = \"softmax\"\n\n[parallel.moe]",
        );
        assert!(
            e.contains("`models.dense.router_score`") && e.contains("no router"),
            "{e}"
        );
    }

    #[test]
    fn first_dense_layers_must_leave_moe_layers() {
        let e = err(MOE, "expert_ffn_hidden = 2816\nfirst_dense_layers = 12\n");
        assert!(
            e.contains("models.moe") && e.contains("first_dense_layers"),
            "{e}"
        );
        let e = err(MOE, "expert_ffn_hidden = 2816\nfirst_dense_layers = -1\n");
        assert!(
            e.contains("`models.moe.first_dense_layers`") && e.contains("≥ 0"),
            "{e}"
        );
    }

    #[test]
    fn dropout_rates_and_position_reach_the_model_and_bad_values_name_the_key() {
        let sc = with(
            MOE,
            "expert_ffn_hidden = 2816\nhidden_dropout = 0.1\nattention_dropout = 0\nposition = \"learned\"\n",
        )
        .unwrap();
        let moe = sc.moe.as_ref().expect("moe job");
        let a = &moe.model.arch;
        assert_eq!((a.hidden_dropout, a.attention_dropout), (0.1, 0.0));
        assert_eq!(a.embedding_dropout, 0.1, "absent: the hidden rate");
        let sc = with(
            MOE,
            "expert_ffn_hidden = 2816\nhidden_dropout = 0.1\nembedding_dropout = 0.0\n",
        )
        .unwrap();
        assert_eq!(sc.moe.as_ref().unwrap().model.arch.embedding_dropout, 0.0);
        let e = err(MOE, "expert_ffn_hidden = 2816\nparallel_residual = true\n");
        assert!(
            e.contains("`models.moe.parallel_residual`") && e.contains("dense"),
            "{e}"
        );
        let e = err(MOE, "expert_ffn_hidden = 2816\nembedding_dropout = 2\n");
        assert!(e.contains("`models.moe.embedding_dropout`"), "{e}");
        assert_eq!(a.position, Position::Learned);
        let e = err(MOE, "expert_ffn_hidden = 2816\nhidden_dropout = 1.0\n");
        assert!(
            e.starts_with("s.toml:36:1: `models.moe.hidden_dropout`") && e.contains("[0, 1)"),
            "{e}"
        );
        let e = err(MOE, "expert_ffn_hidden = 2816\nattention_dropout = -0.1\n");
        assert!(
            e.contains("`models.moe.attention_dropout`") && e.contains("[0, 1)"),
            "{e}"
        );
        let e = err(MOE, "expert_ffn_hidden = 2816\nposition = \"sinusoidal\"\n");
        assert!(
            e.contains("`models.moe.position`")
                && e.contains("sinusoidal")
                && e.contains("rotary")
                && e.contains("learned")
                && e.contains("alibi")
                && e.contains("relative"),
            "{e}"
        );
    }

    #[test]
    fn transformer_xl_positions_reach_the_model_and_bad_combinations_name_the_key() {
        let s = with(
            MOE,
            "expert_ffn_hidden = 2816\nposition = \"transformer-xl\"\n",
        )
        .unwrap();
        let moe = s.moe.as_ref().expect("moe job");
        assert_eq!(moe.model.arch.position, Position::TransformerXl);
        let e = err(MOE, "expert_ffn_hidden = 2816\nposition = \"sinusoidal\"\n");
        assert!(e.contains("transformer-xl"), "{e}");
        let e = err(
            MOE,
            "expert_ffn_hidden = 2816\nposition = \"transformer-xl\"\nsliding_window = 512\n",
        );
        assert!(
            e.starts_with("s.toml:37:1: `models.moe.sliding_window`")
                && e.contains("transformer-xl"),
            "{e}"
        );
        let e = err(
            "ffn_hidden = 2816\n\n[parallel.moe]",
            "ffn_hidden = 2816\nposition = \"transformer-xl\"\nencoder_layers = 6\ntarget_len = 256\n\n[parallel.moe]",
        );
        assert!(
            e.starts_with("s.toml:45:1: `models.dense.position`") && e.contains("decoder-only"),
            "{e}"
        );
    }

    #[test]
    fn zero_head_dim_and_window_are_errors() {
        let e = err(MOE, "expert_ffn_hidden = 2816\nhead_dim = 0\n");
        assert!(
            e.contains("`models.moe.head_dim`") && e.contains("positive"),
            "{e}"
        );
        let e = err(MOE, "expert_ffn_hidden = 2816\nsliding_window = 0\n");
        assert!(
            e.contains("`models.moe.sliding_window`") && e.contains("positive"),
            "{e}"
        );
    }

    #[test]
    fn head_dim_with_mla_is_an_error() {
        let e = err(MOE, &format!("{MOE}head_dim = 64\n{MLA}"));
        assert!(
            e.contains("`models.moe.head_dim`") && e.contains("mla"),
            "{e}"
        );
    }

    #[test]
    fn a_position_kind_other_than_rotary_with_mla_is_an_error() {
        let e = err(MOE, &format!("{MOE}position = \"learned\"\n{MLA}"));
        assert!(
            e.contains("`models.moe.position`") && e.contains("rotary"),
            "{e}"
        );
    }

    #[test]
    fn bad_mla_dims_name_the_key() {
        let zero_rank = MLA.replacen("kv_lora_rank = 256", "kv_lora_rank = 0", 1);
        let e = err(MOE, &format!("{MOE}{zero_rank}"));
        assert!(e.contains("`models.moe.mla.kv_lora_rank`"), "{e}");
        let no_q_rank = MLA.replacen("q_lora_rank = 0\n", "", 1);
        let e = err(MOE, &format!("{MOE}{no_q_rank}"));
        assert!(e.contains("q_lora_rank"), "{e}");
    }

    #[test]
    fn gpt_neox_zero1_refuses_an_overlapped_gradient_sync() {
        let e = err(
            "recompute = false",
            "recompute = false\nframework = \"gpt-neox\"\noverlap_grad_sync = true",
        );
        assert!(
            e.starts_with("s.toml:")
                && e.contains("`training.overlap_grad_sync`")
                && e.contains("gpt-neox")
                && e.contains("valid: false"),
            "{e}"
        );
        with(
            "recompute = false",
            "recompute = false\nframework = \"gpt-neox\"\noverlap_grad_sync = false",
        )
        .expect("valid");
    }

    #[test]
    fn tf_tpu_frameworks_reach_the_job_and_reject_what_they_cannot_run() {
        use crate::workload::step_ops::Framework;
        // Accepted: ZeRO 0, no sequence parallelism by default, Adafactor's fp32 states.
        let s = with(
            "zero_stage = 1\nrecompute = false",
            "zero_stage = 0\nrecompute = false\nframework = \"tpu-estimator\"\noptimizer = \"adafactor\"",
        )
        .expect("valid");
        let d = s.dense.as_ref().expect("dense");
        assert_eq!(d.framework, Framework::TpuEstimator);
        assert!(!d.ops_config().sequence_parallel);
        assert_eq!(
            d.memory_states(),
            crate::workload::MemoryStates::Fp32Variables { adafactor: true }
        );
        // ZeRO sharding does not exist there.
        let e = err(
            "recompute = false",
            "recompute = false\nframework = \"mesh-tensorflow\"",
        );
        assert!(
            e.starts_with("s.toml:")
                && e.contains("`training.zero_stage`")
                && e.contains("mesh-tensorflow")
                && e.contains("valid: 0"),
            "{e}"
        );
        // Nor sequence parallelism.
        let e = err(
            "zero_stage = 1\nrecompute = false",
            "zero_stage = 0\nrecompute = false\nframework = \"mesh-tensorflow\"\nsequence_parallel = true",
        );
        assert!(
            e.contains("`training.sequence_parallel`") && e.contains("valid: false"),
            "{e}"
        );
        // TPUEstimator is pure data parallelism.
        let text = BASE
            .replacen(
                "zero_stage = 1\nrecompute = false",
                "zero_stage = 0\nrecompute = false\nframework = \"tpu-estimator\"",
                1,
            )
            .replacen(
                "[parallel.dense]\ndp = 8\ntp = 1",
                "[parallel.dense]\ndp = 4\ntp = 2",
                1,
            );
        let e = parse(&text)
            .map(|_| ())
            .expect_err("tp 2 under tpu-estimator");
        assert!(
            e.contains("`training.framework`")
                && e.contains("tp = 2")
                && e.contains("mesh-tensorflow"),
            "{e}"
        );
        let e = err(
            "recompute = false",
            "recompute = false\nframework = \"lingvo\"",
        );
        assert!(e.contains("framework"), "{e}");
    }

    #[test]
    fn unknown_recompute_lists_the_valid_values() {
        let e = err("recompute = false", "recompute = \"some\"");
        assert!(
            e.starts_with("s.toml:21:")
                && e.contains("`training.recompute`")
                && e.contains("selective")
                && e.contains("full"),
            "{e}"
        );
        let e = err("recompute = false", "recompute = 1");
        assert!(
            e.contains("`training.recompute`") && e.contains("none"),
            "{e}"
        );
    }

    #[test]
    fn unknown_router_kernel_lists_the_valid_names() {
        let e = err(
            "recompute = false",
            "recompute = false\nrouter_kernel = \"triton\"",
        );
        assert!(
            e.contains("`training.router_kernel`") && e.contains("eager") && e.contains("fused"),
            "{e}"
        );
    }

    #[test]
    fn unknown_attention_kernel_lists_the_valid_names() {
        let e = err(
            "recompute = false",
            "recompute = false\nattention_kernel = \"xformers\"",
        );
        assert!(
            e.contains("`training.attention_kernel`")
                && e.contains("flash")
                && e.contains("unfused"),
            "{e}"
        );
    }

    #[test]
    fn framework_and_bias_reach_the_job_and_an_unknown_framework_lists_the_valid_names() {
        let s = with(
            "recompute = false",
            "recompute = false\nframework = \"gpt-neox\"",
        )
        .and_then(|_| with(MOE, "expert_ffn_hidden = 2816\nbias = true\n"));
        let s = s.expect("valid");
        let moe = s.moe.as_ref().expect("moe job");
        assert!(moe.model.arch.bias);
        let s = with(
            "recompute = false",
            "recompute = false\nframework = \"gpt-neox\"",
        )
        .expect("valid");
        assert_eq!(
            s.moe.as_ref().expect("moe").ops_config().framework,
            crate::workload::step_ops::Framework::GptNeox
        );
        let e = err(
            "recompute = false",
            "recompute = false\nframework = \"deepspeed\"",
        );
        assert!(
            e.contains("`training.framework`") && e.contains("megatron") && e.contains("gpt-neox"),
            "{e}"
        );
    }

    #[test]
    fn moe_impl_megablocks_reaches_the_job_with_grouped_experts_and_bad_values_are_named() {
        use crate::hardware::ExpertKernel;
        use crate::workload::step_ops::MoeImpl;
        let s = with(MOE, "expert_ffn_hidden = 2816\nmoe_impl = \"megablocks\"\n").expect("valid");
        let cfg = s.moe.as_ref().expect("moe").ops_config();
        assert_eq!(cfg.moe_impl, MoeImpl::Megablocks);
        assert_eq!(cfg.expert_kernel, ExpertKernel::Grouped);
        let e = err(
            MOE,
            "expert_ffn_hidden = 2816\nmoe_impl = \"megablocks\"\nexpert_kernel = \"padded\"\n",
        );
        assert!(
            e.contains("models.moe.expert_kernel")
                && e.contains("\"grouped\"")
                && e.contains("\"padded\""),
            "{e}"
        );
        let s = BASE.replacen(
            MOE,
            "expert_ffn_hidden = 2816\nmoe_impl = \"megablocks\"\n",
            1,
        );
        let s = s.replacen(
            "dp = 8\ntp = 1\npp = 1\nep = 8",
            "dp = 4\ntp = 2\npp = 1\nep = 4",
            1,
        );
        let e = parse_scenario("s.toml", &s, Path::new("."))
            .map(|_| ())
            .expect_err("tp = 2 with megablocks was accepted")
            .to_string();
        assert!(
            e.contains("parallel.moe.tp") && e.contains("megablocks") && e.contains("tp must be 1"),
            "{e}"
        );
        // Dropless by construction, no shared experts: a capacity or shared experts are refused.
        let e = err(
            "capacity_factor = \"dropless\"",
            "capacity_factor = 1.25\nmoe_impl = \"megablocks\"",
        );
        assert!(
            e.contains("models.moe.capacity_factor") && e.contains("\"dropless\""),
            "{e}"
        );
        let e = err(
            MOE,
            "expert_ffn_hidden = 2816\nmoe_impl = \"megablocks\"\nshared_experts = 1\n",
        );
        assert!(
            e.contains("models.moe.shared_experts") && e.contains("got 1"),
            "{e}"
        );
    }

    #[test]
    fn moe_impl_tutel_reaches_the_job_with_padded_experts_and_bad_values_are_named() {
        use crate::hardware::ExpertKernel;
        use crate::workload::step_ops::MoeImpl;
        let s = with(MOE, "expert_ffn_hidden = 2816\nmoe_impl = \"tutel\"\n").expect("valid");
        let cfg = s.moe.as_ref().expect("moe").ops_config();
        assert_eq!(cfg.moe_impl, MoeImpl::Tutel);
        assert_eq!(cfg.expert_kernel, ExpertKernel::Padded);
        let s = with(MOE, MOE).expect("valid");
        assert_eq!(
            s.moe.as_ref().expect("moe").ops_config().moe_impl,
            MoeImpl::Megatron
        );
        let e = err(MOE, "expert_ffn_hidden = 2816\nmoe_impl = \"deepspeed\"\n");
        assert!(
            e.contains("moe_impl") && e.contains("megatron") && e.contains("tutel"),
            "{e}"
        );
        let e = err(
            MOE,
            "expert_ffn_hidden = 2816\nmoe_impl = \"tutel\"\nexpert_kernel = \"grouped\"\n",
        );
        assert!(
            e.contains("models.moe.expert_kernel")
                && e.contains("\"padded\"")
                && e.contains("\"grouped\""),
            "{e}"
        );
        let e = err("[parallel.moe]", "moe_impl = \"tutel\"\n\n[parallel.moe]");
        assert!(
            e.contains("models.dense.moe_impl") && e.contains("[models.moe]"),
            "{e}"
        );
        let s = BASE.replacen(MOE, "expert_ffn_hidden = 2816\nmoe_impl = \"tutel\"\n", 1);
        let s = s.replacen(
            "dp = 8\ntp = 1\npp = 1\nep = 8",
            "dp = 4\ntp = 2\npp = 1\nep = 4",
            1,
        );
        let e = parse(&s)
            .map(|_| ())
            .expect_err("tp = 2 with tutel was accepted");
        assert!(
            e.contains("parallel.moe.tp") && e.contains("tp must be 1"),
            "{e}"
        );
    }

    #[test]
    fn moe_impl_einsum_reaches_the_job_and_bad_combinations_are_named() {
        use crate::hardware::ExpertKernel;
        use crate::workload::step_ops::{EinsumConfig, MoeImpl};
        let s = parse(&einsum("moe_group_size = 512\nmoe_min_capacity = 1\n")).expect("valid");
        let cfg = s.moe.as_ref().expect("moe").ops_config();
        assert_eq!(cfg.moe_impl, MoeImpl::Einsum);
        assert_eq!(cfg.expert_kernel, ExpertKernel::Padded);
        assert_eq!(
            cfg.einsum,
            EinsumConfig {
                group_size: 512,
                min_capacity: 1
            }
        );
        // Unset: Mesh TF's MoE1D defaults.
        let s = parse(&einsum("")).expect("valid");
        assert_eq!(
            s.moe.as_ref().expect("moe").ops_config().einsum,
            EinsumConfig::default()
        );
        // Einsum without a capacity factor (dropless): no fixed slots to dispatch into.
        let e = err(MOE, "expert_ffn_hidden = 2816\nmoe_impl = \"einsum\"\n");
        assert!(
            e.contains("models.moe.capacity_factor")
                && e.contains("dropless")
                && e.contains("einsum"),
            "{e}"
        );
        // Top-3: Mesh TF routes top-1 or top-2 only.
        let e = parse(&einsum("").replacen("top_k = 2", "top_k = 3", 1)).expect_err("top-3");
        assert!(
            e.contains("models.moe.top_k") && e.contains("1 or 2"),
            "{e}"
        );
        // Grouped experts.
        let e = parse(&einsum("expert_kernel = \"grouped\"\n")).expect_err("grouped");
        assert!(
            e.contains("models.moe.expert_kernel")
                && e.contains("einsum")
                && e.contains("\"padded\""),
            "{e}"
        );
        // A group of zero tokens.
        let e = parse(&einsum("moe_group_size = 0\n")).expect_err("zero group");
        assert!(
            e.contains("models.moe.moe_group_size") && e.contains("positive"),
            "{e}"
        );
        // The einsum keys without the einsum layer.
        let e = err(MOE, "expert_ffn_hidden = 2816\nmoe_group_size = 1024\n");
        assert!(
            e.contains("models.moe.moe_group_size") && e.contains("moe_impl = \"einsum\""),
            "{e}"
        );
        // Tensor parallelism.
        let s = einsum("").replacen(
            "dp = 8\ntp = 1\npp = 1\nep = 8",
            "dp = 4\ntp = 2\npp = 1\nep = 4",
            1,
        );
        let e = parse(&s).expect_err("tp = 2 with einsum");
        assert!(
            e.contains("parallel.moe.tp") && e.contains("tp must be 1"),
            "{e}"
        );
    }

    #[test]
    fn fp8_recipe_needs_fp8_precision_and_reaches_the_job() {
        let e = err(
            "recompute = false",
            "recompute = false\nfp8_recipe = \"deepseek\"",
        );
        assert!(
            e.contains("`training.fp8_recipe`") && e.contains("fp8") && e.contains("bf16"),
            "{e}"
        );
        let e = err(
            "recompute = false",
            "recompute = false\nfp8_recipe = \"mxfp8\"",
        );
        assert!(
            e.contains("transformer-engine") && e.contains("deepseek"),
            "{e}"
        );
        let s = with(
            "precision = \"bf16\"",
            "precision = \"fp8\"\nfp8_recipe = \"deepseek\"",
        )
        .expect("valid");
        assert_eq!(
            s.moe.as_ref().expect("moe").ops_config().fp8_recipe,
            crate::workload::step_ops::Fp8Recipe::Deepseek
        );
    }

    /// `training.grad_reduce_dtype`: an unknown format lists the valid ones with the line and
    /// column; bf16 under fp16 training is refused naming the key; "fp32" reaches the op list.
    #[test]
    fn grad_reduce_dtype_is_checked_and_reaches_the_job() {
        let e = err(
            "recompute = false",
            "recompute = false\ngrad_reduce_dtype = \"fp16\"",
        );
        assert!(
            e.contains("`training.grad_reduce_dtype`")
                && e.contains("bf16")
                && e.contains("fp32")
                && e.contains("s.toml:"),
            "{e}"
        );
        let e = err(
            "precision = \"bf16\"",
            "precision = \"fp16\"\ngrad_reduce_dtype = \"bf16\"",
        );
        assert!(
            e.contains("`training.grad_reduce_dtype`") && e.contains("fp16") && e.contains("fp32"),
            "{e}"
        );
        let s = with(
            "recompute = false",
            "recompute = false\ngrad_reduce_dtype = \"fp32\"",
        )
        .expect("valid");
        assert_eq!(
            s.moe.as_ref().expect("moe").ops_config().grad_reduce_dtype,
            Some(crate::workload::step_ops::GradReduceDtype::Fp32)
        );
        assert_eq!(
            s.moe.as_ref().expect("moe").memory_states(),
            crate::workload::MemoryStates::MixedAdamFp32Grads
        );
        let s = with("recompute = false", "recompute = false").expect("valid");
        assert_eq!(
            s.moe.as_ref().expect("moe").ops_config().grad_reduce_dtype,
            None
        );
    }

    #[test]
    fn unknown_optimizer_lists_the_valid_names() {
        let e = err(
            "recompute = false",
            "recompute = false\noptimizer = \"sgd\"",
        );
        assert!(
            e.contains("`training.optimizer`") && e.contains("adamw") && e.contains("adafactor"),
            "{e}"
        );
    }

    #[test]
    fn sequence_parallel_must_be_a_boolean() {
        let e = err(
            "recompute = false",
            "recompute = false\nsequence_parallel = \"yes\"",
        );
        assert!(
            e.contains("s.toml:22:") && e.contains("true or false"),
            "{e}"
        );
    }

    /// `encoder_layers` / `target_len`: an encoder-decoder reaches the job; each bad combination
    /// is refused naming the file, line and key and what would be valid.
    #[test]
    fn encoder_decoder_keys_reach_the_job_and_bad_ones_are_named() {
        const DENSE_END: &str = "ffn_hidden = 2816\n\n[parallel.moe]";
        let enc_dec = |keys: &str| format!("ffn_hidden = 2816\n{keys}\n\n[parallel.moe]");
        let s = with(DENSE_END, &enc_dec("encoder_layers = 6\ntarget_len = 256")).expect("valid");
        let d = s.dense.as_ref().expect("dense");
        assert_eq!(
            d.model.enc_dec(),
            Some(crate::workload::EncDecSpec {
                encoder_layers: 6,
                target_len: 256
            })
        );
        // encoder_layers = 0 is the decoder-only model.
        let s0 = with(DENSE_END, &enc_dec("encoder_layers = 0")).expect("valid");
        let plain = with(DENSE_END, DENSE_END).expect("valid");
        assert_eq!(
            s0.dense.as_ref().expect("dense").model,
            plain.dense.as_ref().expect("dense").model
        );
        let e = err(DENSE_END, &enc_dec("encoder_layers = 6"));
        assert!(
            e.starts_with("s.toml:45:")
                && e.contains("`models.dense.encoder_layers`")
                && e.contains("target_len"),
            "{e}"
        );
        let e = err(DENSE_END, &enc_dec("target_len = 128"));
        assert!(
            e.starts_with("s.toml:45:")
                && e.contains("`models.dense.target_len`")
                && e.contains("encoder_layers (1..layers-1)"),
            "{e}"
        );
        let e = err(DENSE_END, &enc_dec("encoder_layers = 12\ntarget_len = 128"));
        assert!(
            e.contains("`models.dense.encoder_layers`") && e.contains("valid: 1..=11"),
            "{e}"
        );
        let e = err(DENSE_END, &enc_dec("encoder_layers = -1\ntarget_len = 128"));
        assert!(e.contains("`models.dense.encoder_layers`"), "{e}");
        let e = err(DENSE_END, &enc_dec("encoder_layers = 6\ntarget_len = 0"));
        assert!(e.contains("`models.dense.target_len`"), "{e}");
        let e = err(
            DENSE_END,
            &enc_dec("encoder_layers = 6\ntarget_len = 128\nsliding_window = 64"),
        );
        assert!(
            e.contains("`models.dense.sliding_window`") && e.contains("encoder-decoder"),
            "{e}"
        );
        let e = err(
            MOE,
            "expert_ffn_hidden = 2816\nencoder_layers = 2\ntarget_len = 64\n",
        );
        assert!(
            e.contains("`models.moe.encoder_layers`") && e.contains("MoE"),
            "{e}"
        );
        // No pipeline stages for an encoder-decoder.
        let text = BASE
            .replacen(
                DENSE_END,
                &enc_dec("encoder_layers = 6\ntarget_len = 256"),
                1,
            )
            .replacen(
                "[parallel.dense]\ndp = 8\ntp = 1\npp = 1",
                "[parallel.dense]\ndp = 4\ntp = 1\npp = 2",
                1,
            );
        let e = parse(&text).map(|_| ()).expect_err("pp 2 accepted");
        assert!(
            e.starts_with("s.toml:")
                && e.contains("`parallel.dense.pp`")
                && e.contains("valid: pp = 1"),
            "{e}"
        );
    }

    // `parallel_norms` counts the parallel block's norms: 1 or 2, and only with the block.
    #[test]
    fn parallel_norms_is_one_or_two_and_needs_the_parallel_block() {
        const DENSE_END: &str = "ffn_hidden = 2816\n\n[parallel.moe]";
        let dense = |keys: &str| format!("ffn_hidden = 2816\n{keys}\n\n[parallel.moe]");
        let e = err(DENSE_END, &dense("parallel_norms = 1"));
        assert!(
            e.contains("`models.dense.parallel_norms`") && e.contains("parallel_residual = true"),
            "{e}"
        );
        for v in ["0", "3", "-1"] {
            let e = err(
                DENSE_END,
                &dense(&format!("parallel_residual = true\nparallel_norms = {v}")),
            );
            assert!(
                e.contains("`models.dense.parallel_norms`")
                    && e.contains("must be 1")
                    && e.contains(v),
                "{v}: {e}"
            );
        }
        for (v, shared) in [("1", true), ("2", false)] {
            let s = with(
                DENSE_END,
                &dense(&format!("parallel_residual = true\nparallel_norms = {v}")),
            )
            .expect("valid");
            let d = s.dense.as_ref().expect("dense");
            assert_eq!(d.model.arch.parallel_shared_norm, shared, "{v}");
        }
        let s = with(DENSE_END, &dense("parallel_residual = true")).expect("valid");
        assert!(
            !s.dense
                .as_ref()
                .expect("dense")
                .model
                .arch
                .parallel_shared_norm
        );
    }

    // Review of session 9: key combinations that would be silently unread are refused, and
    // every new key's bad values are named.
    #[test]
    fn unread_key_combinations_and_bad_values_of_the_new_keys_are_named() {
        const DENSE_END: &str = "ffn_hidden = 2816\n\n[parallel.moe]";
        let dense = |keys: &str| format!("ffn_hidden = 2816\n{keys}\n\n[parallel.moe]");
        let e = err(
            DENSE_END,
            &dense("encoder_layers = 6\ntarget_len = 256\nparallel_residual = true"),
        );
        assert!(
            e.contains("parallel_residual") && e.contains("cross-attention"),
            "{e}"
        );
        const ET_END: &str = "vocab = 32000\nffn_hidden = 2816\n\n[parallel.moe]";
        let et = |extra: &str| {
            format!("vocab = 32000\nffn_hidden = 4096\nblock = \"evolved-transformer\"\n{extra}\n[parallel.moe]")
        };
        for (extra, word) in [
            ("parallel_residual = true\n", "parallel_residual"),
            ("position = \"learned\"\n", "position"),
        ] {
            let e = err(ET_END, &et(extra));
            assert!(
                e.contains(word) && e.contains("evolved-transformer"),
                "{extra}: {e}"
            );
        }
        let e = err(ET_END, &et("encoder_layers = -1\n"));
        assert!(e.contains("`models.dense.encoder_layers`"), "{e}");
        // The einsum layer's capacity floor must be a count.
        for v in ["0", "-1"] {
            let e = parse(&einsum(&format!("moe_min_capacity = {v}\n"))).expect_err(v);
            assert!(e.contains("`models.moe.moe_min_capacity`"), "{v}: {e}");
        }
    }
}
