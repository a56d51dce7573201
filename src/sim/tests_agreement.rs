//! Honest agreement: the fast step model (`sim::step`) against the event-level step
//! (`sim::event_step`) on random plans — within 2 % where no two transfers share a port, and the
//! fast path's error by regime where they do.

use super::event_step::{event_step, Contention, EventStepInput};
use super::step::StepModel;
use super::test_setup::job_of;
use crate::hardware::preset;
use crate::network::Fabric;
use crate::routing::PlacementPolicy;
use crate::scenario::{Cluster, Job, RoutingChoice};
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

/// Plan families printed on their own (each held to the tolerance with the rest): once the
/// fast path's shortcuts, now priced as the event level runs them.
const FAMILIES: [&str; 2] = [
    // Every pipeline send was priced at one price, the intra-node one when a node held two
    // neighbouring stages (up to 1.9 % optimistic); now each stage boundary by where its two
    // stages sit.
    "a stage boundary crosses nodes though a node holds two neighbouring stages",
    // Each ZeRO-3 gather / reduce-scatter was hidden within one layer's window (-3.0 % to
    // +6.3 %); now on the stage's ZeRO-3 stream with its backlog and bubble prefetch.
    "ZeRO-3 with dp > 1 (per-stage gather / reduce-scatter stream)",
];

/// One random plan: the job, its cluster and one step's routing shares.
struct Case {
    job: Job,
    cluster: Cluster,
    shares: Vec<f64>,
    label: String,
    /// Runs Megatron-LM's combined 1F1B (`overlap_ep_comm` with all-to-alls).
    combined: bool,
    /// A plan family printed on its own ([`FAMILIES`]; None: none).
    family: Option<&'static str>,
    /// Its pipeline stages hold different numbers of MoE layers (`moe_every`, first dense layers).
    uneven_moe: bool,
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

/// The choices that make one plan (what [`draw`] picks at random; named tests set them).
#[derive(Clone, Debug)]
struct Spec {
    layers: u32,
    d_model: u32,
    /// Experts per MoE layer (0: a dense model).
    experts: u32,
    tp: u32,
    dp: u32,
    pp: u32,
    ep: u32,
    /// Micro-batches per step.
    m: u32,
    seq_len: u32,
    top_k: u32,
    capacity_factor: Option<f64>,
    moe_every: u32,
    first_dense: u32,
    mbs: u32,
    zero: u8,
    recompute: Recompute,
    v: u32,
    ovl_ep: bool,
    ovl_dp: bool,
    gpn: u32,
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
    let spec = Spec {
        layers,
        d_model,
        experts,
        tp,
        dp,
        pp,
        ep,
        m,
        seq_len: pick(rng, &[128u32, 512]),
        top_k: pick(rng, &[1u32, 2]),
        capacity_factor: pick(rng, &[None, None, Some(1.25)]),
        // Stages holding different numbers of MoE layers: every other layer MoE, or the
        // first layer dense (DeepSeek's `first_k_dense_replace`).
        moe_every: pick(rng, &[1u32, 1, 2]),
        first_dense: pick(rng, &[0u32, 0, 1]),
        mbs: pick(rng, &[1u32, 2]),
        zero: pick(
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
        v: if pp > 1 { pick(rng, &[1u32, 2]) } else { 1 },
        ovl_ep: combined || (moe && rng.gen_bool(0.4)),
        ovl_dp: rng.gen_bool(0.5),
        gpn: pick(rng, &[2u32, 4, 8]),
    };
    let mut case = build(&spec, None)?;
    if moe {
        let (sh, routing) = shares(rng, case.job.model.moe_layers() as usize, experts as usize);
        case.shares = sh;
        case.label = format!("{} {routing}", case.label.trim_end_matches(" balanced"));
    }
    Some(case)
}

/// The plan of `spec` (None: it breaks a plan rule), routed as `routing` (None: balanced; the
/// caller may replace the shares).
fn build(spec: &Spec, routing: Option<(Vec<f64>, String)>) -> Option<Case> {
    let Spec {
        layers,
        d_model,
        experts,
        tp,
        dp,
        pp,
        ep,
        m,
        mbs,
        ..
    } = *spec;
    let moe = experts > 0;
    let model = ModelSpec {
        name: "agree".into(),
        layers,
        d_model,
        heads: 8,
        kv_heads: 8,
        seq_len: spec.seq_len,
        vocab: 2048,
        ffn_hidden: 4 * d_model,
        ffn: if moe {
            FfnKind::Moe(MoeSpec {
                experts,
                top_k: spec.top_k,
                capacity_factor: spec.capacity_factor,
                expert_ffn_hidden: 2 * d_model,
                shared_experts: 0,
                moe_every: spec.moe_every,
            })
        } else {
            FfnKind::Dense
        },
        arch: Arch {
            first_dense_layers: if moe { spec.first_dense } else { 0 },
            ..Arch::default()
        },
    };
    let plan = ParallelPlan {
        dp,
        tp,
        pp,
        ep,
        micro_batch_seqs: mbs,
        global_batch_seqs: mbs * dp * m,
        zero_stage: spec.zero,
        recompute: spec.recompute,
        precision: Precision::Bf16,
    };
    let schedule = Schedule {
        virtual_stages: spec.v,
        overlap_ep_comm: spec.ovl_ep,
        overlap_grad_sync: spec.ovl_dp,
        ..Schedule::default()
    };
    let gpus = dp * tp * pp;
    let gpus_per_node = spec.gpn;
    let nodes = gpus.div_ceil(gpus_per_node);
    if (moe && (dp % ep != 0 || experts % ep != 0))
        || model.validate().is_err()
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
    let (shares, routing) = match routing {
        Some(r) => r,
        None if moe => {
            let n = model.moe_layers() as usize * experts as usize;
            (vec![1.0 / f64::from(experts); n], "balanced".to_string())
        }
        None => (Vec::new(), "dense".to_string()),
    };
    let label = format!(
        "L{layers} d{d_model} E{experts} every{} fd{} dp{dp} tp{tp} pp{pp} ep{ep} m{m} mbs{mbs} v{} \
         rc{:?} z{} ovl_ep{} ovl_dp{} gpn{gpus_per_node} {routing}",
        spec.moe_every,
        model.arch.first_dense_layers,
        schedule.virtual_stages,
        plan.recompute,
        plan.zero_stage,
        schedule.overlap_ep_comm as u8,
        schedule.overlap_grad_sync as u8,
    );
    // Megatron-LM's combined 1F1B (both models run it): printed on its own too.
    let combined = schedule.combined_1f1b(&model, &plan);
    // Families told from the plan alone (never from the error): sends that price differently
    // per stage boundary (some inside a node, some across), and the ZeRO-3 stream.
    let stride = tp * dp;
    let crosses = (0..pp.saturating_sub(1))
        .any(|s| s * stride / gpus_per_node != (s + 1) * stride / gpus_per_node);
    let family = if crosses && gpus_per_node / stride >= 2 {
        Some(FAMILIES[0])
    } else if plan.zero_stage == 3 && dp > 1 {
        Some(FAMILIES[1])
    } else {
        None
    };
    Some(Case {
        combined,
        family,
        uneven_moe: uneven_moe(&model, &plan, schedule.virtual_stages),
        job: job_of(model, plan, schedule),
        cluster,
        shares,
        label,
    })
}

/// Whether the pipeline stages of `plan` (over their `v` model chunks) hold different numbers
/// of MoE layers.
fn uneven_moe(model: &ModelSpec, plan: &ParallelPlan, v: u32) -> bool {
    let (pp, v) = (plan.pp, v.max(1));
    let vplan = ParallelPlan {
        pp: pp * v,
        ..plan.clone()
    };
    let moe_in = |s: u32| {
        (0..v)
            .flat_map(|c| vplan.stage_layers(model.layers, c * pp + s))
            .filter(|&l| model.is_moe_layer(l))
            .count()
    };
    pp > 1 && (1..pp).any(|s| moe_in(s) != moe_in(0))
}

/// Whether a plan's port sharing involves one kind of communication.
type Regime = fn(&Contention) -> bool;

/// One plan's two figures.
struct Compared {
    label: String,
    combined: bool,
    family: Option<&'static str>,
    uneven_moe: bool,
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
    let mut input = EventStepInput::from_job(&c.job, &c.cluster);
    input.pad_spread = fast.pad_spread().to_vec();
    let e = event_step(&input, &c.shares, knobs, false)
        .unwrap_or_else(|err| panic!("{}: {err}", c.label));
    Compared {
        label: c.label.clone(),
        combined: c.combined,
        family: c.family,
        uneven_moe: c.uneven_moe,
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

/// `rows` split into those that met no other transfer on a port and the contended rest.
fn by_contention(rows: &[Compared]) -> (Vec<&Compared>, Vec<&Compared>) {
    rows.iter().partition(|r| r.contention.total() == 0)
}

/// The row of `rows` whose two levels disagree most (None: no rows).
fn worst_of<'a>(rows: &[&'a Compared]) -> Option<&'a Compared> {
    rows.iter()
        .copied()
        .max_by(|a, b| a.worst().total_cmp(&b.worst()))
}

/// Print `label: ` and the summary of `rows`, then their worst row.
fn print_rows(label: &str, rows: &[&Compared]) {
    println!("{label}: {}", summary(rows));
    if let Some(w) = worst_of(rows) {
        println!("  worst: {}", w.show());
    }
}

/// Every uncontended row of `n` drawn `what` within `TOLERANCE`, and at least a fifth of them
/// uncontended (fewer and the draw no longer tests agreement).
fn assert_free_within(free: &[&Compared], n: usize, what: &str) {
    let bad: Vec<String> = free
        .iter()
        .filter(|r| r.worst() > TOLERANCE)
        .map(|r| r.show())
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {} uncontended {what} disagree by more than {} %:\n  {}",
        bad.len(),
        free.len(),
        100.0 * TOLERANCE,
        bad.join("\n  ")
    );
    assert!(
        free.len() >= n / 5,
        "only {} of {} {what} are free of contention: the draw no longer tests agreement",
        free.len(),
        n
    );
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

/// Print each plan family ([`FAMILIES`]) with and without contention, and its worst plans.
fn print_families(free: &[&Compared], contended: &[&Compared]) {
    for what in FAMILIES {
        for (kind, rows) in [("no contention", free), ("contended", contended)] {
            let sel: Vec<&Compared> = rows
                .iter()
                .copied()
                .filter(|r| r.family == Some(what))
                .collect();
            print_rows(&format!("{what}, {kind}"), &sel);
        }
    }
}

/// Print the uncontended plans whose stages hold different numbers of MoE layers, and the
/// worst of them (they are held to the same tolerance as the rest).
fn print_uneven(free: &[&Compared]) {
    let sel: Vec<&Compared> = free.iter().copied().filter(|r| r.uneven_moe).collect();
    print_rows(
        "stages holding different numbers of MoE layers, no contention",
        &sel,
    );
}

/// A plan of two pipeline stages of three layers each, MoE in every other layer (layers 1, 3
/// and 5: one in stage 0, two in stage 1), d_model 1024, 16 experts, dp 4, bf16, H100s, a node per stage.
fn two_stage_every_other(m: u32, ovl_dp: bool, ep: u32) -> Spec {
    Spec {
        layers: 6,
        d_model: 1024,
        experts: 16,
        tp: 1,
        dp: 4,
        pp: 2,
        ep,
        m,
        seq_len: 512,
        top_k: 2,
        capacity_factor: None,
        moe_every: 2,
        first_dense: 0,
        mbs: 2,
        zero: 2,
        recompute: Recompute::None,
        v: 1,
        ovl_ep: false,
        ovl_dp,
        // A node per stage: the pipeline sends leave on the NICs, the gradient syncs run on
        // NVLink, so no two transfers share a port.
        gpn: 4,
    }
}

/// Compare `spec` (balanced routing) and fail beyond the tolerance or with contention.
fn assert_agrees(spec: &Spec) {
    let case = build(spec, None).unwrap_or_else(|| panic!("{spec:?} is a valid plan"));
    assert!(
        case.uneven_moe,
        "{}: meant to hold uneven MoE stages",
        case.label
    );
    let r = compare(&case);
    println!("{}", r.show());
    assert_eq!(r.contention.total(), 0, "{}", r.show());
    assert!(r.worst() <= TOLERANCE, "beyond {TOLERANCE}: {}", r.show());
}

#[test]
fn uneven_moe_stages_agree_without_overlap() {
    // Why: stage 1 holds two MoE layers (with ep 1 their experts' gradients are all-reduced over
    // dp) and finishes its last backward first; each stage syncs its own gradients right after
    // its own last backward (Megatron-LM `finalize_model_grads` per rank) and only the
    // optimizer's global-norm all-reduce joins them, so the step is the latest stage's end plus
    // its sync, not the pipeline's end plus the largest sync (was +6.5 %).
    assert_agrees(&two_stage_every_other(1, false, 1));
    assert_agrees(&two_stage_every_other(4, false, 1));
    assert_agrees(&two_stage_every_other(4, false, 4));
}

#[test]
fn uneven_moe_stages_agree_with_overlapped_grad_sync() {
    // Why: with `overlap_grad_sync` every stage reduces its own buckets as its own last
    // backward releases them; the stage with more (larger) buckets may finish its sync last.
    // (ep 1: with expert parallelism the buckets would share NVLink ports with the all-to-alls.)
    assert_agrees(&two_stage_every_other(1, true, 1));
    assert_agrees(&two_stage_every_other(4, true, 1));
    assert_agrees(&two_stage_every_other(8, true, 1));
}

#[test]
fn a_first_dense_layer_agrees() {
    // Why: DeepSeek-style first dense layers leave stage 0 with fewer MoE layers than the rest.
    let spec = Spec {
        layers: 4,
        moe_every: 1,
        first_dense: 1,
        ..two_stage_every_other(4, true, 1)
    };
    assert_agrees(&spec);
    assert_agrees(&Spec {
        ovl_dp: false,
        ..spec
    });
}

#[test]
fn interleaved_uneven_moe_chunks_agree() {
    // Why: with two model chunks per stage over four layers, MoE in every other layer, stage 1
    // holds both MoE layers (chunks 1 and 3) though the plain split gives each stage one: the
    // gradient sync and optimizer of a stage are those of its chunks (was -3.4 %).
    let spec = Spec {
        layers: 4,
        v: 2,
        zero: 1,
        ..two_stage_every_other(4, true, 1)
    };
    assert_agrees(&spec);
    let spec = Spec {
        ep: 2,
        ovl_dp: false,
        ..spec
    };
    assert_agrees(&spec);
    // Megatron-LM's combined 1F1B, the plan family of the unexplained -3.4 %.
    assert_agrees(&Spec {
        ovl_ep: true,
        ..spec
    });
}

/// Compare `spec` (balanced routing; it must be free of contention) and fail beyond `bound`.
fn assert_within(spec: &Spec, bound: f64) -> Compared {
    let case = build(spec, None).unwrap_or_else(|| panic!("{spec:?} is a valid plan"));
    let r = compare(&case);
    println!("{}", r.show());
    assert_eq!(r.contention.total(), 0, "{}", r.show());
    assert!(r.worst() <= bound, "beyond {bound}: {}", r.show());
    r
}

/// Where the fast path prices what the event level runs, without contention, they agree to
/// rounding and the order of float sums: far tighter than the 2 %, so a named test
/// of a former shortcut catches its return (each was 1.9 % to 6.3 % off).
const EXACT: f64 = 0.005;

#[test]
fn stage_boundaries_crossing_nodes_agree() {
    // Why: four stages on nodes of two stages each (dp 4, 8 GPUs per node): boundaries 0 and
    // 2 stay on NVLink, boundary 1 crosses the NIC.
    // The fast path priced every send at the NVLink price (up to 1.9 % optimistic); now each
    // boundary by where its stages sit, so the plan is exact.
    // One layer per stage and no TP: each send (2 MB) weighs against its stage's compute.
    let spec = Spec {
        layers: 4,
        d_model: 1024,
        experts: 0,
        tp: 1,
        dp: 4,
        pp: 4,
        ep: 1,
        m: 8,
        seq_len: 512,
        top_k: 1,
        capacity_factor: None,
        moe_every: 1,
        first_dense: 0,
        mbs: 2,
        zero: 1,
        recompute: Recompute::None,
        v: 1,
        ovl_ep: false,
        ovl_dp: false,
        gpn: 8,
    };
    assert_within(&spec, EXACT);
    // Interleaved: the wrap from the last stage to stage 0 crosses nodes too.
    assert_within(
        &Spec {
            v: 2,
            layers: 8,
            ..spec
        },
        EXACT,
    );
}

#[test]
fn zero3_gathers_outrunning_the_layers_agree() {
    // Why: with ZeRO-3, ep 1 and 16 experts, each MoE layer's parameter gather outruns the
    // layer's compute, so the ZeRO-3 stream falls behind and carries its backlog from layer to
    // layer and pass to pass, and gathers in the pipeline's bubbles. The fast path hid each
    // gather within one layer's window (up to 6.3 % off); now it runs the stage's stream as
    // the event level does.
    let spec = Spec {
        layers: 4,
        d_model: 1024,
        experts: 16,
        tp: 1,
        dp: 4,
        pp: 2,
        ep: 1,
        m: 4,
        seq_len: 512,
        top_k: 2,
        capacity_factor: None,
        moe_every: 1,
        first_dense: 0,
        mbs: 1,
        zero: 3,
        recompute: Recompute::None,
        v: 1,
        ovl_ep: false,
        ovl_dp: false,
        // A node per stage: the gathers on NVLink, the pipeline sends on the NICs.
        gpn: 4,
    };
    assert_within(&spec, EXACT);
    assert_within(
        &Spec {
            ovl_dp: true,
            recompute: Recompute::Full,
            ..spec.clone()
        },
        EXACT,
    );
    // One stage: the stream's backlog from one micro-batch's passes to the next.
    assert_within(
        &Spec {
            pp: 1,
            dp: 4,
            m: 2,
            ..spec
        },
        EXACT,
    );
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
    let (free, contended) = by_contention(&rows);
    let worst = worst_of(&free).expect("some plans have no contention");
    println!(
        "agreement: {} plans; {} without link contention, {} contended",
        rows.len(),
        free.len(),
        contended.len()
    );
    print_families(&free, &contended);
    print_uneven(&free);
    let comb: Vec<&Compared> = free.iter().copied().filter(|r| r.combined).collect();
    print_rows("combined 1F1B (overlap_ep_comm), no contention", &comb);
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
        print_rows(&format!("contended, {name}"), &sel);
    }
    // Both families are in the draw without contention.
    for what in FAMILIES {
        assert!(
            free.iter().filter(|r| r.family == Some(what)).count() >= 5,
            "too few uncontended plans of the family {what}"
        );
    }
    // Stages holding different numbers of MoE layers are held to the tolerance, with and
    // without interleaving.
    let uneven = |v: &str| {
        free.iter()
            .filter(|r| r.uneven_moe && r.label.contains(v))
            .count()
    };
    assert!(
        uneven(" v1 ") >= 10 && uneven(" v2 ") >= 3,
        "too few uncontended plans with uneven MoE stages: {} plain, {} interleaved",
        uneven(" v1 "),
        uneven(" v2 ")
    );
    assert_free_within(&free, PLANS, "plans");
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
    let (free, contended) = by_contention(&rows);
    println!(
        "combined 1F1B: {} plans; {} without link contention, {} contended",
        rows.len(),
        free.len(),
        contended.len()
    );
    println!("without contention: {}", summary(&free));
    print_uneven(&free);
    let worst = worst_of(&free).expect("some plans have no contention");
    println!("  worst: {}", worst.show());
    print_families(&free, &contended);
    print_rows("contended", &contended);
    // Pipelined plans are in the draw, not only pp = 1.
    assert!(free
        .iter()
        .any(|r| r.label.contains(" pp2 ") || r.label.contains(" pp4 ")));
    assert!(
        free.iter().filter(|r| r.uneven_moe).count() >= 5,
        "too few uncontended combined plans with uneven MoE stages"
    );
    assert_free_within(&free, COMBINED_PLANS, "combined plans");
}

/// Expert rebalancing at both levels: two MoE layers of 4 experts on two expert-parallel
/// ranks, placed by load; the rebalancing step (every 2nd) moves one expert each way per layer,
/// so each rank receives from one sender only and no two transfers share a link.
fn rebalancing_step(gpn: u32) {
    use super::event_step::{trace, EventStepModel};
    use crate::routing::Placement;
    let spec = Spec {
        layers: 2,
        d_model: 1024,
        experts: 4,
        tp: 1,
        dp: 2,
        pp: 1,
        ep: 2,
        m: 2,
        seq_len: 512,
        top_k: 2,
        capacity_factor: None,
        moe_every: 1,
        first_dense: 0,
        mbs: 2,
        zero: 0,
        recompute: Recompute::None,
        v: 1,
        ovl_ep: false,
        ovl_dp: false,
        gpn,
    };
    // Placed from loads [.4 .3 .2 .1]: ranks {0, 3} and {1, 2}; re-placed from the step's
    // [.4 .1 .3 .2]: {0, 1} and {2, 3} — expert 1 moves to rank 0, expert 3 to rank 1.
    let old: Vec<f64> = [0.4, 0.3, 0.2, 0.1].repeat(2);
    let new: Vec<f64> = [0.4, 0.1, 0.3, 0.2].repeat(2);
    let case = build(&spec, Some((new.clone(), "rebalance".into()))).expect("a valid plan");
    let policy = PlacementPolicy::ByLoad;
    let mut fast = StepModel::new(&case.job, &case.cluster).unwrap();
    let knobs = fast.full_knobs();
    fast.set_routing(RoutingChoice::TokenChoice, policy, Some(2), &old);
    let mut input = EventStepInput::from_job(&case.job, &case.cluster);
    input.placement = Some(Placement::new(policy, 2, 4, 2, &old));
    let mut ev = EventStepModel::new(input.clone());
    ev.set_rebalancing(policy, Some(2));
    // Step 0: counted, no rebalancing.
    let f0 = fast.step(&new, knobs);
    assert!(!ev.count_step(&new));
    let e0 = ev.step(&new, knobs, false).unwrap();
    assert_eq!(fast.moved_slots(), 0);
    assert_eq!(e0.migration_s, 0.0);
    // Step 1: the period is complete, both re-place from the same loads.
    let f1 = fast.step(&new, knobs);
    assert!(ev.count_step(&new));
    let e1 = ev.step(&new, knobs, true).unwrap();
    assert_eq!(
        fast.moved_slots(),
        2,
        "one slot per layer into the busiest receiver"
    );
    let slot = 3.0 * 1024.0 * 2048.0 * 16.0;
    assert_eq!(e1.migrated_bytes, 4.0 * slot, "two slots each way");
    let err = |f: f64, e: f64| f / e - 1.0;
    println!(
        "gpn {gpn}: step 0 fast {:.6} s event {:.6} s; rebalancing step fast {:.6} s event {:.6} s ({:+.2} %, energy {:+.2} %), migration {:.6} s, {:?}",
        f0.time_s,
        e0.time_s,
        f1.time_s,
        e1.time_s,
        100.0 * err(f1.time_s, e1.time_s),
        100.0 * err(f1.gpu_energy_j, e1.gpu_energy_j),
        e1.migration_s,
        e1.contention
    );
    assert_eq!(e1.contention.total(), 0, "{:?}", e1.contention);
    for (f, e) in [(&f0, &e0), (&f1, &e1)] {
        assert!(err(f.time_s, e.time_s).abs() <= TOLERANCE);
        assert!(err(f.gpu_energy_j, e.gpu_energy_j).abs() <= TOLERANCE);
    }
    // The same step on the new placement without the migration: shorter by the transfer of
    // two slots into each rank at the pair's link rate, plus a send's latency.
    let f = &case.cluster.fabric;
    let (bw, alpha) = if gpn >= 2 {
        (f.intra_bw_bytes_per_s(), f.intra.latency_s)
    } else {
        (f.leaf_bw_bytes_per_s(), f.inter.latency_s)
    };
    let expected = crate::network::COLLECTIVE_BASE_LATENCY_S + alpha + 2.0 * slot / bw;
    input.placement = Some(Placement::new(policy, 2, 4, 2, &new));
    let plain = event_step(&input, &new, knobs, false).unwrap();
    let extra = e1.time_s - plain.time_s;
    println!(
        "  without migration {:.6} s: +{extra:.6} s, expected {expected:.6} s",
        plain.time_s
    );
    assert!(
        (extra / expected - 1.0).abs() < 0.02,
        "{extra} vs {expected}"
    );
    assert!((e1.migration_s / expected - 1.0).abs() < 0.02);
    assert!(e1.gpu_energy_j > plain.gpu_energy_j);
    // The trace shows the transfers on both GPUs' communication tracks, ending the step.
    let mut buf = Vec::new();
    trace::write_chrome_trace(&mut buf, &e1, 100.0, "rebalance").unwrap();
    let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
    let mig: Vec<&serde_json::Value> = v["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["name"] == "moe.migrate")
        .collect();
    assert_eq!(mig.len(), 2);
    for x in mig {
        assert_eq!(x["tid"], 1);
        let end_us = x["ts"].as_f64().unwrap() + x["dur"].as_f64().unwrap();
        assert!((end_us - e1.time_s * 1e6).abs() < 1e-3, "{end_us}");
    }
}

#[test]
fn a_rebalancing_step_agrees_and_the_event_level_pays_its_migration_over_nvlink() {
    rebalancing_step(8);
}

#[test]
fn a_rebalancing_step_agrees_and_the_event_level_pays_its_migration_over_nics() {
    rebalancing_step(1);
}

/// `spec` (balanced routing) on TPU v4 chips, 4 per host, in torus slices of `dims` joined by
/// the DCN: fast path and event level.
fn on_torus(spec: &Spec, dims: [u32; 3]) -> Compared {
    use crate::network::link_preset;
    let mut case = build(spec, None).unwrap_or_else(|| panic!("{spec:?} is a valid plan"));
    let ici = link_preset("tpu-v4-ici").unwrap().link;
    let dcn = link_preset("dcn-tpu").unwrap().link;
    let chips = case.cluster.gpus;
    case.cluster.fabric = Fabric::torus(ici, dcn, 4, chips, dims).unwrap();
    case.cluster.accelerator = preset("tpu-v4").unwrap();
    case.cluster.power_cap_w = case.cluster.accelerator.tdp_w;
    case.cluster.gpus_per_node = 4;
    case.label = format!("{} torus {dims:?}", case.label);
    compare(&case)
}

/// A dense plan of `dp x tp x 2` chips (6 layers, d_model 1024, two pipeline stages).
fn tpu_dense(dp: u32, tp: u32, zero: u8) -> Spec {
    Spec {
        experts: 0,
        ep: 1,
        tp,
        dp,
        zero,
        gpn: 4,
        m: 2,
        ..two_stage_every_other(2, false, 1)
    }
}

#[test]
fn torus_ring_collectives_agree_on_uncontended_tpu_plans() {
    // Why: the event level ran a torus ring as the fat-tree's two-port model (one ICI link's
    // rate on the chip, the hosts' DCN NICs for the rest, even inside a slice); it now runs a
    // ring per dimension of the group's block on the chips' own ICI links, both ways round a
    // closed dimension, as `network::topology` prices it. Square and cubic blocks: every
    // dimension carries every phase position once, so the two agree.
    // Also why: the event level counted a ring's latency steps once per slot of a 3-slot
    // array (dimension 0's steps three times on a 1-D block), 9 % slower on a TP ring of 4;
    // and it indexed past its torus links (a panic) when a pipeline send on a 4 x 8 slice
    // routed through chips beyond the highest simulated one.
    let cases = [
        // Data-parallel gradient all-reduce over a 4 x 4 slice (a square block, both rings
        // closed), plain and under ZeRO-1's reduce-scatter + all-gather.
        (tpu_dense(16, 1, 0), [4, 4, 1]),
        (tpu_dense(16, 1, 1), [4, 4, 1]),
        // Tensor parallelism on one ring of 4 (a 1-D block) and data parallelism across it,
        // both stages in one slice of a non-square or cubic shape: the pipeline sends ride
        // multi-hop ICI routes (on 4 x 8, stage 1's chip 16 reaches chip 0 through 20, 24, 28).
        (tpu_dense(4, 4, 0), [4, 8, 1]),
        (tpu_dense(4, 4, 0), [8, 4, 1]),
        (tpu_dense(4, 4, 0), [4, 4, 2]),
        (tpu_dense(4, 4, 0), [2, 8, 2]),
        // Tensor parallelism over a dimension of 2 (one link), data parallelism a ring of 4.
        (tpu_dense(4, 2, 0), [2, 8, 1]),
        // One stage per slice (as Gopher's pp 4 over 4 pods): the data-parallel group, one
        // rank per host, stays in its stage's slice (placed by its rank stride `tp`), so its
        // gradient all-reduce has no DCN phase at either level.
        (tpu_dense(4, 4, 0), [4, 4, 1]),
        (tpu_dense(8, 4, 0), [4, 8, 1]),
        // A 4 x 4 x 4 cube.
        (tpu_dense(64, 1, 0), [4, 4, 4]),
        // A pipelined MoE without expert parallelism (its experts' gradients on the same rings).
        (
            Spec {
                pp: 2,
                gpn: 4,
                ..two_stage_every_other(2, false, 1)
            },
            [4, 2, 1],
        ),
    ];
    for (spec, dims) in &cases {
        let r = on_torus(spec, *dims);
        println!("{}", r.show());
        assert_eq!(r.contention.total(), 0, "{}", r.show());
        assert!(r.worst() <= TOLERANCE, "beyond {TOLERANCE}: {}", r.show());
    }
}

#[test]
fn uneven_torus_blocks_agree() {
    // Why: on a block of unequal sides the fast path timed the slowest of the rotated chunks
    // phase by phase, but the chunks run at once and their phases on the longer dimension
    // share its links (on [2, 4] the 4-line carries 9/8 of a chunk where a chunk's path is
    // 7/8): the event level, each dimension's whole load on its links, was 3.3 % slower on
    // dp 8 tp 2 pp 2 over [2, 8, 1] (-2.8 % on this branch's base) and slower on a 4 x 8
    // block. The fast path now takes the busier of the two bounds (`Torus::rs_over`).
    let cases = [
        (tpu_dense(32, 1, 0), [4, 8, 1]),
        (tpu_dense(8, 2, 0), [2, 8, 1]),
        (tpu_dense(8, 2, 1), [2, 8, 1]),
        (tpu_dense(4, 2, 0), [2, 4, 2]),
    ];
    let rows: Vec<Compared> = cases.iter().map(|(s, d)| on_torus(s, *d)).collect();
    for r in &rows {
        println!("{}", r.show());
    }
    for r in &rows {
        assert_eq!(r.contention.total(), 0, "{}", r.show());
        assert!(r.worst() <= EXACT, "beyond {EXACT}: {}", r.show());
    }
}

#[test]
fn a_torus_ring_whose_chunk_path_binds_is_slower_on_the_fast_path() {
    // Why: on a 2 x 8 block (a closed 8-ring and a dimension of 2) no dimension's links carry
    // as much as a rotated chunk's path (phase after phase), which the fast path times; the
    // event level runs each dimension's load as flows that start together, leaving out the
    // order of a chunk's phases, so it is the faster here (+1.05 % on this plan, 2026-12-02;
    // +1.35 % with a data-parallel group of 8 on a 2 x 4 x 2 slice, block [2, 4, 1]).
    // Not mended: the event level's torus ring would need each chunk's phases as dependent
    // flows. Held so the gap cannot grow or change sign unseen.
    for (spec, dims) in [
        (tpu_dense(16, 1, 0), [2, 8, 1]),
        (tpu_dense(8, 1, 0), [2, 4, 2]),
    ] {
        let r = on_torus(&spec, dims);
        println!("{}", r.show());
        assert_eq!(r.contention.total(), 0, "{}", r.show());
        assert!(r.fast_s >= r.event_s, "{}", r.show());
        assert!(r.worst() <= TOLERANCE, "beyond {TOLERANCE}: {}", r.show());
    }
}

#[test]
fn a_ring_over_two_slices_runs_its_dcn_phase_alongside_the_in_slice_rings() {
    // Why: the fast path adds the in-slice phase and the slices' shard ring over the DCN (XLA
    // issues them as separate collectives, its stated assumption); the event level's flows run
    // them at once on different links, so it is the faster where the DCN phase matters.
    let r = on_torus(&tpu_dense(32, 1, 0), [4, 4, 1]);
    println!("{}", r.show());
    assert!(r.event_s <= r.fast_s * (1.0 + 1e-9), "{}", r.show());
}

#[test]
fn a_tutel_plan_with_its_sampled_capacity_agrees() {
    // Why: Tutel pads every (rank, expert) pair to the group's one capacity, the largest count of
    // one micro-batch's sampled routing (`routing::pair_max_factor`); both paths size the padded
    // experts, encode/decode and all-to-alls by it, on every rank.
    let spec = Spec {
        layers: 2,
        experts: 16,
        pp: 1,
        ep: 4,
        top_k: 1,
        moe_every: 1,
        mbs: 1,
        zero: 0,
        ..two_stage_every_other(4, false, 4)
    };
    // Zipf-like skew (1/sqrt(rank)), the same row in both layers.
    let row: Vec<f64> = (1..=16).map(|i| 1.0 / f64::from(i).sqrt()).collect();
    let sum: f64 = row.iter().sum();
    let shares: Vec<f64> = row.iter().chain(&row).map(|x| x / sum).collect();
    let mut case = build(&spec, Some((shares, "zipf0.5".into()))).expect("a valid Tutel plan");
    case.job.moe_impl = crate::workload::step_ops::MoeImpl::Tutel;
    case.job.expert_kernel = crate::workload::step_ops::ExpertKernel::Padded;
    let r = compare(&case);
    println!("{}", r.show());
    assert_eq!(r.contention.total(), 0, "{}", r.show());
    assert!(r.worst() <= EXACT, "beyond {EXACT}: {}", r.show());
    // The spread is there: 512 tokens per rank over 16 experts, ~1.3 x the largest mean count.
    let mut fast = StepModel::new(&case.job, &case.cluster).unwrap();
    fast.set_routing(
        RoutingChoice::TokenChoice,
        PlacementPolicy::Contiguous,
        None,
        &case.shares,
    );
    let f = fast.pad_spread().to_vec();
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].to_bits(), f[1].to_bits());
    println!("pad spread {f:?}");
    assert!(f[0] > 1.05 && f[0] < 1.6, "{f:?}");
    // And it slows the step against the same plan priced at the mean counts (a small plan near
    // the launch floors: slower, not by much).
    let with = fast.step(&case.shares, fast.full_knobs()).time_s;
    let input = EventStepInput::from_job(&case.job, &case.cluster);
    let without = event_step(&input, &case.shares, fast.full_knobs(), false)
        .unwrap()
        .time_s;
    assert!(with > without, "{with} vs {without}");
}

#[test]
fn an_einsum_moe_plan_agrees() {
    // Why: the einsum layer (Mesh TF / GShard, `moe_impl = "einsum"`) sizes every op by its
    // capacity, none by the routing, and its all-to-alls carry the whole padded buffer; both
    // step models must price that list alike, with balanced and with skewed routing (which
    // only drops tokens), on a pipelined plan with expert parallelism.
    use crate::workload::step_ops::{ExpertKernel, MoeImpl};
    let spec = Spec {
        capacity_factor: Some(1.25),
        ..two_stage_every_other(4, false, 4)
    };
    let run = |routing: Option<(Vec<f64>, String)>, torus: bool, einsum: bool| {
        let mut case = build(&spec, routing).unwrap_or_else(|| panic!("{spec:?} is a valid plan"));
        if einsum {
            case.job.moe_impl = MoeImpl::Einsum;
            case.job.expert_kernel = ExpertKernel::Padded;
            case.label = format!("{} einsum", case.label);
        }
        if torus {
            // On a TPU v4 4 x 2 slice (the all-to-alls on the ICI torus), as `on_torus`.
            use crate::network::link_preset;
            let ici = link_preset("tpu-v4-ici").unwrap().link;
            let dcn = link_preset("dcn-tpu").unwrap().link;
            let chips = case.cluster.gpus;
            case.cluster.fabric = Fabric::torus(ici, dcn, 4, chips, [4, 2, 1]).unwrap();
            case.cluster.accelerator = preset("tpu-v4").unwrap();
            case.cluster.power_cap_w = case.cluster.accelerator.tdp_w;
            case.label = format!("{} torus", case.label);
        }
        compare(&case)
    };
    // One hot expert per MoE layer takes half the assignments.
    let e = spec.experts as usize;
    let skew: Vec<f64> = (0..3 * e)
        .map(|i| {
            if i % e == 0 {
                0.5
            } else {
                0.5 / (e - 1) as f64
            }
        })
        .collect();
    let balanced = run(None, false, true);
    let hot = run(Some((skew, "hot 0.50".to_string())), false, true);
    for r in [&balanced, &hot] {
        println!("{}", r.show());
        assert_eq!(r.contention.total(), 0, "{}", r.show());
        assert!(r.worst() <= EXACT, "beyond {EXACT}: {}", r.show());
    }
    // On a torus: the two models parted on the Megatron-LM flow's all-to-alls (the fast path
    // -3.8 % on this plan, 2026-12-02) while the event level sent every half-way pair of the
    // ring of 4 the positive way (1.5x the balanced link load, `Torus::route`); and the fast
    // path priced the einsum layer's fixed all-to-alls from one rank's bytes, the others as
    // sending nothing (the bisection bound cut by the group size: `uniform_all_to_all_s`).
    // Both layers now agree there too.
    let (tpu, tpu_megatron) = (run(None, true, true), run(None, true, false));
    println!("{}\n{}", tpu.show(), tpu_megatron.show());
    for r in [&tpu, &tpu_megatron] {
        assert_eq!(r.contention.total(), 0, "{}", r.show());
        assert!(r.worst() <= EXACT, "beyond {EXACT}: {}", r.show());
    }
    // Fixed sizes: the routing moves neither model's step.
    assert_eq!(balanced.fast_s, hot.fast_s);
    assert!((balanced.event_s / hot.event_s - 1.0).abs() < 1e-9);
}

/// `spec` as a Tutel job (`moe_impl = "tutel"` with its padded expert kernel, as scenario
/// validation sets it; Tutel v0.2.0 runs without tensor parallelism, so `spec.tp` must be 1).
fn tutel_case(spec: &Spec, routing: Option<(Vec<f64>, String)>) -> Case {
    let mut case = build(spec, routing).unwrap_or_else(|| panic!("{spec:?} is a valid plan"));
    case.job.moe_impl = crate::workload::step_ops::MoeImpl::Tutel;
    case.job.expert_kernel = crate::workload::step_ops::ExpertKernel::Padded;
    case.label.push_str(" tutel");
    case
}

#[test]
fn tutel_moe_layers_agree() {
    // Why: Tutel's layer (`step_ops/moe_tutel.rs`) runs ops no other plan has — the dynamic-
    // capacity all-reduce (MAX) and its host read every layer and micro-batch, int64 routing
    // masks, the padded encode/decode and all-to-alls sized at the group's largest (rank,
    // expert) count — and the fast path (`step/moe.rs`) and the event level each size them;
    // no agreement test held the two together. Balanced and skewed routing (the skew makes the
    // largest count, not the mean, size the padded ops), one and two pipeline stages (a node
    // per stage: sends on the NICs, all-to-alls on NVLink), dynamic capacity as the MegaBlocks
    // cases run it; and a fixed `capacity_factor` (Tutel v0.2.0 to 82af7aa,
    // `fast_dispatch.py` L188-190: `capacity = top_k * int(cf * ceil(T / E))`, and L26: every
    // expert's slice of the zeroed `[E * capacity, d]` buffer crosses the all-to-alls and the
    // experts' batched matmuls, whatever was routed to it), where both models size every op
    // by that capacity and the routing moves neither. Once +2.5 % time / +1.6 % energy at
    // 1.25 on the first plan (the event level's fixed all-to-alls moved no bytes; mended in
    // session 9), now exact on every plan here.
    let one_stage = Spec {
        layers: 4,
        experts: 8,
        pp: 1,
        moe_every: 1,
        zero: 0,
        gpn: 8,
        ..two_stage_every_other(2, false, 4)
    };
    let specs = [
        one_stage.clone(),
        Spec {
            ep: 2,
            ..one_stage.clone()
        },
        Spec {
            pp: 2,
            m: 4,
            gpn: 4,
            ..one_stage
        },
    ];
    let row = [0.30, 0.20, 0.10, 0.10, 0.10, 0.10, 0.05, 0.05];
    for spec in &specs {
        let skewed = (
            row.repeat(spec.layers as usize),
            "skewed 0.30..0.05".to_string(),
        );
        for cf in [None, Some(1.25)] {
            let spec = Spec {
                capacity_factor: cf,
                ..spec.clone()
            };
            let mut fixed = Vec::new();
            for routing in [None, Some(skewed.clone())] {
                let r = compare(&tutel_case(&spec, routing));
                println!("cf {cf:?} {}", r.show());
                assert_eq!(r.contention.total(), 0, "{}", r.show());
                assert!(r.worst() <= EXACT, "beyond {EXACT}: {}", r.show());
                fixed.push(r);
            }
            if cf.is_some() {
                // A fixed capacity: the skew only drops tokens, no op changes size.
                assert_eq!(fixed[0].fast_s, fixed[1].fast_s);
                assert!((fixed[0].event_s / fixed[1].event_s - 1.0).abs() < 1e-9);
            }
        }
    }
}

#[test]
fn overlapped_param_gathers_agree() {
    // Why: under `overlap_param_gather` (Megatron-LM's distributed optimizer) the parameter
    // all-gathers leave the step's tail and run a bucket per layer ahead of the first forward
    // through each layer; the event level refused the setting, so the fast path's exposed share
    // (`step::param_gather`) had no check. Now the event level runs the buckets on a side
    // stream (`graph::ParamGather`), each layer's first forward waiting for its own: one and
    // two stages, interleaved chunks, an MoE plan with its expert-parallel gathers; off and on.
    let base = Spec {
        experts: 0,
        ep: 1,
        zero: 1,
        ..two_stage_every_other(4, false, 1)
    };
    let specs = [
        Spec {
            pp: 1,
            gpn: 8,
            ..base.clone()
        },
        base.clone(),
        Spec {
            v: 2,
            layers: 8,
            ..base.clone()
        },
        Spec {
            ovl_dp: true,
            ..base.clone()
        },
        two_stage_every_other(4, false, 4),
    ];
    for spec in &specs {
        let mut rows = Vec::new();
        for on in [false, true] {
            let mut case = build(spec, None).unwrap_or_else(|| panic!("{spec:?} is a valid plan"));
            case.job.schedule.overlap_param_gather = on;
            case.label
                .push_str(if on { " pg-overlap" } else { " pg-after" });
            let r = compare(&case);
            println!("{}", r.show());
            assert_eq!(r.contention.total(), 0, "{}", r.show());
            assert!(r.worst() <= TOLERANCE, "beyond {TOLERANCE}: {}", r.show());
            rows.push(r);
        }
        // The gathers hide under the forwards at both levels.
        assert!(rows[1].event_s < rows[0].event_s, "{}", rows[1].show());
        assert!(rows[1].fast_s < rows[0].fast_s, "{}", rows[1].show());
    }
}

#[test]
fn megablocks_moe_layers_agree() {
    // Why: MegaBlocks' dMoE (`step_ops/moe_megablocks.rs`) has ops no other plan has — host
    // reads in its padded gathers (forward and, from the padded scatters, backward), the
    // receive-side bins sized by each rank's load, and expert ops over block-padded rows (a
    // fixed padding offset on top of the routed load) — which the fast path and the event
    // level each size from the loads. Balanced and skewed routing, one and two stages, ep 8 and 2.
    let one_stage = Spec {
        layers: 4,
        experts: 8,
        pp: 1,
        moe_every: 1,
        zero: 0,
        gpn: 8,
        ..two_stage_every_other(2, false, 4)
    };
    let specs = [
        one_stage.clone(),
        Spec {
            ep: 2,
            ..one_stage.clone()
        },
        Spec {
            pp: 2,
            m: 4,
            gpn: 4,
            ..one_stage
        },
    ];
    let row = [0.30, 0.20, 0.10, 0.10, 0.10, 0.10, 0.05, 0.05];
    for spec in &specs {
        let skewed = (
            row.repeat(spec.layers as usize),
            "skewed 0.30..0.05".to_string(),
        );
        for routing in [None, Some(skewed)] {
            let mut case =
                build(spec, routing).unwrap_or_else(|| panic!("{spec:?} is a valid plan"));
            case.job.moe_impl = crate::workload::step_ops::MoeImpl::Megablocks;
            case.job.expert_kernel = crate::workload::step_ops::ExpertKernel::Grouped;
            case.label.push_str(" megablocks");
            let r = compare(&case);
            println!("{}", r.show());
            assert_eq!(r.contention.total(), 0, "{}", r.show());
            assert!(r.worst() <= TOLERANCE, "beyond {TOLERANCE}: {}", r.show());
        }
    }
}
