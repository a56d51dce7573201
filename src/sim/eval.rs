//! Evaluation passes inside a timed training region (`[validation.eval]` of MLPerf cases, `[training.eval]` of any run): every so many training steps a forward-only pipeline pass over the evaluation set.
//!
//! MLPerf Training times `run_start` → `run_stop`, and the evaluations run inside it: NVIDIA's
//! GPT-3 175B logs (github.com/mlcommons/training_results_v3.1, `NVIDIA/results/
//! eos-dfw_n1344_ngc23.09_nemo/gpt3/result_0.txt`, MLLOG `eval_start`/`eval_stop`) spend 22 × 1.06 s
//! of the 235 s run evaluating (10 %). NeMo evaluates every `val_check_interval =
//! ceil(24576 / GBS)` steps over the whole validation set (`limit_val_batches: 1.0`), the last
//! batch padded to the global batch (`pad_samples_to_global_batch_size: True`,
//! `validation_drop_last: False`; `NVIDIA/benchmarks/gpt3/implementations/pytorch/conf/custom.yaml`
//! lines 17, 20, 114-115 of that repository). Each validation batch is one forward-only pass of
//! the pipeline: no backward, no gradient sync, no optimizer.

use super::step::StepModel;
use crate::scenario::{Cluster, Job};
use crate::workload::WorkloadError;

/// How often a run evaluates and over how much data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalSchedule {
    /// Training sequences between two evaluations [sequences]; rounded up to whole optimizer
    /// steps as NeMo's `val_check_interval = ceil(every / global batch)`.
    pub every_seqs: u64,
    /// Sequences in the evaluation set [sequences]; evaluated in whole global batches.
    pub eval_seqs: u64,
}

/// The evaluations of a training run and what they cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalCost {
    /// Optimizer steps between two evaluations.
    pub steps_between: u64,
    /// Evaluations in the run (one after every `steps_between` steps).
    pub evaluations: u64,
    /// Global batches of one evaluation (the last one padded).
    pub batches_per_eval: u64,
    /// Wall-clock time of one evaluation [s].
    pub eval_s: f64,
    /// Wall-clock time of all evaluations of the run [s].
    pub total_s: f64,
}

/// The evaluations of `train_steps` optimizer steps of `job` on `cluster` under `schedule`:
/// each a forward-only pass of the global batches covering the evaluation set, the forward of
/// each pipeline stage priced as in the training step (`StepModel`, full-speed knobs, uniform
/// routing for an MoE). Errors if the job's batch does not split into micro-batches.
pub fn eval_cost(
    job: &Job,
    cluster: &Cluster,
    schedule: EvalSchedule,
    train_steps: u64,
) -> Result<EvalCost, WorkloadError> {
    let pass = forward_pass(job, cluster)?;
    let batch = u64::from(job.plan.global_batch_seqs.max(1));
    let steps_between = schedule.every_seqs.max(1).div_ceil(batch);
    let batches_per_eval = schedule.eval_seqs.div_ceil(batch);
    let eval_s = batches_per_eval as f64 * pass.time_s;
    let evaluations = train_steps / steps_between;
    Ok(EvalCost {
        steps_between,
        evaluations,
        batches_per_eval,
        eval_s,
        total_s: evaluations as f64 * eval_s,
    })
}

/// One forward-only pass of a global batch through the job's pipeline, priced from one training
/// step of `StepModel` (full-speed knobs, uniform routing for an MoE).
#[derive(Debug, Clone, Copy, PartialEq)]
struct ForwardPass {
    /// Wall-clock time of the pass [s].
    time_s: f64,
    /// GPU power of all the job's GPUs during the pass [W], and the part drawn waiting [W].
    gpu_w: f64,
    waiting_w: f64,
}

fn forward_pass(job: &Job, cluster: &Cluster) -> Result<ForwardPass, WorkloadError> {
    // Transformer Engine updates its amax history and scales only in training mode
    // (`prepare_forward`: `self.fp8 and self.training`): none in the evaluation's forward.
    let job = &Job {
        fp8_scale_update: crate::workload::step_ops::Fp8ScaleUpdate::Fused,
        // Nor does it reduce amaxes: `prepare_forward` sets up the reduction only when training.
        fp8_amax_reduce: crate::workload::step_ops::Fp8AmaxReduce::None,
        ..job.clone()
    };
    let mut model = StepModel::new(job, cluster)?;
    let knobs = model.full_knobs();
    let e = model.experts();
    let shares = vec![1.0 / e.max(1) as f64; model.moe_layers() * e];
    let c = model.step(&shares, knobs);
    let (_, p2p_s) = model.sync_times(knobs);
    let (fwd, _) = model.last_stage_times();
    let time_s = forward_only_s(fwd, knobs.micro_batches, job.schedule.virtual_stages, p2p_s);
    // The pass draws what the training step's forward/backward phases draw (their compute and
    // their exposed communication, bubbles included): a forward-only pipeline runs the same
    // kernels with the same kind of fill and drain; it has no gradient sync, optimizer or
    // migration, whose spin power would understate it.
    let (busy_s, busy_j) = (
        c.phases.time_s[0] + c.phases.time_s[1],
        c.phases.gpu_j[0] + c.phases.gpu_j[1],
    );
    let (gpu_w, waiting_w) = if busy_s > 0.0 {
        (busy_j / busy_s, c.phases.gpu_j[1] / busy_s)
    } else if c.time_s > 0.0 {
        (c.gpu_energy_j / c.time_s, c.waiting_energy_j / c.time_s)
    } else {
        (0.0, 0.0)
    };
    Ok(ForwardPass {
        time_s,
        gpu_w,
        waiting_w,
    })
}

/// The evaluations of an ordinary run (`[training.eval]`) as the run charges them: one after
/// every `every_steps` optimizer steps, each this long at this power.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunEval {
    /// Optimizer steps between two evaluations [steps].
    pub every_steps: u64,
    /// Wall-clock time of one evaluation [s]: the forward-only passes of the global batches
    /// covering the evaluation set (the last one padded).
    pub eval_s: f64,
    /// GPU power of all the job's GPUs while evaluating [W].
    pub gpu_w: f64,
    /// Part of `gpu_w` drawn waiting (exposed communication, bubbles at spin power) [W].
    pub waiting_w: f64,
}

/// The evaluations `spec` asks of `job` on `cluster`, priced as [`eval_cost`] prices MLPerf's:
/// `spec.seqs` sequences in whole global batches, each a forward-only pipeline pass.
pub fn run_eval(
    job: &Job,
    cluster: &Cluster,
    spec: crate::scenario::TrainingEval,
) -> Result<RunEval, WorkloadError> {
    let pass = forward_pass(job, cluster)?;
    let batch = u64::from(job.plan.global_batch_seqs.max(1));
    Ok(RunEval {
        every_steps: spec.every_steps.max(1),
        eval_s: spec.seqs.div_ceil(batch) as f64 * pass.time_s,
        gpu_w: pass.gpu_w,
        waiting_w: pass.waiting_w,
    })
}

/// Makespan of one forward-only pass of `m` micro-batches through a pipeline [s]: `fwd[s]` is
/// stage `s`'s forward of one micro-batch (all its model chunks), split evenly over its `v`
/// chunks. Every stage runs its forwards back to back in Megatron-LM's order (forward-only
/// schedules run every pass as a warm-up forward: `get_forward_backward_func` with
/// `forward_only=True`; interleaved, micro-batches in groups of `p` through chunk 0, then
/// chunk 1, ...); a forward starts when its stage is free and its input has arrived from the
/// previous stage (stage 0's chunk `c` from the last stage's chunk `c - 1`), `p2p_s` later.
/// One stage: `m` forwards end to end.
pub fn forward_only_s(fwd: &[f64], m: u32, v: u32, p2p_s: f64) -> f64 {
    let p = fwd.len();
    let (m, v) = (m.max(1) as usize, v.max(1) as usize);
    if p == 0 {
        return 0.0;
    }
    // ends[(s * v + c) * m + mb]: when stage s finished chunk c of micro-batch mb.
    let mut ends = vec![f64::NAN; p * v * m];
    let mut free = vec![0.0f64; p];
    // Passes in a global order that respects every dependency: group by group, chunk by chunk,
    // stage by stage (a pass only waits on passes of an earlier chunk or an earlier stage).
    let mut g0 = 0;
    while g0 < m {
        let g1 = (g0 + p).min(m);
        for c in 0..v {
            for s in 0..p {
                let t = fwd[s] / v as f64;
                for mb in g0..g1 {
                    let ready = if s > 0 {
                        ends[((s - 1) * v + c) * m + mb] + p2p_s
                    } else if c > 0 {
                        ends[((p - 1) * v + c - 1) * m + mb] + p2p_s
                    } else {
                        0.0
                    };
                    let end = free[s].max(ready) + t;
                    ends[(s * v + c) * m + mb] = end;
                    free[s] = end;
                }
            }
        }
        g0 = g1;
    }
    free.iter().copied().fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{parse_scenario, Scenario};
    use std::path::Path;

    fn case(name: &str) -> Scenario {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/validation");
        let text = std::fs::read_to_string(dir.join(name)).expect("case file");
        parse_scenario(name, &text, &dir).expect("valid case")
    }

    /// MLPerf GPT-3: an evaluation every ceil(24576 / GBS) steps over 5662 sequences in whole
    /// global batches, as the NVIDIA logs show (v3.1: 22 evaluations in 220 steps, 3 batches of
    /// 2688; v4.0: 23 in 207, 2 batches of 2904); a forward-only pass of a global batch takes
    /// less than a training step and more than a fifth of one.
    #[test]
    fn mlperf_evaluations_follow_the_logged_cadence() {
        let schedule = EvalSchedule {
            every_seqs: 24576,
            eval_seqs: 5662,
        };
        for (file, steps, want) in [
            ("mlperf_gpt3_v3_1.toml", 220, (10, 22, 3)),
            ("mlperf_gpt3_v4_0.toml", 207, (9, 23, 2)),
        ] {
            let s = case(file);
            let job = s.dense.as_ref().expect("dense job");
            let c = eval_cost(job, &s.cluster, schedule, steps).expect("op list");
            assert_eq!(
                (c.steps_between, c.evaluations, c.batches_per_eval),
                want,
                "{file}"
            );
            let mut m = StepModel::new(job, &s.cluster).expect("op list");
            let step_s = m.step(&[], m.full_knobs()).time_s;
            let pass_s = c.eval_s / c.batches_per_eval as f64;
            assert!(
                pass_s < step_s && pass_s > 0.2 * step_s,
                "{file}: {pass_s} vs {step_s}"
            );
            assert!((c.total_s - c.evaluations as f64 * c.eval_s).abs() < 1e-9);
        }
    }

    #[test]
    fn one_stage_runs_its_forwards_end_to_end() {
        assert!((forward_only_s(&[2.0], 5, 1, 9.0) - 10.0).abs() < 1e-12);
        assert_eq!(forward_only_s(&[], 5, 1, 0.0), 0.0);
    }

    #[test]
    fn plain_pipeline_fills_then_runs_at_the_stage_rate() {
        // p equal stages: (m + p - 1) forwards plus p - 1 hops of the first micro-batch.
        let (p, m, t, h) = (4usize, 8u32, 1.0, 0.1);
        let want = (m as f64 + p as f64 - 1.0) * t + (p as f64 - 1.0) * h;
        assert!((forward_only_s(&vec![t; p], m, 1, h) - want).abs() < 1e-9);
        // The slowest stage paces the micro-batches.
        let got = forward_only_s(&[1.0, 3.0, 1.0], 6, 1, 0.0);
        assert!((got - (1.0 + 6.0 * 3.0 + 1.0)).abs() < 1e-9, "{got}");
    }

    #[test]
    fn interleaving_shrinks_the_fill_by_the_chunks() {
        // Narayanan et al. 2021 Sec. 2.2.2: the bubble shrinks v-fold. Forward only, equal
        // stages, m a multiple of p, free sends: (m·v + p - 1) chunk forwards.
        let (p, m, v, t) = (4usize, 8u32, 3u32, 1.2);
        let want = (m as f64 * v as f64 + p as f64 - 1.0) * t / v as f64;
        let got = forward_only_s(&vec![t; p], m, v, 0.0);
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        assert!(got < forward_only_s(&vec![t; p], m, 1, 0.0));
        // Sends cost time on the chunk boundaries.
        assert!(forward_only_s(&vec![t; p], m, v, 0.01) > got);
    }
}
