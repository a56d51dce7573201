//! Stage two of scenario parsing: raw values checked and turned into domain types.

use super::error::{from_toml, Locator};
use super::raw::*;
use super::*;
use crate::grid::{self, CiKind, GridFormat};
use crate::hardware;
use crate::network::{self, Fabric};
use crate::routing::{Collapse, PastEnd, PlacementPolicy};
use crate::workload::{self, FfnKind, MoeSpec};

/// Parse and validate scenario `text` read from `file`; relative paths resolve against `base`.
pub fn parse_scenario(file: &str, text: &str, base: &Path) -> Result<Scenario, ScenarioError> {
    let raw: RawScenario = toml::from_str(text).map_err(|e| from_toml(file, text, e))?;
    let loc = Locator::new(file.to_string(), text);
    let v = Validator { loc: &loc, base };
    v.scenario(raw, file, text)
}

struct Validator<'a> {
    loc: &'a Locator<'a>,
    base: &'a Path,
}

impl Validator<'_> {
    fn count(&self, key: &str, v: i64) -> Result<u32, ScenarioError> {
        if v <= 0 || v > u32::MAX as i64 {
            return Err(self
                .loc
                .invalid(key, format!("must be a positive integer, got {v}")));
        }
        Ok(v as u32)
    }

    fn positive(&self, key: &str, v: f64) -> Result<f64, ScenarioError> {
        if !(v.is_finite() && v > 0.0) {
            return Err(self
                .loc
                .invalid(key, format!("must be a positive number, got {v}")));
        }
        Ok(v)
    }

    fn share(&self, key: &str, v: f64) -> Result<f64, ScenarioError> {
        if !(0.0..=1.0).contains(&v) {
            return Err(self
                .loc
                .invalid(key, format!("must be between 0 and 1, got {v}")));
        }
        Ok(v)
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        }
    }

    fn scenario(
        &self,
        raw: RawScenario,
        file: &str,
        text: &str,
    ) -> Result<Scenario, ScenarioError> {
        if raw.name.is_empty()
            || !raw
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(self.loc.invalid("name", format!("`{}` must be non-empty letters, digits, `_` or `-` (it names the output folder)", raw.name)));
        }
        if raw.seed < 0 {
            return Err(self.loc.invalid(
                "seed",
                format!("must be a non-negative integer, got {}", raw.seed),
            ));
        }
        let mut strategies = Vec::new();
        for (i, s) in raw.strategies.iter().enumerate() {
            let k = StrategyKind::from_name(s).ok_or_else(|| {
                let names: Vec<&str> = StrategyKind::ALL.iter().map(|(_, n, _)| *n).collect();
                self.loc.invalid(
                    &format!("strategies.{i}"),
                    format!("unknown strategy `{s}`; valid: {}", names.join(", ")),
                )
            })?;
            if strategies.contains(&k) {
                return Err(self.loc.invalid(
                    &format!("strategies.{i}"),
                    format!("strategy `{s}` is listed twice"),
                ));
            }
            strategies.push(k);
        }
        if strategies.is_empty() {
            return Err(self
                .loc
                .invalid("strategies", "list at least one of: dense, moe, circadian"));
        }
        if raw.validation.as_ref().is_some_and(|v| !v.is_table()) {
            return Err(self.loc.invalid(
                "validation",
                "must be a table ([validation]) of published figures, as in scenarios/validation/",
            ));
        }
        let training = self.training(&raw.training)?;
        let cluster = self.cluster(&raw.cluster)?;
        let needs_dense = strategies.contains(&StrategyKind::Dense);
        let needs_moe = strategies.iter().any(|k| *k != StrategyKind::Dense);
        let dense = match (&raw.models.dense, needs_dense) {
            (Some(m), _) => Some(self.job(
                "dense",
                m,
                raw.parallel.dense.as_ref(),
                (&raw.training, training.precision),
                &cluster,
                false,
            )?),
            (None, true) => {
                return Err(self
                    .loc
                    .invalid("models", "strategy `dense` needs a [models.dense] table"))
            }
            (None, false) => None,
        };
        let moe = match (&raw.models.moe, needs_moe) {
            (Some(m), _) => Some(self.job(
                "moe",
                m,
                raw.parallel.moe.as_ref(),
                (&raw.training, training.precision),
                &cluster,
                true,
            )?),
            (None, true) => {
                return Err(self.loc.invalid(
                    "models",
                    "strategies `moe` and `circadian` need a [models.moe] table",
                ))
            }
            (None, false) => None,
        };
        let routing = match &raw.routing {
            None if moe.is_some() => return Err(self.loc.invalid(
                "routing",
                "an MoE model needs a [routing] table: model = \"uniform\" | \"zipf\" | \"trace\"",
            )),
            None => RoutingSpec::default(),
            Some(r) => self.routing(r)?,
        };
        let grid = self.grid(&raw.grid)?;
        let circadian = match (
            &raw.strategy.circadian,
            strategies.contains(&StrategyKind::Circadian),
        ) {
            (Some(c), _) => Some(self.circadian(c, moe.as_ref(), &cluster)?),
            (None, true) => {
                return Err(self.loc.invalid(
                    "strategy",
                    "strategy `circadian` needs a [strategy.circadian] table",
                ))
            }
            (None, false) => None,
        };
        Ok(Scenario {
            name: raw.name,
            description: raw.description,
            seed: raw.seed as u64,
            file: file.to_string(),
            text: text.to_string(),
            strategies,
            cluster,
            training,
            dense,
            moe,
            routing,
            grid,
            circadian,
        })
    }

    fn training(&self, t: &RawTraining) -> Result<Training, ScenarioError> {
        let (tokens, target_loss) = match (t.tokens, t.target_loss) {
            (Some(n), None) => (self.positive("training.tokens", n)?, None),
            (None, Some(l)) => (0.0, Some(self.positive("training.target_loss", l)?)),
            (Some(_), Some(_)) => return Err(self.loc.invalid("training.target_loss", "give either `tokens` (a token budget) or `target_loss` (train to an estimated loss), not both")),
            (None, None) => return Err(self.loc.invalid("training", "give `tokens` (a token budget) or `target_loss` (train each strategy to this estimated loss)")),
        };
        let precision: Precision = t.precision.parse().map_err(|_| {
            self.loc.invalid(
                "training.precision",
                format!(
                    "unknown precision `{}`; valid: fp32, tf32, bf16, fp16, fp8",
                    t.precision
                ),
            )
        })?;
        let start = chrono::DateTime::parse_from_rfc3339(t.start.trim()).map_err(|e| {
            self.loc.invalid(
                "training.start",
                format!("`{}` is not an RFC 3339 time with offset ({e}); e.g. \"2022-06-01T00:00:00-07:00\" or \"2022-06-01T07:00:00Z\"", t.start),
            )
        })?;
        Ok(Training {
            tokens,
            target_loss,
            precision,
            start_utc_s: start.timestamp(),
            start_text: t.start.clone(),
        })
    }

    fn cluster(&self, c: &RawCluster) -> Result<Cluster, ScenarioError> {
        let accelerator = match (&c.gpu, &c.gpu_file) {
            (Some(k), None) => {
                hardware::preset(k).map_err(|e| self.loc.invalid("cluster.gpu", e.to_string()))?
            }
            (None, Some(f)) => hardware::read_preset_file(&self.path(f))
                .map_err(|e| self.loc.invalid("cluster.gpu_file", e.to_string()))?,
            (Some(_), Some(_)) => {
                return Err(self.loc.invalid(
                    "cluster.gpu_file",
                    "give either `gpu` (a preset key) or `gpu_file` (a preset TOML file), not both",
                ))
            }
            (None, None) => {
                return Err(self.loc.invalid(
                    "cluster",
                    format!(
                        "needs `gpu` (a preset key: {}) or `gpu_file` (a preset TOML file written by `moesim calibrate`)",
                        hardware::PRESET_KEYS.join(", ")
                    ),
                ))
            }
        };
        let gpus = self.count("cluster.gpus", c.gpus)?;
        let gpus_per_node = match c.gpus_per_node {
            Some(n) => self.count("cluster.gpus_per_node", n)?,
            None => accelerator.gpus_per_node,
        };
        if gpus > gpus_per_node && gpus % gpus_per_node != 0 {
            return Err(self.loc.invalid(
                "cluster.gpus",
                format!("{gpus} GPUs do not fill whole nodes of {gpus_per_node}; use a multiple of {gpus_per_node} (e.g. {} or {})", gpus / gpus_per_node * gpus_per_node, gpus.div_ceil(gpus_per_node) * gpus_per_node),
            ));
        }
        let intra = match &c.intra_node_link {
            Some(k) => {
                network::link_preset(k)
                    .map_err(|e| self.loc.invalid("cluster.intra_node_link", e.to_string()))?
                    .link
            }
            None => network::Link {
                bw_bytes_per_s: accelerator.intra_node_bw_bytes_per_s,
                latency_s: accelerator.intra_node_latency_s,
            },
        };
        let inter = network::link_preset(&c.inter_node_link)
            .map_err(|e| self.loc.invalid("cluster.inter_node_link", e.to_string()))?
            .link;
        if !(c.pue.is_finite() && (1.0..=3.0).contains(&c.pue)) {
            return Err(self.loc.invalid(
                "cluster.pue",
                format!(
                    "power usage effectiveness must be in [1.0, 3.0], got {}",
                    c.pue
                ),
            ));
        }
        let node_overhead_w = match c.node_overhead_w {
            Some(w) if w.is_finite() && w >= 0.0 => w,
            Some(w) => {
                return Err(self
                    .loc
                    .invalid("cluster.node_overhead_w", format!("must be ≥ 0 W, got {w}")))
            }
            None => accelerator.node_overhead_w,
        };
        let oversubscription = match c.oversubscription {
            Some(o) if o.is_finite() && o >= 1.0 => o,
            Some(o) => {
                return Err(self.loc.invalid(
                    "cluster.oversubscription",
                    format!("fat-tree oversubscription must be ≥ 1 (1 = full bisection), got {o}"),
                ))
            }
            None => 1.0,
        };
        let weather_pue = match (&c.weather, &c.pue_model) {
            (None, None) => None,
            (Some(w), Some(m)) => {
                let model = grid::PueModel::by_name(m).map_err(|e| self.loc.invalid("cluster.pue_model", e.to_string()))?;
                Some((self.path(w), model))
            }
            (Some(_), None) => return Err(self.loc.invalid("cluster.pue_model", "a weather file needs `pue_model` (chiller or free_cooled) to turn temperature into PUE")),
            (None, Some(_)) => return Err(self.loc.invalid("cluster.weather", "`pue_model` needs `weather = \"path/to/file.epw\"` (hourly typical-year weather)")),
        };
        let nodes = gpus.div_ceil(gpus_per_node);
        let mut fabric = Fabric::new(intra, inter, gpus_per_node.min(gpus), nodes);
        fabric.oversubscription = oversubscription;
        Ok(Cluster {
            accelerator,
            gpus,
            gpus_per_node,
            fabric,
            pue: c.pue,
            release_nodes_when_paused: c.release_nodes_when_paused,
            node_overhead_w,
            weather_pue,
        })
    }

    fn job(
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
        let expert_kernel = match m.expert_kernel.as_deref() {
            None => ExpertKernel::Grouped,
            Some("loop") => ExpertKernel::Loop,
            Some("grouped") => ExpertKernel::Grouped,
            Some("padded") => ExpertKernel::Padded,
            Some(o) => {
                return Err(self.loc.invalid(
                    &k("expert_kernel"),
                    format!("unknown expert kernel `{o}`; valid: loop, grouped, padded"),
                ))
            }
        };
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
            recompute: t.recompute,
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
        })
    }

    fn routing(&self, r: &RawRouting) -> Result<RoutingSpec, ScenarioError> {
        let k = |f: &str| format!("routing.{f}");
        let nonneg = |f: &str, v: f64| -> Result<f64, ScenarioError> {
            if v.is_finite() && v >= 0.0 {
                Ok(v)
            } else {
                Err(self.loc.invalid(&k(f), format!("must be ≥ 0, got {v}")))
            }
        };
        let unused = |f: &str, present: bool, model: &str| -> Result<(), ScenarioError> {
            if present {
                Err(self.loc.invalid(
                    &k(f),
                    format!("`{f}` does not apply to routing model `{model}`"),
                ))
            } else {
                Ok(())
            }
        };
        let m = r.model.as_str();
        if m != "zipf" && m != "noisy_topk" {
            unused("zipf_s", r.zipf_s.is_some(), m)?;
        }
        if m != "noisy_topk" {
            unused("noise", r.noise.is_some(), m)?;
            unused("sample_tokens", r.sample_tokens.is_some(), m)?;
        }
        if m != "dirichlet" {
            unused("dirichlet_alpha", r.dirichlet_alpha.is_some(), m)?;
            unused("drift", r.drift.is_some(), m)?;
        }
        if m != "trace" {
            for (f, p) in [
                ("trace", r.trace.is_some()),
                ("map", r.map.is_some()),
                ("past_end", r.past_end.is_some()),
                ("bootstrap_block", r.bootstrap_block.is_some()),
            ] {
                unused(f, p, m)?;
            }
        }
        let source = match m {
            "balanced" => RoutingSource::Balanced,
            "uniform" => RoutingSource::Uniform,
            "zipf" => {
                let s = r.zipf_s.ok_or_else(|| {
                    self.loc.invalid(
                        &k("zipf_s"),
                        "routing model `zipf` needs `zipf_s` (exponent ≥ 0, e.g. 1.0)",
                    )
                })?;
                RoutingSource::Zipf(nonneg("zipf_s", s)?)
            }
            "noisy_topk" => {
                let s = r.zipf_s.ok_or_else(|| self.loc.invalid(&k("zipf_s"), "routing model `noisy_topk` needs `zipf_s` (skew of the clean gate, ≥ 0)"))?;
                let noise = r.noise.ok_or_else(|| self.loc.invalid(&k("noise"), "routing model `noisy_topk` needs `noise` (logit noise standard deviation, ≥ 0)"))?;
                let tokens = r.sample_tokens.ok_or_else(|| self.loc.invalid(&k("sample_tokens"), "routing model `noisy_topk` needs `sample_tokens` (tokens sampled per layer and step, e.g. 256)"))?;
                RoutingSource::NoisyTopK { s: nonneg("zipf_s", s)?, noise: nonneg("noise", noise)?, tokens: self.count(&k("sample_tokens"), tokens)? }
            }
            "dirichlet" => {
                let a = r.dirichlet_alpha.ok_or_else(|| {
                    self.loc.invalid(
                        &k("dirichlet_alpha"),
                        "routing model `dirichlet` needs `dirichlet_alpha` (> 0; small = skewed)",
                    )
                })?;
                let alpha = self.positive(&k("dirichlet_alpha"), a)?;
                let drift = nonneg("drift", r.drift.unwrap_or(0.0))?;
                RoutingSource::Dirichlet { alpha, drift }
            }
            "trace" => {
                let p = r.trace.as_ref().ok_or_else(|| self.loc.invalid(&k("trace"), "routing model `trace` needs `trace = \"path/to/trace.csv\"` (relative to the scenario file)"))?;
                let past_end = match r.past_end.as_deref() {
                    None | Some("loop") => PastEnd::Loop,
                    Some("hold") => PastEnd::Hold,
                    Some("bootstrap") => {
                        let b = r.bootstrap_block.ok_or_else(|| self.loc.invalid(&k("bootstrap_block"), "past_end = \"bootstrap\" needs `bootstrap_block` (steps per block, e.g. 50)"))?;
                        PastEnd::Bootstrap {
                            block: self.count(&k("bootstrap_block"), b)? as u64,
                        }
                    }
                    Some(o) => {
                        return Err(self.loc.invalid(
                            &k("past_end"),
                            format!("unknown `{o}`; valid: loop, hold, bootstrap"),
                        ))
                    }
                };
                if r.bootstrap_block.is_some()
                    && past_end
                        != (PastEnd::Bootstrap {
                            block: r.bootstrap_block.unwrap_or(0).max(0) as u64,
                        })
                {
                    return Err(self.loc.invalid(
                        &k("bootstrap_block"),
                        "only applies with past_end = \"bootstrap\"",
                    ));
                }
                RoutingSource::Trace {
                    path: self.path(p),
                    map: r.map.unwrap_or(false),
                    past_end,
                }
            }
            o => {
                return Err(self.loc.invalid(
                    &k("model"),
                    format!(
                    "unknown routing model `{o}`; valid: balanced, uniform, zipf, dirichlet, noisy_topk, trace"
                ),
                ))
            }
        };
        let collapse = match (r.collapse_share, r.collapse_steps) {
            (None, None) => None,
            (Some(sh), Some(st)) => {
                if matches!(source, RoutingSource::Trace { .. }) {
                    return Err(self.loc.invalid(
                        &k("collapse_share"),
                        "a collapse applies to synthetic routers, not to a replayed trace",
                    ));
                }
                if !(sh > 0.0 && sh <= 1.0) {
                    return Err(self
                        .loc
                        .invalid(&k("collapse_share"), format!("must be in (0, 1], got {sh}")));
                }
                Some(Collapse {
                    max_share: sh,
                    over_steps: self.count(&k("collapse_steps"), st)? as u64,
                })
            }
            (Some(_), None) => {
                return Err(self.loc.invalid(
                    &k("collapse_share"),
                    "needs `collapse_steps` too (steps until full collapse)",
                ))
            }
            (None, Some(_)) => {
                return Err(self.loc.invalid(
                    &k("collapse_steps"),
                    "needs `collapse_share` too (share of the collapsed expert)",
                ))
            }
        };
        let choice = match r.choice.as_deref() {
            None | Some("token") => RoutingChoice::TokenChoice,
            Some("expert") => RoutingChoice::ExpertChoice,
            Some(o) => {
                return Err(self.loc.invalid(
                    &k("choice"),
                    format!(
                        "unknown `{o}`; valid: token (token-choice top-k), expert (expert choice)"
                    ),
                ))
            }
        };
        let placement = match (r.placement.as_deref(), r.replica_slots) {
            (None | Some("contiguous"), None) => PlacementPolicy::Contiguous,
            (Some("round_robin"), None) => PlacementPolicy::RoundRobin,
            (Some("by_load"), None) => PlacementPolicy::ByLoad,
            (Some("replicate"), Some(n)) => PlacementPolicy::Replicate { extra: self.count(&k("replica_slots"), n)? },
            (Some("replicate"), None) => return Err(self.loc.invalid(&k("replica_slots"), "placement = \"replicate\" needs `replica_slots` (extra expert slots per rank, e.g. 1)")),
            (_, Some(_)) => return Err(self.loc.invalid(&k("replica_slots"), "only applies with placement = \"replicate\"")),
            (Some(o), None) => return Err(self.loc.invalid(&k("placement"), format!("unknown `{o}`; valid: contiguous, round_robin, by_load, replicate"))),
        };
        let rebalance_every_steps = match r.rebalance_every_steps {
            None => None,
            Some(n) => Some(self.count(&k("rebalance_every_steps"), n)? as u64),
        };
        Ok(RoutingSpec {
            source,
            collapse,
            choice,
            placement,
            rebalance_every_steps,
        })
    }

    fn grid(&self, g: &RawGrid) -> Result<GridSpec, ScenarioError> {
        let price_per_mwh = match g.price_per_mwh {
            Some(p) if p.is_finite() && p >= 0.0 => Some(p),
            Some(p) => {
                return Err(self
                    .loc
                    .invalid("grid.price_per_mwh", format!("must be ≥ 0, got {p}")))
            }
            None => None,
        };
        let interval_s = match g.interval_minutes {
            Some(m) if m > 0 && 1440 % m == 0 => m * 60,
            Some(m) => {
                return Err(self.loc.invalid(
                    "grid.interval_minutes",
                    format!("must divide a day (e.g. 15, 30, 60), got {m}"),
                ))
            }
            None => 3600,
        };
        let source = match g.source.as_str() {
            "profile" => {
                let regions = grid::profile_regions();
                if !regions.iter().any(|r| *r == g.region) {
                    return Err(self.loc.invalid(
                        "grid.region",
                        format!(
                            "no embedded profile for `{}`; valid: {}",
                            g.region,
                            regions.join(", ")
                        ),
                    ));
                }
                if g.csv.is_some() {
                    return Err(self.loc.invalid("grid.csv", "grid.source = \"profile\" does not read a CSV; set source = \"csv\" or remove [grid.csv]"));
                }
                GridSource::Profile
            }
            "csv" => {
                let c = g.csv.as_ref().ok_or_else(|| self.loc.invalid("grid", "grid.source = \"csv\" needs a [grid.csv] table (path, format, max_gap_intervals, wrap_years; for the generic format also time_column, time_zone, stamp, ci_column, ci_kind)"))?;
                let format = match c.format.as_deref() {
                    None => GridFormat::Generic,
                    Some(f) => GridFormat::from_name(f).map_err(|_| {
                        self.loc.invalid(
                            "grid.csv.format",
                            format!(
                                "unknown format `{f}`; valid: {}",
                                grid::format_names().join(", ")
                            ),
                        )
                    })?,
                };
                let generic = format == GridFormat::Generic;
                let need = |key: &str, v: &Option<String>| -> Result<String, ScenarioError> {
                    match (v, generic) {
                        (Some(x), _) => Ok(x.clone()),
                        (None, true) => Err(self.loc.invalid(
                            &format!("grid.csv.{key}"),
                            format!("the generic CSV format needs `{key}`"),
                        )),
                        (None, false) => Ok(String::new()),
                    }
                };
                let stamp = need("stamp", &c.stamp)?;
                let stamp_is_interval_end = match (stamp.as_str(), generic) {
                    ("start", _) | ("", false) => false,
                    ("end", _) => true,
                    (o, _) => return Err(self.loc.invalid("grid.csv.stamp", format!("`{o}`: valid: \"start\" (stamp = interval start) or \"end\" (hour-ending, as in EIA-930)"))),
                };
                let ci_kind = match need("ci_kind", &c.ci_kind)?.as_str() {
                    "average" | "" => CiKind::Average,
                    "marginal" => CiKind::Marginal,
                    o => {
                        return Err(self.loc.invalid(
                            "grid.csv.ci_kind",
                            format!("`{o}`: valid: average, marginal"),
                        ))
                    }
                };
                if c.max_gap_intervals < 0 {
                    return Err(self.loc.invalid(
                        "grid.csv.max_gap_intervals",
                        format!("must be ≥ 0, got {}", c.max_gap_intervals),
                    ));
                }
                let time_zone = need("time_zone", &c.time_zone)?;
                if generic && time_zone.parse::<chrono_tz::Tz>().is_err() && time_zone != "UTC" {
                    return Err(self.loc.invalid("grid.csv.time_zone", format!("`{time_zone}` is not an IANA time zone (e.g. UTC, America/Los_Angeles, Europe/London)")));
                }
                if let Some(z) = &c.local_time_zone {
                    if z.parse::<chrono_tz::Tz>().is_err() && z != "UTC" {
                        return Err(self.loc.invalid(
                            "grid.csv.local_time_zone",
                            format!("`{z}` is not an IANA time zone (e.g. Europe/Berlin)"),
                        ));
                    }
                }
                let columns = if generic {
                    Some(grid::CsvColumns {
                        time_column: need("time_column", &c.time_column)?,
                        time_zone,
                        stamp: if stamp_is_interval_end {
                            grid::StampAt::End
                        } else {
                            grid::StampAt::Start
                        },
                        ci_column: need("ci_column", &c.ci_column)?,
                        ci_kind,
                        load_column: c.load_column.clone(),
                        price_column: c.price_column.clone(),
                    })
                } else {
                    None
                };
                GridSource::File(Box::new(grid::GridFile {
                    path: self.path(&c.path),
                    format,
                    local_time_zone: c.local_time_zone.clone(),
                    max_gap_intervals: c.max_gap_intervals as u32,
                    columns,
                    ci_signal: c.ci_signal.clone(),
                    wrap_years: c.wrap_years,
                }))
            }
            o => {
                return Err(self.loc.invalid(
                    "grid.source",
                    format!("unknown grid source `{o}`; valid: profile, csv"),
                ))
            }
        };
        Ok(GridSpec {
            region: g.region.clone(),
            source,
            price_per_mwh,
            interval_s,
        })
    }

    fn circadian(
        &self,
        c: &RawCircadian,
        moe: Option<&Job>,
        cluster: &Cluster,
    ) -> Result<CircadianSpec, ScenarioError> {
        let k = |f: &str| format!("strategy.circadian.{f}");
        let deadline_s = self.positive(&k("deadline_hours"), c.deadline_hours)? * 3600.0;
        let objective = match c.objective.as_str() {
            "co2" => Objective::Co2,
            "energy" => Objective::Energy,
            "cost" => Objective::Cost,
            "load" => Objective::Load,
            o => {
                return Err(self.loc.invalid(
                    &k("objective"),
                    format!("unknown objective `{o}`; valid: co2, energy, cost, load"),
                ))
            }
        };
        let (optimal, needs_shares, needs_window) = match c.policy.as_str() {
            "optimal" => (true, false, false),
            "threshold" => (false, true, false),
            "window" => (false, false, true),
            o => return Err(self.loc.invalid(&k("policy"), format!("unknown policy `{o}`; valid: optimal (minimise the objective within the deadline), threshold (shares of the coming week), window (fixed local hours)"))),
        };
        let share = |f: &str, v: Option<f64>| -> Result<f64, ScenarioError> {
            match v {
                Some(x) => self.share(&k(f), x),
                None if needs_shares => Err(self.loc.invalid(
                    &k(f),
                    format!("policy `{}` needs `{f}` (a share in [0, 1])", c.policy),
                )),
                None => Ok(0.0),
            }
        };
        let full_share = share("full_share", c.full_share)?;
        let pause_share = share("pause_share", c.pause_share)?;
        if full_share + pause_share > 1.0 {
            return Err(self.loc.invalid(
                &k("pause_share"),
                format!(
                    "full_share + pause_share = {} exceeds 1",
                    full_share + pause_share
                ),
            ));
        }
        if optimal && (c.full_share.is_some() || c.window_hours.is_some()) {
            return Err(self.loc.invalid(&k("policy"), "policy `optimal` picks its own hours: remove full_share / window_hours (pause_share is ignored too)"));
        }
        if needs_window != c.window_hours.is_some() {
            return Err(self.loc.invalid(
                &k("window_hours"),
                if needs_window {
                    "policy `window` needs `window_hours` (local hours 0–23, e.g. [1, 2, 3, 4])"
                } else {
                    "`window_hours` only applies with policy = \"window\""
                },
            ));
        }
        let window_hours = match &c.window_hours {
            None => None,
            Some(h) => {
                let mut out = Vec::new();
                for (i, &x) in h.iter().enumerate() {
                    if !(0..24).contains(&x) {
                        return Err(self.loc.invalid(
                            &format!("{}.{i}", k("window_hours")),
                            format!("local hour must be 0..=23, got {x}"),
                        ));
                    }
                    out.push(x as u32);
                }
                Some(out)
            }
        };
        let nominal_k = match moe.map(|j| &j.model.ffn) {
            Some(FfnKind::Moe(m)) => m.top_k,
            _ => 1,
        };
        let throttle_top_k = match c.throttle_top_k {
            Some(t) => {
                let t = self.count(&k("throttle_top_k"), t)?;
                if t > nominal_k {
                    return Err(self.loc.invalid(
                        &k("throttle_top_k"),
                        format!(
                            "{t} exceeds the model's top_k = {nominal_k}; valid: 1..={nominal_k}"
                        ),
                    ));
                }
                t
            }
            None => nominal_k,
        };
        let acc = &cluster.accelerator;
        let throttle_power_cap_w = match c.throttle_power_cap_w {
            Some(w) if w >= acc.min_power_cap_w && w <= acc.tdp_w => w,
            Some(w) => {
                return Err(self.loc.invalid(
                    &k("throttle_power_cap_w"),
                    format!(
                        "{w} W is outside the {} power-limit range {}..={} W",
                        acc.name, acc.min_power_cap_w, acc.tdp_w
                    ),
                ))
            }
            None => acc.tdp_w,
        };
        let throttle_batch_fraction = match c.throttle_batch_fraction {
            Some(f) if f > 0.0 && f <= 1.0 => f,
            Some(f) => {
                return Err(self.loc.invalid(
                    &k("throttle_batch_fraction"),
                    format!("must be in (0, 1], got {f}"),
                ))
            }
            None => 1.0,
        };
        if let (Some(j), true) = (moe, throttle_batch_fraction < 1.0) {
            let mb = j.plan.micro_batches();
            if let Ok(mb) = mb {
                let kept = (mb as f64 * throttle_batch_fraction).round();
                if kept < 1.0 {
                    return Err(self.loc.invalid(
                        &k("throttle_batch_fraction"),
                        format!(
                            "keeps no micro-batch of the {mb} per step; valid: ≥ {:.3}",
                            1.0 / mb as f64
                        ),
                    ));
                }
            }
        }
        let nonneg = |f: &str, v: f64| -> Result<f64, ScenarioError> {
            if v.is_finite() && v >= 0.0 {
                Ok(v)
            } else {
                Err(self.loc.invalid(&k(f), format!("must be ≥ 0 s, got {v}")))
            }
        };
        Ok(CircadianSpec {
            deadline_s,
            objective,
            optimal,
            full_share,
            pause_share,
            window_hours,
            throttle_top_k,
            throttle_power_cap_w,
            throttle_batch_fraction,
            checkpoint_write_s: nonneg("checkpoint_write_s", c.checkpoint_write_s)?,
            restore_s: nonneg("restore_s", c.restore_s)?,
            forecast_error: nonneg("forecast_error", c.forecast_error.unwrap_or(0.0))?,
            top_k_by_hour: match &c.top_k_by_hour {
                None => None,
                Some(v) if v.len() != 24 => {
                    return Err(self.loc.invalid(
                        &k("top_k_by_hour"),
                        format!("needs 24 values (local hours 0–23), got {}", v.len()),
                    ))
                }
                Some(v) => {
                    let mut out = [0u32; 24];
                    for (i, &x) in v.iter().enumerate() {
                        if x < 1 || x as u32 > nominal_k {
                            return Err(self.loc.invalid(
                                &format!("{}.{i}", k("top_k_by_hour")),
                                format!("top-k {x} at hour {i} is outside 1..={nominal_k}"),
                            ));
                        }
                        out[i] = x as u32;
                    }
                    Some(out)
                }
            },
        })
    }
}
