//! Validation of `[training]`: token budget or target loss, precision, start time, recomputation,
//! and the pipeline schedule and overlap (`virtual_stages`, `overlap_ep_comm`, `overlap_grad_sync`).

use super::super::raw::*;
use super::super::*;
use super::Validator;
use crate::workload::{ModelSpec, ParallelPlan, Recompute, Schedule};

impl Validator<'_> {
    /// `training.precision`, parsed once and handed to each job's plan (the plan is its one home).
    pub(super) fn precision(&self, t: &RawTraining) -> Result<Precision, ScenarioError> {
        t.precision.parse().map_err(|_| {
            self.loc.invalid(
                "training.precision",
                format!(
                    "unknown precision `{}`; valid: fp32, tf32, bf16, fp16, fp8",
                    t.precision
                ),
            )
        })
    }

    pub(super) fn training(&self, t: &RawTraining) -> Result<Training, ScenarioError> {
        let (tokens, target_loss) = match (t.tokens, t.target_loss) {
            (Some(n), None) => (self.positive("training.tokens", n)?, None),
            (None, Some(l)) => (0.0, Some(self.positive("training.target_loss", l)?)),
            (Some(_), Some(_)) => return Err(self.loc.invalid("training.target_loss", "give either `tokens` (a token budget) or `target_loss` (train to an estimated loss), not both")),
            (None, None) => return Err(self.loc.invalid("training", "give `tokens` (a token budget) or `target_loss` (train each strategy to this estimated loss)")),
        };
        let compare = match t.compare.as_deref().map(str::trim) {
            None | Some("loss") => Compare::Loss,
            Some("tokens") if target_loss.is_some() => return Err(self.loc.invalid("training.compare", "`tokens` compares at equal tokens, but training.target_loss asks for equal loss; drop target_loss (and give `tokens`) or use compare = \"loss\"")),
            Some("tokens") => Compare::Tokens,
            Some(other) => return Err(self.loc.invalid("training.compare", format!("unknown comparison `{other}`; valid: \"loss\" (every strategy trained to one estimated loss, the default) or \"tokens\" (every strategy trains training.tokens)"))),
        };
        let start = chrono::DateTime::parse_from_rfc3339(t.start.trim()).map_err(|e| {
            self.loc.invalid(
                "training.start",
                format!("`{}` is not an RFC 3339 time with offset ({e}); e.g. \"2022-06-01T00:00:00-07:00\" or \"2022-06-01T07:00:00Z\"", t.start),
            )
        })?;
        Ok(Training {
            tokens,
            target_loss,
            compare,
            start_utc_s: start.timestamp(),
            start_text: t.start.clone(),
            exact: t.exact.unwrap_or(false),
            // Set by the model tables' validation (`[models.moe.curriculum]`).
            curriculum_top_k: None,
            curriculum_capacity_factor: None,
            curriculum_active_experts: None,
            batch_schedule: self.batch_schedule(t)?,
            eval: self.training_eval(t)?,
        })
    }

    /// `[training.eval]`: both keys positive whole numbers.
    fn training_eval(&self, t: &RawTraining) -> Result<Option<TrainingEval>, ScenarioError> {
        let Some(e) = &t.eval else {
            return Ok(None);
        };
        let whole = |key: &str, v: i64, what: &str| {
            if v >= 1 {
                Ok(v as u64)
            } else {
                Err(self.loc.invalid(
                    key,
                    format!("must be a whole number of {what} >= 1, got {v}; remove [training.eval] for a run without evaluations"),
                ))
            }
        };
        Ok(Some(TrainingEval {
            every_steps: whole(
                "training.eval.every_steps",
                e.every_steps,
                "optimizer steps",
            )?,
            seqs: whole("training.eval.seqs", e.seqs, "sequences")?,
        }))
    }

    /// `training.recompute`: `"none" | "selective" | "full"`, or the legacy boolean, which keeps
    /// its old meaning (`true` = a full forward recomputed before each backward = `"full"`).
    pub(super) fn recompute(&self, t: &RawTraining) -> Result<Recompute, ScenarioError> {
        const VALID: &str = "valid: \"none\", \"selective\" (Megatron `--recompute-granularity selective`: the attention core), \"full\" (the whole layer's forward), \"norms_up_proj\" (DeepSeek-V3: every norm and the MLA up-projections), or the legacy true (= \"full\") / false (= \"none\")";
        match &t.recompute {
            toml::Value::Boolean(b) => Ok(Recompute::from_legacy_bool(*b)),
            toml::Value::String(s) if s != "true" && s != "false" => Recompute::parse(s)
                .ok_or_else(|| {
                    self.loc.invalid(
                        "training.recompute",
                        format!("unknown recompute `{s}`; {VALID}"),
                    )
                }),
            v => Err(self
                .loc
                .invalid("training.recompute", format!("`{v}` is not valid; {VALID}"))),
        }
    }

    /// The schedule of plan `which`: `parallel.X.virtual_stages` (default 1 = plain 1F1B) and
    /// `training.overlap_ep_comm` / `training.overlap_grad_sync` (default false, Megatron-LM
    /// core's defaults; see [`Schedule`]), checked against the model and plan.
    pub(super) fn schedule(
        &self,
        which: &str,
        p: &RawParallel,
        t: &RawTraining,
        model: &ModelSpec,
        plan: &ParallelPlan,
    ) -> Result<Schedule, ScenarioError> {
        let key = format!("parallel.{which}.virtual_stages");
        let virtual_stages = match p.virtual_stages {
            Some(v) => self.count(&key, v)?,
            None => 1,
        };
        let d = Schedule::default();
        let s = Schedule {
            virtual_stages,
            overlap_ep_comm: t.overlap_ep_comm.unwrap_or(d.overlap_ep_comm),
            overlap_grad_sync: t.overlap_grad_sync.unwrap_or(d.overlap_grad_sync),
            overlap_param_gather: t.overlap_param_gather.unwrap_or(d.overlap_param_gather),
            pipeline: t.pipeline_schedule.unwrap_or(d.pipeline),
        };
        s.validate(model, plan).map_err(|e| {
            // The overlap's own checks name their `training.` key; the rest are the stages'.
            let at = match &e {
                crate::workload::WorkloadError::InvalidField { field, .. }
                    if field.starts_with("training.") =>
                {
                    field.to_string()
                }
                _ => key.clone(),
            };
            self.loc.invalid(&at, e.to_string())
        })?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::parse_scenario;
    use std::path::Path;

    const BASE: &str = include_str!("../../../scenarios/single_node.toml");

    fn with(edits: &[(&str, &str)]) -> Result<crate::scenario::Scenario, String> {
        let mut text = BASE.to_string();
        for (from, to) in edits {
            assert!(text.contains(from), "{from}");
            text = text.replacen(from, to, 1);
        }
        parse_scenario("s.toml", &text, Path::new(".")).map_err(|e| e.to_string())
    }

    #[test]
    fn schedule_keys_reach_the_job_and_default_to_megatron() {
        let s = with(&[]).expect("valid");
        let d = &s.dense.as_ref().expect("dense").schedule;
        assert_eq!(d.virtual_stages, 1);
        assert!(!d.overlap_ep_comm && !d.overlap_grad_sync);
        let s = with(&[(
            "recompute = false",
            "recompute = false\noverlap_ep_comm = true\noverlap_grad_sync = true",
        )])
        .expect("valid");
        let m = &s.moe.as_ref().expect("moe").schedule;
        assert!(m.overlap_ep_comm && m.overlap_grad_sync);
    }

    #[test]
    fn dualpipe_is_chosen_by_key_and_refused_where_dualpipe_py_asserts() {
        // The shipped one-node plans have pp = 1: DualPipe needs an even pp >= 2.
        let e = with(&[(
            "recompute = false",
            "recompute = false\npipeline_schedule = \"dualpipe\"",
        )])
        .expect_err("accepted");
        assert!(
            e.contains("training.pipeline_schedule") && e.contains("got pp = 1"),
            "{e}"
        );
        // pp 2 (dp 4): 256 / (4 x 8) = 8 micro-batches >= 2 x 2.
        let two = [
            (
                "recompute = false",
                "recompute = false\npipeline_schedule = \"dualpipe\"",
            ),
            ("dp = 8", "dp = 4"),
            ("pp = 1", "pp = 2"),
            ("ep = 8", "ep = 4"),
            ("dp = 8", "dp = 4"),
            ("pp = 1", "pp = 2"),
        ];
        let s = with(&two).expect("valid");
        let d = &s.dense.as_ref().expect("dense").schedule;
        assert_eq!(d.pipeline, crate::workload::PipelineKind::DualPipe);
        let e = with(&[(
            "recompute = false",
            "recompute = false\npipeline_schedule = \"zb-v\"",
        )])
        .expect_err("accepted");
        assert!(
            e.contains("pipeline_schedule") && e.contains("1f1b") && e.contains("dualpipe"),
            "{e}"
        );
    }

    #[test]
    fn bad_schedule_values_name_the_key() {
        let e = with(&[(
            "recompute = false",
            "recompute = false\noverlap_grad_sync = \"yes\"",
        )])
        .expect_err("accepted");
        assert!(e.contains("true or false"), "{e}");
        // The shipped one-node plans have pp = 1: interleaving has no stages to interleave.
        let e = with(&[("pp = 1", "pp = 1\nvirtual_stages = 2")]).expect_err("accepted");
        assert!(
            e.contains("virtual_stages") && e.contains("with pp = 1 use 1"),
            "{e}"
        );
        // Megatron-LM refuses the all-to-all overlap with full recomputation; ZeRO-3 inside the
        // combined passes is not modelled.
        let e = with(&[(
            "recompute = false",
            "recompute = \"full\"\noverlap_ep_comm = true",
        )])
        .expect_err("accepted");
        assert!(
            e.contains("training.overlap_ep_comm") && e.contains("full recomputation"),
            "{e}"
        );
        let e = with(&[
            (
                "recompute = false",
                "recompute = false\noverlap_ep_comm = true",
            ),
            ("zero_stage = 1", "zero_stage = 3"),
        ])
        .expect_err("accepted");
        assert!(
            e.contains("training.overlap_ep_comm") && e.contains("ZeRO stage 3"),
            "{e}"
        );
        let e = with(&[
            (
                "recompute = false",
                "recompute = false\noverlap_ep_comm = true",
            ),
            (
                "dp = 8\ntp = 1\npp = 1\nep = 8",
                "dp = 4\ntp = 1\npp = 2\nep = 4",
            ),
        ])
        .expect_err("accepted");
        assert!(
            e.contains("training.overlap_ep_comm") && e.contains("virtual_stages >= 2"),
            "{e}"
        );
        let e = with(&[("pp = 1", "pp = 1\nvirtual_stages = 0")]).expect_err("accepted");
        assert!(
            e.contains("virtual_stages") && e.contains("positive"),
            "{e}"
        );
    }

    /// `[training.eval]` placed after `[training]`'s keys (its first key on line 25).
    fn eval(body: &str) -> Result<crate::scenario::Scenario, String> {
        with(&[(
            "\n[models.moe]",
            &format!("\n[training.eval]\n{body}\n\n[models.moe]"),
        )])
    }

    #[test]
    fn training_eval_reaches_the_training_settings() {
        let s = eval("every_steps = 500\nseqs = 2048").expect("valid");
        assert_eq!(
            s.training.eval,
            Some(crate::scenario::TrainingEval {
                every_steps: 500,
                seqs: 2048
            })
        );
        assert!(with(&[]).expect("valid").training.eval.is_none());
    }

    #[test]
    fn bad_training_eval_names_the_file_line_key_and_what_is_valid() {
        for (body, key, line) in [
            (
                "every_steps = 0\nseqs = 10",
                "training.eval.every_steps",
                25,
            ),
            ("every_steps = 10\nseqs = -3", "training.eval.seqs", 26),
        ] {
            let e = eval(body).expect_err("accepted");
            assert!(
                e.contains(&format!("s.toml:{line}")) && e.contains(key) && e.contains(">= 1"),
                "{e}"
            );
        }
        // A missing key and an unknown key are refused by name.
        let e = eval("every_steps = 10").expect_err("accepted");
        assert!(e.contains("seqs"), "{e}");
        let e = eval("every_steps = 10\nseqs = 5\nevery_seqs = 7").expect_err("accepted");
        assert!(e.contains("every_seqs") && e.contains("s.toml:27"), "{e}");
        let e = eval("every_steps = 1.5\nseqs = 5").expect_err("accepted");
        assert!(e.contains("every_steps") && e.contains("s.toml:25"), "{e}");
    }

    #[test]
    fn training_eval_is_refused_in_a_multi_region_job() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let text = std::fs::read_to_string(dir.join("follow_the_night.toml"))
            .unwrap()
            .replacen(
                "\n[models.moe]",
                "\n[training.eval]\nevery_steps = 100\nseqs = 64\n\n[models.moe]",
                1,
            );
        assert!(text.contains("[training.eval]"));
        let e = parse_scenario("f.toml", &text, &dir)
            .expect_err("accepted")
            .to_string();
        assert!(
            e.contains("f.toml:") && e.contains("training.eval") && e.contains("multi-region"),
            "{e}"
        );
    }

    /// `overlap_param_gather` reaches the schedule where the distributed optimizer gathers the
    /// parameters once per step (ZeRO 1/2); elsewhere, or as a non-boolean, it names the key.
    #[test]
    fn overlap_param_gather_needs_the_distributed_optimizer() {
        let on = (
            "recompute = false",
            "recompute = false\noverlap_param_gather = true",
        );
        let s = with(&[on]).expect("valid");
        assert!(
            s.dense
                .as_ref()
                .expect("dense")
                .schedule
                .overlap_param_gather
        );
        assert!(
            !with(&[])
                .expect("valid")
                .dense
                .expect("dense")
                .schedule
                .overlap_param_gather
        );
        for zero in ["zero_stage = 0", "zero_stage = 3"] {
            let e = with(&[on, ("zero_stage = 1", zero)]).expect_err("accepted");
            assert!(
                e.contains("training.overlap_param_gather") && e.contains("zero_stage = 1 or 2"),
                "{e}"
            );
        }
        let e = with(&[(
            "recompute = false",
            "recompute = false\noverlap_param_gather = 1",
        )])
        .expect_err("accepted");
        assert!(e.contains("true or false"), "{e}");
    }

    /// `fp8_amax_reduce` is Transformer Engine's: refused without FP8 or under the DeepSeek
    /// recipe (naming the key and the precision), and an unknown value lists the valid ones.
    #[test]
    fn fp8_amax_reduce_needs_transformer_engine_fp8() {
        let key = |v: &str| format!("recompute = false\nfp8_amax_reduce = \"{v}\"");
        let e = with(&[("recompute = false", key("tp_dp").as_str())]).expect_err("accepted");
        assert!(
            e.contains("training.fp8_amax_reduce") && e.contains("precision \"bf16\""),
            "{e}"
        );
        let fp8 = ("precision = \"bf16\"", "precision = \"fp8\"");
        let s = with(&[fp8, ("recompute = false", key("tp_async").as_str())]).expect("valid");
        assert_eq!(
            s.dense.expect("dense").fp8_amax_reduce,
            crate::workload::step_ops::Fp8AmaxReduce::TpAsync
        );
        let ds = format!("{}\nfp8_recipe = \"deepseek\"", key("tp_dp"));
        let e = with(&[fp8, ("recompute = false", ds.as_str())]).expect_err("accepted");
        assert!(
            e.contains("fp8_amax_reduce") && e.contains("deepseek"),
            "{e}"
        );
        let e = with(&[fp8, ("recompute = false", key("dp").as_str())]).expect_err("accepted");
        assert!(
            e.contains("tp_dp") && e.contains("tp_async") && e.contains("none"),
            "{e}"
        );
    }

    /// `fp8_scale_update` is Transformer Engine's: refused without FP8 or under the DeepSeek
    /// recipe, and an unknown value lists the valid ones.
    #[test]
    fn fp8_scale_update_needs_transformer_engine_fp8() {
        let key = |v: &str| format!("recompute = false\nfp8_scale_update = \"{v}\"");
        let e =
            with(&[("recompute = false", key("per_module_jit").as_str())]).expect_err("accepted");
        assert!(
            e.contains("training.fp8_scale_update") && e.contains("precision \"bf16\""),
            "{e}"
        );
        let fp8 = ("precision = \"bf16\"", "precision = \"fp8\"");
        let s = with(&[fp8, ("recompute = false", key("per_module").as_str())]).expect("valid");
        assert_eq!(
            s.dense.expect("dense").fp8_scale_update,
            crate::workload::step_ops::Fp8ScaleUpdate::PerModule
        );
        let ds = format!("{}\nfp8_recipe = \"deepseek\"", key("per_module"));
        let e = with(&[fp8, ("recompute = false", ds.as_str())]).expect_err("accepted");
        assert!(
            e.contains("fp8_scale_update") && e.contains("deepseek"),
            "{e}"
        );
        let e =
            with(&[fp8, ("recompute = false", key("per_layer").as_str())]).expect_err("accepted");
        assert!(
            e.contains("per_module_jit") && e.contains("per_module") && e.contains("fused"),
            "{e}"
        );
    }
}
