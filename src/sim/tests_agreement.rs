//! Honest agreement: the fast step model (`sim::step`) against the event-level step
//! (`sim::event_step`) on random plans — within 2 % where no two transfers share a port, and the
//! fast path's error by regime where they do.

use super::event_step::{event_step, Contention, EventStepInput};
use super::step::StepModel;
use crate::hardware::preset;
use crate::network::Fabric;
use crate::routing::PlacementPolicy;
use crate::scenario::{Cluster, Job, RoutingChoice};
use crate::workload::step_ops::{ExpertKernel, OptimizerKind, RouterKernel};
use crate::workload::{
    Arch, FfnKind, ModelSpec, MoeSpec, ParallelPlan, Precision, Recompute, Schedule,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Plans the property test draws (valid ones; invalid draws are redrawn).
const PLANS: usize = 240;

/// Plans of the combined-1F1B property test (all with `overlap_ep_comm` and ep > 1).
const COMBINED_PLANS: usize = 200;

/// Tolerance of the fast path where the event run has no link contention (issue 12, item 2).
const TOLERANCE: f64 = 0.02;

/// The fast path's shortcuts that the test reports instead of holding to the tolerance.
const APPROX: [&str; 3] = [
    "pipeline sends priced intra-node though a stage boundary crosses nodes",
    "ZeRO-3 prefetch windows of a stage with at most 2 layers",
    "pipeline stages holding different numbers of MoE layers (moe_every > 1)",
];

/// One random plan: the job, its cluster and one step's routing shares.
struct Case {
    job: Job,
    cluster: Cluster,
    shares: Vec<f64>,
    label: String,
    /// Runs Megatron-LM's combined 1F1B (`overlap_ep_comm` with all-to-alls).
    combined: bool,
    /// A shortcut of the fast path's closed forms the plan falls into (None: none).
    approx: Option<&'static str>,
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, xs: &[T]) -> T {
    xs[rng.gen_range(0..xs.len())]
}

/// Routing shares of `layers` MoE layers over `experts`: balanced, Zipf with exponent `s`
/// (hottest expert drawn per layer), or one hot expert taking `h` of the assignments.
fn shares(rng: &mut ChaCha8Rng, layers: usize, experts: usize) -> (Vec<f64>, String) {
    let kind = rng.gen_range(0..3);
    let s = rng.gen_range(0.3..2.0f64);
    let h = rng.gen_range(0.2..1.0f64);
    let mut v = Vec::with_capacity(layers * experts);
    for _ in 0..layers {
        let hot = rng.gen_range(0..experts);
        let row: Vec<f64> = (0..experts)
            .map(|e| {
                let rank = (e + experts - hot) % experts;
                match kind {
                    0 => 1.0,
                    1 => 1.0 / ((rank + 1) as f64).powf(s),
                    _ if rank == 0 => h,
                    _ => (1.0 - h) / (experts - 1).max(1) as f64,
                }
            })
            .collect();
        let sum: f64 = row.iter().sum();
        v.extend(row.iter().map(|x| x / sum));
    }
    let label = match kind {
        0 => "balanced".to_string(),
        1 => format!("zipf {s:.2}"),
        _ => format!("hot {h:.2}"),
    };
    (v, label)
}

/// Draw one valid plan (None: the draw broke a plan rule; draw again); `combined`: only MoE
/// plans with expert parallelism and `overlap_ep_comm` (Megatron-LM's combined 1F1B).
fn draw(rng: &mut ChaCha8Rng, combined: bool) -> Option<Case> {
    let moe = combined || rng.gen_bool(0.6);
    let layers = rng.gen_range(2..=6u32);
    let d_model = pick(rng, &[256u32, 512, 1024]);
    let experts = if moe { pick(rng, &[4u32, 8, 16]) } else { 0 };
    let (tp, dp, pp) = (
        pick(rng, &[1u32, 1, 2]),
        pick(rng, if combined { &[2u32, 4] } else { &[1u32, 2, 4] }),
        pick(rng, &[1u32, 2, 3, 4]),
    );
    let ep = if moe {
        pick(rng, if combined { &[2u32, 4] } else { &[1u32, 2, 4] }).min(dp)
    } else {
        1
    };
    let m = pick(rng, &[1u32, 2, 4, 8]);
    let model = ModelSpec {
        name: "agree".into(),
        layers,
        d_model,
        heads: 8,
        kv_heads: 8,
        seq_len: pick(rng, &[128u32, 512]),
        vocab: 2048,
        ffn_hidden: 4 * d_model,
        ffn: if moe {
            FfnKind::Moe(MoeSpec {
                experts,
                top_k: pick(rng, &[1u32, 2]),
                capacity_factor: pick(rng, &[None, None, Some(1.25)]),
                expert_ffn_hidden: 2 * d_model,
                shared_experts: 0,
                moe_every: pick(rng, &[1u32, 1, 2]),
            })
        } else {
            FfnKind::Dense
        },
        arch: Arch::default(),
    };
    let mbs = pick(rng, &[1u32, 2]);
    let plan = ParallelPlan {
        dp,
        tp,
        pp,
        ep,
        micro_batch_seqs: mbs,
        global_batch_seqs: mbs * dp * m,
        zero_stage: pick(
            rng,
            if combined {
                &[0u8, 1, 2]
            } else {
                &[0u8, 1, 2, 3]
            },
        ),
        recompute: pick(
            rng,
            if combined {
                &[Recompute::None, Recompute::Selective]
            } else {
                &[Recompute::None, Recompute::Selective, Recompute::Full]
            },
        ),
        precision: Precision::Bf16,
    };
    let schedule = Schedule {
        virtual_stages: if pp > 1 { pick(rng, &[1u32, 2]) } else { 1 },
        overlap_ep_comm: combined || (moe && rng.gen_bool(0.4)),
        overlap_grad_sync: rng.gen_bool(0.5),
    };
    let gpus = dp * tp * pp;
    let gpus_per_node = pick(rng, &[2u32, 4, 8]);
    let nodes = gpus.div_ceil(gpus_per_node);
    if (moe && (dp % ep != 0 || experts % ep != 0))
        || plan.validate(&model, gpus).is_err()
        || schedule.validate(&model, &plan).is_err()
    {
        return None;
    }
    let fabric = Fabric::from_presets("nvlink4", "ib-ndr", gpus_per_node, nodes).ok()?;
    let accelerator = preset("h100").ok()?;
    let cluster = Cluster {
        power_cap_w: accelerator.tdp_w,
        accelerator,
        gpus,
        gpus_per_node,
        fabric,
        pue: 1.0,
        release_nodes_when_paused: false,
        node_overhead_w: 0.0,
        weather_pue: None,
    };
    let (shares, routing) = if moe {
        shares(rng, model.moe_layers() as usize, experts as usize)
    } else {
        (Vec::new(), "dense".to_string())
    };
    let label = format!(
        "L{layers} d{d_model} E{experts} dp{dp} tp{tp} pp{pp} ep{ep} m{m} mbs{mbs} v{} \
         rc{:?} z{} ovl_ep{} ovl_dp{} gpn{gpus_per_node} {routing}",
        schedule.virtual_stages,
        plan.recompute,
        plan.zero_stage,
        schedule.overlap_ep_comm as u8,
        schedule.overlap_grad_sync as u8,
    );
    // Megatron-LM's combined 1F1B (both models run it): printed on its own too.
    let combined = schedule.combined_1f1b(&model, &plan);
    // Shortcuts of the fast path, told from the plan alone (never from the error):
    // * it prices every pipeline send at one price, the intra-node one when a node holds two
    //   neighbouring stages, though some stage boundaries may still cross a node;
    // * it hides each ZeRO-3 gather / reduce-scatter per layer window, without the backlog the
    //   event level's ZeRO-3 stream carries from one layer to the next, coarse when a stage
    //   holds one or two layers.
    let stride = tp * dp;
    let crosses = (0..pp.saturating_sub(1))
        .any(|s| s * stride / gpus_per_node != (s + 1) * stride / gpus_per_node);
    let min_layers = (0..pp)
        .map(|s| plan.stage_layers(layers, s).len())
        .min()
        .unwrap_or(0);
    // MoE layers per pipeline stage (over its model chunks when interleaved).
    let v = schedule.virtual_stages.max(1);
    let vplan = ParallelPlan {
        pp: pp * v,
        ..plan.clone()
    };
    let moe_in = |s: u32| {
        (0..v)
            .flat_map(|c| vplan.stage_layers(layers, c * pp + s))
            .filter(|&l| moe && model.is_moe_layer(l))
            .count()
    };
    let uneven_moe = pp > 1 && (1..pp).any(|s| moe_in(s) != moe_in(0));
    let approx = if crosses && gpus_per_node / stride >= 2 {
        Some(APPROX[0])
    } else if plan.zero_stage == 3 && dp > 1 && min_layers <= 2 {
        Some(APPROX[1])
    } else if uneven_moe {
        Some(APPROX[2])
    } else {
        None
    };
    Some(Case {
        combined,
        approx,
        job: Job {
            model,
            plan,
            expert_kernel: ExpertKernel::default(),
            router_kernel: RouterKernel::default(),
            optimizer: OptimizerKind::default(),
            sequence_parallel: true,
            attention_kernel: Default::default(),
            framework: Default::default(),
            fp8_recipe: Default::default(),
            schedule,
        },
        cluster,
        shares,
        label,
    })
}

/// Whether a plan's port sharing involves one kind of communication.
type Regime = fn(&Contention) -> bool;

/// One plan's two figures.
struct Compared {
    label: String,
    combined: bool,
    approx: Option<&'static str>,
    fast_s: f64,
    event_s: f64,
    fast_j: f64,
    event_j: f64,
    contention: Contention,
}

impl Compared {
    fn time_err(&self) -> f64 {
        self.fast_s / self.event_s - 1.0
    }
    fn energy_err(&self) -> f64 {
        self.fast_j / self.event_j - 1.0
    }
    fn worst(&self) -> f64 {
        self.time_err().abs().max(self.energy_err().abs())
    }
    fn show(&self) -> String {
        format!(
            "{}\n    time   fast {:.6e} s  event {:.6e} s  ({:+.2} %)\n    energy fast {:.6e} J  event {:.6e} J  ({:+.2} %)\n    {:?}",
            self.label,
            self.fast_s,
            self.event_s,
            100.0 * self.time_err(),
            self.fast_j,
            self.event_j,
            100.0 * self.energy_err(),
            self.contention
        )
    }
}

fn compare(c: &Case) -> Compared {
    let mut fast = StepModel::new(&c.job, &c.cluster).expect("a validated plan builds");
    let knobs = fast.full_knobs();
    if !c.shares.is_empty() {
        fast.set_routing(
            RoutingChoice::TokenChoice,
            PlacementPolicy::Contiguous,
            None,
            &c.shares,
        );
    }
    let f = fast.step(&c.shares, knobs);
    let input = EventStepInput::from_job(&c.job, &c.cluster);
    let e = event_step(&input, &c.shares, knobs, false)
        .unwrap_or_else(|err| panic!("{}: {err}", c.label));
    Compared {
        label: c.label.clone(),
        combined: c.combined,
        approx: c.approx,
        fast_s: f.time_s,
        event_s: e.time_s,
        fast_j: f.gpu_energy_j,
        event_j: e.gpu_energy_j,
        contention: e.contention,
    }
}

/// `n` plans drawn from a fixed seed (`combined`: see [`draw`]).
fn plans(seed: u64, n: usize, combined: bool) -> Vec<Case> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        if let Some(c) = draw(&mut rng, combined) {
            v.push(c);
        }
    }
    v
}

/// Mean and largest signed time error of the fast path over `rows` [%].
fn summary(rows: &[&Compared]) -> String {
    if rows.is_empty() {
        return "none".into();
    }
    let n = rows.len() as f64;
    let mean_t = rows.iter().map(|r| r.time_err()).sum::<f64>() / n;
    let min_t = rows
        .iter()
        .map(|r| r.time_err())
        .fold(f64::INFINITY, f64::min);
    let max_t = rows
        .iter()
        .map(|r| r.time_err())
        .fold(f64::NEG_INFINITY, f64::max);
    let mean_e = rows.iter().map(|r| r.energy_err()).sum::<f64>() / n;
    format!(
        "{} plans; time fast/event - 1: mean {:+.1} %, range [{:+.1} %, {:+.1} %]; energy mean {:+.1} %",
        rows.len(),
        100.0 * mean_t,
        100.0 * min_t,
        100.0 * max_t,
        100.0 * mean_e
    )
}

#[test]
fn fast_path_agrees_with_the_event_level_where_no_link_is_shared() {
    // Why: the fast path prices the same op list with closed forms; where no two transfers
    // meet on a port, those forms claim to be exact up to rounding, so any larger gap is a bug
    // or a missing piece of physics in one of the two models.
    let rows: Vec<Compared> = plans(0x5eed_a9ee, PLANS, false)
        .iter()
        .map(compare)
        .collect();
    let (exact, shortcut): (Vec<&Compared>, Vec<&Compared>) =
        rows.iter().partition(|r| r.approx.is_none());
    let (free, contended): (Vec<&Compared>, Vec<&Compared>) = exact
        .iter()
        .copied()
        .partition(|r| r.contention.total() == 0);
    let worst = free
        .iter()
        .max_by(|a, b| a.worst().total_cmp(&b.worst()))
        .expect("some plans have no contention");
    println!(
        "agreement: {} plans; {} use a shortcut of the fast path; of the rest {} without link contention, {} contended",
        rows.len(),
        shortcut.len(),
        free.len(),
        contended.len()
    );
    for what in APPROX {
        let sel: Vec<&Compared> = shortcut
            .iter()
            .copied()
            .filter(|r| r.approx == Some(what))
            .collect();
        println!("fast-path shortcut, {what}: {}", summary(&sel));
        if let Some(w) = sel.iter().max_by(|a, b| a.worst().total_cmp(&b.worst())) {
            println!("  worst: {}", w.show());
        }
    }
    let comb: Vec<&Compared> = free.iter().copied().filter(|r| r.combined).collect();
    println!(
        "combined 1F1B (overlap_ep_comm), no contention: {}",
        summary(&comb)
    );
    if let Some(w) = comb.iter().max_by(|a, b| a.worst().total_cmp(&b.worst())) {
        println!("  worst: {}", w.show());
    }
    let comb_c: Vec<&Compared> = contended.iter().copied().filter(|r| r.combined).collect();
    println!(
        "combined 1F1B (overlap_ep_comm), contended: {}",
        summary(&comb_c)
    );
    println!("worst without contention:\n  {}", worst.show());
    println!("without contention: {}", summary(&free));
    // Contended plans by the kind of communication that met another on a port.
    let regimes: [(&str, Regime); 3] = [
        ("all-to-all shares a port", |c| c.all_to_all > 0),
        ("gradient sync shares a port", |c| c.grad_sync > 0),
        ("pipeline p2p shares a port", |c| c.p2p > 0),
    ];
    for (name, f) in regimes {
        let sel: Vec<&Compared> = contended
            .iter()
            .copied()
            .filter(|r| f(&r.contention))
            .collect();
        println!("contended, {name}: {}", summary(&sel));
        if let Some(w) = sel.iter().max_by(|a, b| a.worst().total_cmp(&b.worst())) {
            println!("  worst: {}", w.show());
        }
    }
    let bad: Vec<String> = free
        .iter()
        .filter(|r| r.worst() > TOLERANCE)
        .map(|r| r.show())
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {} uncontended plans disagree by more than {} %:\n  {}",
        bad.len(),
        free.len(),
        100.0 * TOLERANCE,
        bad.join("\n  ")
    );
    assert!(
        free.len() >= PLANS / 5,
        "only {} of {} plans are free of contention: the draw no longer tests agreement",
        free.len(),
        PLANS
    );
}

#[test]
fn combined_1f1b_agrees_with_the_event_level_where_no_link_is_shared() {
    // Why: with `overlap_ep_comm` both models run Megatron-LM's combined 1F1B (one more warm-up
    // forward, each steady-state forward merged with a backward, all-to-alls on their own
    // stream); the fast path times a combined pass on two streams at the slowest rank, the
    // event level op by op on every rank, so without port sharing they must agree.
    let rows: Vec<Compared> = plans(0xc0b1_1f1b, COMBINED_PLANS, true)
        .iter()
        .map(compare)
        .collect();
    assert!(rows.iter().all(|r| r.combined));
    let (exact, shortcut): (Vec<&Compared>, Vec<&Compared>) =
        rows.iter().partition(|r| r.approx.is_none());
    let (free, contended): (Vec<&Compared>, Vec<&Compared>) = exact
        .iter()
        .copied()
        .partition(|r| r.contention.total() == 0);
    println!(
        "combined 1F1B: {} plans; {} use a shortcut of the fast path; of the rest {} without link contention, {} contended",
        rows.len(),
        shortcut.len(),
        free.len(),
        contended.len()
    );
    println!("without contention: {}", summary(&free));
    let worst = free
        .iter()
        .max_by(|a, b| a.worst().total_cmp(&b.worst()))
        .expect("some plans have no contention");
    println!("  worst: {}", worst.show());
    for (name, sel) in [("contended", &contended), ("shortcut", &shortcut)] {
        println!("{name}: {}", summary(sel));
        if let Some(w) = sel.iter().max_by(|a, b| a.worst().total_cmp(&b.worst())) {
            println!("  worst: {}", w.show());
        }
    }
    // Pipelined plans are in the draw, not only pp = 1.
    assert!(free
        .iter()
        .any(|r| r.label.contains(" pp2 ") || r.label.contains(" pp4 ")));
    let bad: Vec<String> = free
        .iter()
        .filter(|r| r.worst() > TOLERANCE)
        .map(|r| r.show())
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {} uncontended combined plans disagree by more than {} %:\n  {}",
        bad.len(),
        free.len(),
        100.0 * TOLERANCE,
        bad.join("\n  ")
    );
    assert!(
        free.len() >= COMBINED_PLANS / 5,
        "only {} of {} combined plans are free of contention",
        free.len(),
        COMBINED_PLANS
    );
}
