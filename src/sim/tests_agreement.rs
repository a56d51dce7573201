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

/// Tolerance of the fast path where the event run has no link contention (issue 12, item 2).
const TOLERANCE: f64 = 0.02;

/// The fast path's shortcuts that the test reports instead of holding to the tolerance.
const APPROX: [&str; 2] = [
    "pipeline sends priced intra-node though a stage boundary crosses nodes",
    "ZeRO-3 prefetch windows of a stage with at most 2 layers",
];

/// One random plan: the job, its cluster and one step's routing shares.
struct Case {
    job: Job,
    cluster: Cluster,
    shares: Vec<f64>,
    label: String,
    /// What of the plan the event level does not model yet (None: both model all of it).
    lacks: Option<&'static str>,
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

/// Draw one valid plan (None: the draw broke a plan rule; draw again).
fn draw(rng: &mut ChaCha8Rng) -> Option<Case> {
    let moe = rng.gen_bool(0.6);
    let layers = rng.gen_range(2..=6u32);
    let d_model = pick(rng, &[256u32, 512, 1024]);
    let experts = if moe { pick(rng, &[4u32, 8, 16]) } else { 0 };
    let (tp, dp, pp) = (
        pick(rng, &[1u32, 1, 2]),
        pick(rng, &[1u32, 2, 4]),
        pick(rng, &[1u32, 2, 3, 4]),
    );
    let ep = if moe {
        pick(rng, &[1u32, 2, 4]).min(dp)
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
        zero_stage: pick(rng, &[0u8, 1, 2, 3]),
        recompute: pick(
            rng,
            &[Recompute::None, Recompute::Selective, Recompute::Full],
        ),
        precision: Precision::Bf16,
    };
    let schedule = Schedule {
        virtual_stages: if pp > 1 { pick(rng, &[1u32, 2]) } else { 1 },
        overlap_ep_comm: moe && rng.gen_bool(0.4),
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
    // Framework features the fast path prices and the event level does not simulate yet
    // (issue 12, item 1): such plans are measured and printed, not held to the tolerance.
    let lacks = if schedule.overlap_ep_comm {
        Some("overlap_ep_comm")
    } else {
        None
    };
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
    let approx = if crosses && gpus_per_node / stride >= 2 {
        Some(APPROX[0])
    } else if plan.zero_stage == 3 && dp > 1 && min_layers <= 2 {
        Some(APPROX[1])
    } else {
        None
    };
    Some(Case {
        lacks,
        approx,
        job: Job {
            model,
            plan,
            expert_kernel: ExpertKernel::default(),
            router_kernel: RouterKernel::default(),
            optimizer: OptimizerKind::default(),
            sequence_parallel: true,
            attention_kernel: Default::default(),
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
    lacks: Option<&'static str>,
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
        lacks: c.lacks,
        approx: c.approx,
        fast_s: f.time_s,
        event_s: e.time_s,
        fast_j: f.gpu_energy_j,
        event_j: e.gpu_energy_j,
        contention: e.contention,
    }
}

/// Plans drawn from a fixed seed.
fn plans() -> Vec<Case> {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_a9ee);
    let mut v = Vec::with_capacity(PLANS);
    while v.len() < PLANS {
        if let Some(c) = draw(&mut rng) {
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
    let rows: Vec<Compared> = plans().iter().map(compare).collect();
    let (modelled, lacking): (Vec<&Compared>, Vec<&Compared>) =
        rows.iter().partition(|r| r.lacks.is_none());
    let (exact, shortcut): (Vec<&Compared>, Vec<&Compared>) =
        modelled.iter().copied().partition(|r| r.approx.is_none());
    let (free, contended): (Vec<&Compared>, Vec<&Compared>) = exact
        .iter()
        .copied()
        .partition(|r| r.contention.total() == 0);
    let worst = free
        .iter()
        .max_by(|a, b| a.worst().total_cmp(&b.worst()))
        .expect("some plans have no contention");
    println!(
        "agreement: {} plans; {} use a feature the event level lacks; {} a shortcut of the fast path; of the rest {} without link contention, {} contended",
        rows.len(),
        lacking.len(),
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
    // Every lacking plan lacks `overlap_ep_comm` (the one feature `draw` marks).
    println!("event level lacks overlap_ep_comm: {}", summary(&lacking));
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
