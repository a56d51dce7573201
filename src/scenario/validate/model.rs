//! Validation of `[models.*]` and `[parallel.*]`: the architecture, the expert kernel and the parallelism plan.

use super::super::raw::*;
use super::super::*;
use super::Validator;
use crate::workload::{self, Arch, FfnKind, MlaSpec, MoeSpec};

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
        let expert_kernel = m.expert_kernel.unwrap_or(ExpertKernel::Grouped);
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
            precision_bytes: precision.bytes_per_element(),
        };
        plan.validate(&model, cluster.gpus).map_err(|e| {
            self.loc
                .invalid(&format!("parallel.{which}"), e.to_string())
        })?;
        workload::check_fits(&model, &plan, cluster.accelerator.hbm_bytes).map_err(|e| {
            self.loc.invalid(
                &format!("parallel.{which}"),
                format!(
                    "{e} on {} ({:.0} GiB HBM)",
                    cluster.accelerator.name,
                    cluster.accelerator.hbm_bytes / (1u64 << 30) as f64
                ),
            )
        })?;
        Ok(Job {
            model,
            plan,
            expert_kernel,
            router_kernel: t.router_kernel.unwrap_or_default(),
            optimizer: t.optimizer.unwrap_or_default(),
            sequence_parallel: t.sequence_parallel.unwrap_or(true),
        })
    }

    /// A count that may be zero (`0..=u32::MAX`).
    fn count0(&self, key: &str, v: i64) -> Result<u32, ScenarioError> {
        if v < 0 || v > u32::MAX as i64 {
            return Err(self
                .loc
                .invalid(key, format!("must be an integer ≥ 0, got {v}")));
        }
        Ok(v as u32)
    }

    /// The architecture keys of `[models.X]`; every absent key keeps [`Arch::default`].
    fn arch(&self, which: &str, m: &RawModel) -> Result<Arch, ScenarioError> {
        let k = |f: &str| format!("models.{which}.{f}");
        let mla = match &m.mla {
            None => None,
            Some(a) => Some(MlaSpec {
                q_lora_rank: self.count0(&k("mla.q_lora_rank"), a.q_lora_rank)?,
                kv_lora_rank: self.count(&k("mla.kv_lora_rank"), a.kv_lora_rank)?,
                qk_nope_head_dim: self.count(&k("mla.qk_nope_head_dim"), a.qk_nope_head_dim)?,
                qk_rope_head_dim: self.count0(&k("mla.qk_rope_head_dim"), a.qk_rope_head_dim)?,
                v_head_dim: self.count(&k("mla.v_head_dim"), a.v_head_dim)?,
            }),
        };
        if mla.is_some() && m.head_dim.is_some() {
            return Err(self.loc.invalid(
                &k("head_dim"),
                "with [mla] the head widths are mla.qk_nope_head_dim + mla.qk_rope_head_dim (keys) and mla.v_head_dim (values); remove `head_dim`",
            ));
        }
        let first_dense_layers = match m.first_dense_layers {
            Some(n) => self.count0(&k("first_dense_layers"), n)?,
            None => 0,
        };
        if first_dense_layers > 0 && m.experts.is_none() {
            return Err(self.loc.invalid(
                &k("first_dense_layers"),
                "only an MoE model has dense layers before its MoE layers; remove it from the dense model",
            ));
        }
        if m.router_score.is_some() && m.experts.is_none() {
            return Err(self.loc.invalid(
                &k("router_score"),
                "a dense model has no router; remove `router_score` (or move it to [models.moe])",
            ));
        }
        Ok(Arch {
            head_dim: m
                .head_dim
                .map(|v| self.count(&k("head_dim"), v))
                .transpose()?,
            mla,
            first_dense_layers,
            sliding_window: m
                .sliding_window
                .map(|v| self.count(&k("sliding_window"), v))
                .transpose()?,
            tied_embeddings: m.tied_embeddings.unwrap_or(false),
            act: m.act.unwrap_or_default(),
            norm: m.norm.unwrap_or_default(),
            router_score: m.router_score.unwrap_or_default(),
        })
    }
}
