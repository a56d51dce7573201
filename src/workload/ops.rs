//! Per-micro-batch, per-GPU operation counts the step model consumes: GEMMs, attention, MoE work, messages.
//!
//! Superseded by [`super::step_ops`] (the full operation list of a step); kept while `sim/`
//! still reads it. It knows standard attention (GQA, `head_dim`) and SwiGLU only: no MLA, GELU,
//! sliding window or tied embeddings.

use super::memory::stage_params;
use super::model::ModelSpec;
use super::plan::ParallelPlan;

/// A matrix multiply `C[m x n] = A[m x k] * B[k x n]` (forward); backward costs 2x the FLOPs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gemm {
    /// Rows of the output (tokens).
    pub m: f64,
    /// Columns of the output.
    pub n: f64,
    /// Inner (reduction) dimension.
    pub k: f64,
}

impl Gemm {
    /// Forward FLOP (`2 m n k`).
    pub fn flops(&self) -> f64 {
        2.0 * self.m * self.n * self.k
    }

    /// Minimum memory traffic of the forward GEMM [bytes]: read A and B, write C once.
    pub fn bytes(&self, elem_bytes: f64) -> f64 {
        elem_bytes * (self.m * self.k + self.k * self.n + self.m * self.n)
    }
}

/// Attention scores and context (`softmax(QK^T)V`) for one micro-batch on one GPU.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttnCore {
    /// Sequences in the micro-batch.
    pub batch: f64,
    /// Query heads on this GPU (`heads / tp`).
    pub heads_per_gpu: f64,
    /// Sequence length [tokens].
    pub seq: f64,
    /// Head width.
    pub head_dim: f64,
}

impl AttnCore {
    /// Forward FLOP: `QK^T` and `PV`, `4 b h s^2 d` (no causal halving, as in Hoffmann et al.
    /// 2022 App. F and `ModelSpec::flops_per_token_train`; causal kernels skip about half).
    pub fn flops(&self) -> f64 {
        4.0 * self.batch * self.heads_per_gpu * self.seq * self.seq * self.head_dim
    }
}

/// MoE FFN work of one layer, one micro-batch, one GPU, assuming uniform routing (the routing
/// module supplies the actual per-expert loads).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MoeWork {
    /// Tokens of this GPU's micro-batch entering the MoE layer.
    pub tokens: f64,
    /// Model width (`d_model`).
    pub hidden: f64,
    /// Expert FFN width on this GPU (`expert_ffn_hidden / tp`).
    pub expert_ffn: f64,
    /// Experts of this layer held by this GPU's expert-parallel rank.
    pub experts_per_rank: u32,
    /// Routed experts per token.
    pub top_k: u32,
    /// Bytes sent per token-to-expert assignment in dispatch (same again in combine).
    pub dispatch_bytes_per_token_assignment: f64,
    /// Router GEMM (`tokens x experts`, inner `d_model`), replicated over `tp`.
    pub router: Gemm,
    /// Shared-expert SwiGLU GEMMs (gate, up, down), if the model has shared experts.
    pub shared_expert: Option<[Gemm; 3]>,
}

impl MoeWork {
    /// Forward FLOP of routed experts when this GPU receives `assignments` token-expert pairs.
    pub fn expert_flops(&self, assignments: f64) -> f64 {
        assignments * 3.0 * 2.0 * self.hidden * self.expert_ffn
    }

    /// Token-expert assignments per GPU under uniform routing: each rank sends and receives
    /// `tokens * top_k` on average.
    pub fn mean_assignments(&self) -> f64 {
        self.tokens * self.top_k as f64
    }

    /// Forward FLOP under uniform routing (router + routed + shared experts).
    pub fn mean_flops(&self) -> f64 {
        self.router.flops()
            + self.expert_flops(self.mean_assignments())
            + self
                .shared_expert
                .map_or(0.0, |g| g.iter().map(Gemm::flops).sum())
    }
}

/// Forward work of one transformer layer for one micro-batch on one GPU of its TP group.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWork {
    /// QKV projection (GQA: `d + 2 kv_heads head_dim` outputs) and output projection, sharded by `tp`.
    pub attn_gemms: [Gemm; 2],
    /// Attention scores and context.
    pub attn_core: AttnCore,
    /// Dense SwiGLU GEMMs (gate, up, down) sharded by `tp`; `None` in an MoE layer.
    pub dense_ffn: Option<[Gemm; 3]>,
    /// MoE work; `None` in a dense layer.
    pub moe: Option<MoeWork>,
    /// Size of each tensor-parallel all-reduce [bytes]; 2 per layer forward (after attention and
    /// FFN), 2 more in backward; 0 if `tp == 1`.
    pub tp_allreduce_bytes: f64,
    /// Element-wise memory traffic (norms, residual adds, SwiGLU product) [bytes].
    pub norm_bytes: f64,
}

impl LayerWork {
    /// Forward FLOP of the layer under uniform routing.
    pub fn forward_flops(&self) -> f64 {
        self.attn_gemms.iter().map(Gemm::flops).sum::<f64>()
            + self.attn_core.flops()
            + self
                .dense_ffn
                .map_or(0.0, |g| g.iter().map(Gemm::flops).sum())
            + self.moe.map_or(0.0, |m| m.mean_flops())
    }
}

fn swiglu(tokens: f64, d: f64, f_local: f64) -> [Gemm; 3] {
    [
        Gemm {
            m: tokens,
            n: f_local,
            k: d,
        },
        Gemm {
            m: tokens,
            n: f_local,
            k: d,
        },
        Gemm {
            m: tokens,
            n: d,
            k: f_local,
        },
    ]
}

/// Tokens in one micro-batch (`micro_batch_seqs * seq_len`).
pub fn micro_batch_tokens(model: &ModelSpec, plan: &ParallelPlan) -> f64 {
    plan.micro_batch_seqs as f64 * model.seq_len as f64
}

/// Forward work of `layer` for one micro-batch on one GPU. Element-wise traffic: two norms
/// (read + write) and two residual adds (2 reads + 1 write) = `10 T d` elements, sharded by
/// `tp` (sequence parallelism), plus the SwiGLU product (2 reads + 1 write of the FFN width).
pub fn layer_work(model: &ModelSpec, plan: &ParallelPlan, layer: u32) -> LayerWork {
    let t = micro_batch_tokens(model, plan);
    let tp = plan.tp.max(1) as f64;
    let d = model.d_model as f64;
    let hd = model.head_dim() as f64;
    let p = plan.precision_bytes();
    let q = model.heads as f64 * hd;
    let qkv_out = q + 2.0 * model.kv_heads as f64 * hd;
    let attn_gemms = [
        Gemm {
            m: t,
            n: qkv_out / tp,
            k: d,
        },
        Gemm {
            m: t,
            n: d,
            k: q / tp,
        },
    ];
    let attn_core = AttnCore {
        batch: plan.micro_batch_seqs as f64,
        heads_per_gpu: model.heads as f64 / tp,
        seq: model.seq_len as f64,
        head_dim: hd,
    };
    let mut norm_elems = 10.0 * t * d / tp;
    let (dense_ffn, moe) = match model.moe() {
        Some(m) if model.is_moe_layer(layer) => {
            let fe = m.expert_ffn_hidden as f64 / tp;
            norm_elems += 3.0 * t * (m.top_k + m.shared_experts) as f64 * fe;
            let shared = (m.shared_experts > 0).then(|| swiglu(t, d, m.shared_experts as f64 * fe));
            let work = MoeWork {
                tokens: t,
                hidden: d,
                expert_ffn: fe,
                experts_per_rank: plan.experts_per_rank(model),
                top_k: m.top_k,
                dispatch_bytes_per_token_assignment: d * p,
                router: Gemm {
                    m: t,
                    n: m.experts as f64,
                    k: d,
                },
                shared_expert: shared,
            };
            (None, Some(work))
        }
        _ => {
            let f = model.ffn_hidden as f64 / tp;
            norm_elems += 3.0 * t * f;
            (Some(swiglu(t, d, f)), None)
        }
    };
    LayerWork {
        attn_gemms,
        attn_core,
        dense_ffn,
        moe,
        tp_allreduce_bytes: if plan.tp > 1 { t * d * p } else { 0.0 },
        norm_bytes: norm_elems * p,
    }
}

/// Embedding lookup on the first stage: bytes moved per micro-batch (read rows, write output).
pub fn embedding_work_bytes(model: &ModelSpec, plan: &ParallelPlan) -> f64 {
    2.0 * micro_batch_tokens(model, plan) * model.d_model as f64 * plan.precision_bytes()
}

/// LM-head (logits) GEMM on the last stage for one micro-batch (vocab sharded by `tp`).
pub fn head_work(model: &ModelSpec, plan: &ParallelPlan) -> Gemm {
    Gemm {
        m: micro_batch_tokens(model, plan),
        n: model.vocab as f64 / plan.tp.max(1) as f64,
        k: model.d_model as f64,
    }
}

/// Gradient bytes one GPU synchronises per step, and over which group sizes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradSync {
    /// Non-expert gradient bytes, all-reduced (or reduce-scattered under ZeRO-2/3) over `dp`.
    pub dense_bytes: f64,
    /// Data-parallel group size for non-expert gradients.
    pub dense_group: u32,
    /// Routed-expert gradient bytes, reduced over the `dp / ep` replicas of each expert.
    pub expert_bytes: f64,
    /// Data-parallel group size for expert gradients.
    pub expert_group: u32,
}

/// Gradient synchronisation of the stage-0 GPU (compute-precision gradients).
pub fn dp_grad_sync(model: &ModelSpec, plan: &ParallelPlan) -> GradSync {
    let sp = stage_params(model, plan, 0);
    GradSync {
        dense_bytes: sp.dense * plan.precision_bytes(),
        dense_group: plan.dp,
        expert_bytes: sp.expert * plan.precision_bytes(),
        expert_group: (plan.dp / plan.ep.max(1)).max(1),
    }
}

/// Total gradient bytes one (stage-0) GPU synchronises per step (see [`dp_grad_sync`]).
pub fn dp_grad_bytes_per_gpu(model: &ModelSpec, plan: &ParallelPlan) -> f64 {
    let g = dp_grad_sync(model, plan);
    g.dense_bytes + g.expert_bytes
}

/// Memory traffic of the Adam update on one (stage-0) GPU per step [bytes]: per locally
/// updated parameter read fp32 master, m, v and the 2-byte gradient, write master, m, v and the
/// 2-byte weight (28 B at bf16; derived from the mixed-precision Adam state layout). Under
/// ZeRO >= 1 each GPU updates only its shard.
pub fn optimizer_update_bytes(model: &ModelSpec, plan: &ParallelPlan) -> f64 {
    let sp = stage_params(model, plan, 0);
    let (dense_shard, expert_shard) = if plan.zero_stage >= 1 {
        (
            plan.dp.max(1) as f64,
            (plan.dp / plan.ep.max(1)).max(1) as f64,
        )
    } else {
        (1.0, 1.0)
    };
    let local = sp.dense / dense_shard + sp.expert / expert_shard;
    local * 2.0 * (12.0 + plan.precision_bytes())
}

#[cfg(test)]
mod tests {
    use super::super::model::presets::*;
    use super::super::plan::Recompute;
    use super::*;

    fn plan(tp: u32, ep: u32) -> ParallelPlan {
        ParallelPlan {
            dp: 8,
            tp,
            pp: 1,
            ep,
            micro_batch_seqs: 2,
            global_batch_seqs: 64,
            zero_stage: 1,
            recompute: Recompute::Full,
            precision: crate::workload::Precision::Bf16,
        }
    }

    #[test]
    fn layer_flops_sum_to_model_flops_per_token() {
        // Sum of per-layer forward FLOP x tp x 3 + head = flops_per_token_train x tokens.
        for (m, p) in [(llama2_7b(), plan(2, 1)), (mixtral_8x7b(), plan(2, 8))] {
            let t = micro_batch_tokens(&m, &p);
            let tp = p.tp as f64;
            let layers: f64 = (0..m.layers)
                .map(|l| layer_work(&m, &p, l).forward_flops())
                .sum();
            // The router is replicated over tp; count it once.
            let router: f64 = (0..m.layers)
                .filter_map(|l| layer_work(&m, &p, l).moe.map(|w| w.router.flops()))
                .sum();
            let total = 3.0 * ((layers - router) * tp + router + head_work(&m, &p).flops() * tp);
            let expect = m.flops_per_token_train() * t;
            assert!(
                (total / expect - 1.0).abs() < 1e-9,
                "{}: {total} vs {expect}",
                m.name
            );
        }
    }

    #[test]
    fn tp_shards_gemms_and_adds_allreduce() {
        let m = llama2_7b();
        let w1 = layer_work(&m, &plan(1, 1), 0);
        let w4 = layer_work(&m, &plan(4, 1), 0);
        assert_eq!(w1.tp_allreduce_bytes, 0.0);
        assert_eq!(w4.tp_allreduce_bytes, 2.0 * 4096.0 * 4096.0 * 2.0);
        assert!((w1.forward_flops() / w4.forward_flops() - 4.0).abs() < 1e-9);
        assert!(w4.dense_ffn.is_some() && w4.moe.is_none());
    }

    #[test]
    fn moe_layer_has_expert_work_and_gqa_qkv() {
        let m = mixtral_8x7b();
        let w = layer_work(&m, &plan(1, 8), 0);
        let moe = w.moe.unwrap();
        assert_eq!(moe.experts_per_rank, 1);
        assert_eq!(moe.top_k, 2);
        assert_eq!(moe.dispatch_bytes_per_token_assignment, 4096.0 * 2.0);
        assert!(w.dense_ffn.is_none() && moe.shared_expert.is_none());
        // QKV outputs: 4096 queries + 2 x 8 x 128 keys/values.
        assert_eq!(w.attn_gemms[0].n, 4096.0 + 2048.0);
    }

    #[test]
    fn grad_sync_splits_dense_and_expert_groups() {
        let m = mixtral_8x7b();
        let p = plan(1, 4);
        let g = dp_grad_sync(&m, &p);
        assert_eq!((g.dense_group, g.expert_group), (8, 2));
        assert!((g.expert_bytes / (2.0 * m.routed_expert_params_total() / 4.0) - 1.0).abs() < 1e-9);
        assert!((dp_grad_bytes_per_gpu(&m, &p) - g.dense_bytes - g.expert_bytes).abs() < 1.0);
        // ZeRO-1 spreads the optimizer update over dp.
        let z0 = optimizer_update_bytes(
            &m,
            &ParallelPlan {
                zero_stage: 0,
                ..p.clone()
            },
        );
        assert!(optimizer_update_bytes(&m, &p) < z0 / 2.0);
    }
}
