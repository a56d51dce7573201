//! The fast step's shortcuts (memoised op prices, reused all-to-all times, the inline rounding)
//! give bit for bit what pricing every op afresh gives, on every expert kernel and routing choice.

use super::moe::Routed;
use super::*;
use crate::hardware::PriceKnobs;
use crate::network::price_all_to_all;
use crate::routing::{Router, RouterModel};
use crate::scenario::parse_scenario;
use crate::workload::step_ops::{ExpertKernel, KernelClass, Load, Op, Phase, RoutedBy};
use std::path::Path;

fn job_and_cluster(file: &str) -> (Job, Cluster) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let text = std::fs::read_to_string(dir.join(file)).expect("scenario");
    let s = parse_scenario(file, &text, &dir).expect("valid");
    (s.moe.clone().expect("moe job"), s.cluster.clone())
}

/// The routed part of one MoE layer priced as before any memo: every op re-sized with
/// `Op::at_tokens` and priced afresh for every rank, every all-to-all priced on its own; padded
/// ops at the group's largest count times `spread` (the layer's sampling factor).
fn reference_routed(sm: &StepModel, knobs: Knobs, fi: usize, spread: f64) -> Routed {
    let ep = sm.plan.ep.max(1) as usize;
    let width = sm.counts.len() / ep;
    let pad_m = (0..ep)
        .flat_map(|r| sm.counts[r * width..r * width + sm.slots_of[r]].iter())
        .fold(0.0f64, |a, &b| a.max(b))
        * spread;
    let k: PriceKnobs = sm.price_knobs(knobs);
    let idle = sm.acc.idle_w;
    let mut out = Routed::default();
    let (mut f_max, mut b_max) = (0.0f64, 0.0f64);
    // The layer's routed ops in list order (the all-to-alls are priced after the rest either way).
    let f = &sm.cache[fi];
    let routed: Vec<&Op> = f
        .priced
        .iter()
        .map(|p| &p.op)
        .chain(f.a2a.iter().map(|a| &a.op))
        .collect();
    let routed = &routed;
    for r in 0..ep {
        let counts = &sm.counts[r * width..r * width + sm.slots_of[r]];
        let (mut rf, mut rb) = (0.0, 0.0);
        for &op in routed {
            if op.class == KernelClass::AllToAll {
                continue;
            }
            let Load::Routed { by, .. } = op.load else {
                continue;
            };
            let mut price = |tokens: f64| {
                let p = sm.price_op(&op.at_tokens(tokens), &k);
                if !op.class.is_comm() {
                    out.dyn_sum_j += (p.energy_j - idle * p.time_s).max(0.0);
                    out.busy_sum_s += p.time_s;
                }
                p.time_s
            };
            let t = match by {
                RoutedBy::RankReceived => price(sm.load[r]),
                RoutedBy::MaxLocalExpert => price(pad_m),
                RoutedBy::LocalExpert(_) => counts.iter().map(|&c| price(c)).sum(),
            };
            if op.phase == Phase::Forward {
                rf += t;
            } else {
                rb += t;
            }
        }
        f_max = f_max.max(rf);
        b_max = b_max.max(rb);
    }
    let group = sm.group(sm.plan.ep, sm.plan.tp);
    let spin = sm.acc.spin_w();
    let (mut a2a_f, mut a2a_b) = (0.0, 0.0);
    let (mut send, mut recv) = (vec![0.0; ep], vec![0.0; ep]);
    for &op in routed {
        if op.class != KernelClass::AllToAll {
            continue;
        }
        let uniform = op.comm.map_or(0.0, |c| c.bytes_per_rank);
        for r in 0..ep {
            send[r] = uniform;
            recv[r] = op
                .at_tokens(sm.load[r])
                .comm
                .map_or(0.0, |c| c.bytes_per_rank);
        }
        let t = price_all_to_all(op, &sm.fabric, group, &send, &recv, spin).time_s;
        if op.phase == Phase::Forward {
            a2a_f += t;
        } else {
            a2a_b += t;
        }
    }
    // Blocking parts (the combined 1F1B schedule hides the all-to-alls above this level).
    out.f_s = f_max + a2a_f;
    out.b_s = b_max + a2a_b;
    out.comm_s = a2a_f + a2a_b;
    out
}

fn bits(r: &Routed) -> [u64; 5] {
    [r.f_s, r.b_s, r.dyn_sum_j, r.busy_sum_s, r.comm_s].map(f64::to_bits)
}

/// Steps of `job` under a skewed noisy router: every MoE layer's routed part (after `moe_block`
/// set the loads) equals the reference bit for bit, at full and throttled knobs.
fn check_layers(job: &Job, cluster: &Cluster, choice: RoutingChoice, steps: u64) -> usize {
    let mut sm = StepModel::new(job, cluster).expect("op list");
    let (e, layers) = (sm.experts(), sm.moe_layers());
    let mut router = Router::new(RouterModel::Zipf { s: 0.8 }, e, layers, 11);
    let mean = router.mean_shares(4, sm.assignments_per_layer(sm.full_knobs().top_k));
    sm.set_routing(choice, PlacementPolicy::Contiguous, None, &mean);
    let full = sm.full_knobs();
    let throttled = Knobs {
        power_limit_w: 0.7 * full.power_limit_w,
        top_k: 1,
        ..full
    };
    let mut shares = vec![0.0; e * layers];
    let mut checked = 0;
    let mut worst_rel = 0.0f64;
    for step in 0..steps {
        let knobs = if step % 3 == 2 { throttled } else { full };
        // Few assignments: loud sampling noise, so token counts spread and memo slots collide.
        router.fill_shares(step, 500.0, &mut shares);
        let fi = sm.fixed(knobs);
        for ml in 0..layers {
            let got = sm.moe_block(&shares[ml * e..(ml + 1) * e], ml, knobs, fi);
            let spread = sm.pad_spread.get(ml).copied().unwrap_or(1.0);
            let want = reference_routed(&sm, knobs, fi, spread);
            if sm.plan.ep as usize <= super::memo::ROW_SUM_RANKS {
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "step {step} layer {ml}: {got:?} vs {want:?}"
                );
            } else {
                // Large groups add each rank's summed row: times bit for bit, the energy and busy
                // sums reassociated (a few ulps).
                let [f, b, _, _, c] = bits(&got);
                let [wf, wb, _, _, wc] = bits(&want);
                assert_eq!((f, b, c), (wf, wb, wc), "step {step} layer {ml}");
                for (g, w) in [
                    (got.dyn_sum_j, want.dyn_sum_j),
                    (got.busy_sum_s, want.busy_sum_s),
                ] {
                    let rel = (g - w).abs() / w.abs().max(f64::MIN_POSITIVE);
                    assert!(
                        rel <= 1e-13,
                        "step {step} layer {ml}: {g:e} vs {w:e} ({rel:e})"
                    );
                    worst_rel = worst_rel.max(rel);
                }
            }
            checked += 1;
        }
    }
    if worst_rel > 0.0 {
        eprintln!("largest relative energy/busy difference (ep > ROW_SUM_RANKS): {worst_rel:e}");
    }
    checked
}

#[test]
fn routed_layers_equal_the_unmemoised_prices_on_every_expert_kernel() {
    for file in ["single_node.toml", "seed_comparison.toml"] {
        let (job, cluster) = job_and_cluster(file);
        for kernel in [
            ExpertKernel::Grouped,
            ExpertKernel::Loop,
            ExpertKernel::Padded,
        ] {
            for cf in [None, Some(1.0), Some(1.25)] {
                for overlap in [false, true] {
                    let mut j = job.clone();
                    j.expert_kernel = kernel;
                    j.schedule.overlap_ep_comm = overlap;
                    if let crate::workload::FfnKind::Moe(m) = &mut j.model.ffn {
                        m.capacity_factor = cf;
                    }
                    for choice in [RoutingChoice::TokenChoice, RoutingChoice::ExpertChoice] {
                        assert!(check_layers(&j, &cluster, choice, 12) > 0);
                    }
                }
            }
        }
    }
}

#[test]
fn routed_layers_equal_the_unmemoised_prices_on_a_torus_and_with_expert_tp() {
    // A TPU ICI torus (the all-to-all reads the sum of loads too) and expert tensor parallelism.
    let (job, cluster) = job_and_cluster("validation/patterson_switch.toml");
    assert!(check_layers(&job, &cluster, RoutingChoice::TokenChoice, 6) > 0);
    let (mut job, cluster) = job_and_cluster("single_node.toml");
    job.plan.tp = 2;
    job.plan.ep = 4;
    job.plan.dp = 4;
    assert!(check_layers(&job, &cluster, RoutingChoice::TokenChoice, 6) > 0);
}

#[test]
fn a_memoised_price_equals_the_unmemoised_one_for_a_sweep_of_token_counts() {
    let (job, cluster) = job_and_cluster("seed_comparison.toml");
    for kernel in [ExpertKernel::Grouped, ExpertKernel::Loop] {
        let mut j = job.clone();
        j.expert_kernel = kernel;
        let mut sm = StepModel::new(&j, &cluster).expect("op list");
        let knobs = Knobs {
            power_limit_w: 450.0,
            ..sm.full_knobs()
        };
        let fi = sm.fixed(knobs);
        let k = sm.price_knobs(knobs);
        let priced = sm.cache[fi].priced.clone();
        assert!(priced.len() >= 5, "{} routed ops", priced.len());
        // Counts that share a memo row (t, t + 1024, t + 4096) in turn, twice over: the second
        // pass reads back what the first remembered, and collisions re-price.
        let counts: Vec<f64> = (0..3000u32)
            .step_by(7)
            .flat_map(|t| [t, t + 1024, t, t + 4096, 16384 + t])
            .map(f64::from)
            .chain([0.5, 1e9, f64::NAN])
            .collect();
        for _ in 0..2 {
            for &t in &counts {
                for (i, p) in priced.iter().enumerate() {
                    let got = sm.price_at(fi, i, t, &k);
                    let want = sm.price_op(&p.op.at_tokens(t), &k);
                    let want_dyn = (want.energy_j - sm.acc.idle_w * want.time_s).max(0.0);
                    assert_eq!(
                        (got.time_s.to_bits(), got.dyn_j.to_bits()),
                        (want.time_s.to_bits(), want_dyn.to_bits()),
                        "{kernel:?} op {} at {t} tokens",
                        p.op.name
                    );
                }
            }
        }
    }
}

#[test]
fn the_inline_rounding_equals_f64_round_bit_for_bit() {
    let mut xs = vec![
        0.0,
        -0.0,
        0.5,
        -0.5,
        1.5,
        2.5,
        -2.5,
        0.49999999999999994,
        -0.49999999999999994,
        4503599627370495.5,
        -4503599627370495.5,
        4503599627370496.0,
        9007199254740993.0,
        1e300,
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MAX,
    ];
    xs.extend((-40_000..40_000).map(|i| f64::from(i) / 16.0));
    xs.extend((0..20_000).map(|i| f64::from(i) * 0.1 + 0.05));
    // Scattered bit patterns over the whole range (a fixed-seed xorshift).
    let mut b = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..200_000 {
        b ^= b << 13;
        b ^= b >> 7;
        b ^= b << 17;
        xs.push(f64::from_bits(b));
    }
    for x in xs {
        let (got, want) = (super::moe::round(x), x.round());
        assert!(
            got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
            "{x:e}: {got:e} vs {want:e}"
        );
    }
}
