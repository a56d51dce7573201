//! Rank-pair all-to-all flows: selectivity of a hot rank, port sharing, agreement with the
//! per-port aggregate.

use super::tests::{input, model, plan};
use super::*;
use crate::network::COLLECTIVE_BASE_LATENCY_S;

/// The knobs these tests run at: TDP, top-2, one micro-batch.
pub(super) fn knobs(i: &EventStepInput) -> Knobs {
    crate::sim::test_setup::knobs(i.accelerator.tdp_w, 2, 1)
}

/// Per-source shares (4 MoE layers x 8 ranks x 8 experts, one expert per rank): each source
/// row from `row(layer, source)`.
fn per_source(row: impl Fn(usize, usize) -> [f64; 8]) -> Vec<f64> {
    let mut v = Vec::with_capacity(4 * 8 * 8);
    for l in 0..4 {
        for i in 0..8 {
            v.extend(row(l, i));
        }
    }
    v
}

/// Ranks 0-3 route only to experts 0-3 and ranks 4-7 only to experts 4-7 (two disjoint
/// halves), uniformly within the half except that layer 0's sources 0-3 send `hot` of their
/// assignments to expert 0.
fn halves(hot: f64) -> Vec<f64> {
    per_source(|l, i| {
        let mut r = [0.0; 8];
        let lo = if i < 4 { 0 } else { 4 };
        if l == 0 && i < 4 {
            r[0] = hot;
            for x in &mut r[1..4] {
                *x = (1.0 - hot) / 3.0;
            }
        } else {
            for x in &mut r[lo..lo + 4] {
                *x = 0.25;
            }
        }
        r
    })
}

/// End [ns] of each GPU's layer-0 forward combine.
pub(super) fn combine_ends(r: &EventStep) -> Vec<u64> {
    let mut v = vec![0; r.gpus_simulated as usize];
    for x in &r.records {
        if x.name == "moe.combine" && x.layer == Some(0) && x.phase == Phase::Forward {
            v[x.gpu as usize] = x.end_ns;
        }
    }
    v
}

#[test]
fn a_hot_rank_delays_only_the_peers_that_exchange_tokens_with_it() {
    // Why: per-pair flows exist so that one hot expert's rank holds up the ranks that send it
    // tokens and wait for their results, and nobody else; the old group barrier held up all.
    let inp = input(model(8), plan(8, 1, 1, 8, 1), 1);
    let k = knobs(&inp);
    let mut m = EventStepModel::new(inp.clone());
    let even = combine_ends(&m.step(&halves(0.25), k, true).unwrap());
    let hot = combine_ends(&m.step(&halves(0.7), k, true).unwrap());
    for g in 0..4 {
        assert!(
            hot[g] > even[g],
            "rank {g} sends to the hot rank 0 and waits for it: {hot:?} vs {even:?}"
        );
    }
    for g in 4..8 {
        assert_eq!(
            hot[g], even[g],
            "rank {g} exchanges nothing with rank 0: {hot:?} vs {even:?}"
        );
    }
    // Node-pair flows (all 8 ranks on one node, which completes as one) delay the other half too.
    m.set_pair_flow_max(0);
    let even_b = combine_ends(&m.step(&halves(0.25), k, true).unwrap());
    let hot_b = combine_ends(&m.step(&halves(0.7), k, true).unwrap());
    assert!(hot_b[4..].iter().zip(&even_b[4..]).all(|(h, e)| h > e));
}

#[test]
fn two_pair_flows_into_one_port_take_twice_as_long_as_one() {
    // Why: a link is a shared resource; two rank-pair flows into rank 0's NVLink port share it.
    let inp = input(model(8), plan(8, 1, 1, 8, 1), 1);
    let k = knobs(&inp);
    let mut m = EventStepModel::new(inp.clone());
    // Every source keeps its tokens on its own expert, except sources 1 (and 2) sending all of
    // theirs to expert 0: one (two) flows of the same size into rank 0.
    let shares = |two: bool| {
        per_source(|_, i| {
            let mut r = [0.0; 8];
            let to = if i == 1 || (two && i == 2) { 0 } else { i };
            r[to] = 1.0;
            r
        })
    };
    let dispatch = |r: &EventStep| {
        r.records
            .iter()
            .find(|x| {
                x.gpu == 1
                    && x.name == "moe.dispatch"
                    && x.layer == Some(0)
                    && x.phase == Phase::Forward
            })
            .map(|x| x.end_ns - x.start_ns)
            .unwrap()
    };
    let one = dispatch(&m.step(&shares(false), k, true).unwrap());
    let two = dispatch(&m.step(&shares(true), k, true).unwrap());
    let f = &inp.fabric;
    let lat = graph::secs_to_ns(COLLECTIVE_BASE_LATENCY_S + 7.0 * f.intra.latency_s);
    let (t1, t2) = ((one - lat) as f64, (two - lat) as f64);
    assert!(t1 > 0.0);
    assert!((t2 / t1 - 2.0).abs() < 1e-3, "one {t1} ns, two {t2} ns");
}

#[test]
fn balanced_routing_pair_flows_match_the_per_port_aggregate_within_half_a_percent() {
    // Why: under balanced routing every port carries the same bytes in both models, so the
    // rank-pair model must not move the step against node-pair flows (`set_pair_flow_max(0)`);
    // 16 ranks over 2 nodes (NVLink and NIC pairs).
    let inp = input(model(16), plan(16, 1, 1, 16, 2), 2);
    let k = Knobs {
        micro_batches: 2,
        ..knobs(&inp)
    };
    let uniform = vec![1.0 / 16.0; 4 * 16];
    let mut m = EventStepModel::new(inp.clone());
    let pairs = m.step(&uniform, k, false).unwrap();
    m.set_pair_flow_max(0);
    let ports = m.step(&uniform, k, false).unwrap();
    let d = pairs.time_s / ports.time_s - 1.0;
    println!(
        "pair flows {:.6e} s, per-port {:.6e} s ({:+.4} %)",
        pairs.time_s,
        ports.time_s,
        100.0 * d
    );
    assert!(d.abs() < 0.005, "{d}");
    let e = pairs.gpu_energy_j / ports.gpu_energy_j - 1.0;
    assert!(e.abs() < 0.005, "{e}");
}

#[test]
fn per_source_routing_rows_that_agree_equal_the_shared_row() {
    // Why: one share row per source is a refinement; identical rows must give the same step.
    let inp = input(model(8), plan(8, 1, 1, 8, 1), 1);
    let k = knobs(&inp);
    let row = [0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1];
    let shared: Vec<f64> = (0..4).flat_map(|_| row).collect();
    let mut m = EventStepModel::new(inp.clone());
    let a = m.step(&shared, k, false).unwrap();
    let b = m.step(&per_source(|_, _| row), k, false).unwrap();
    assert!((a.time_s - b.time_s).abs() <= 1e-12 * a.time_s.max(1.0));
    assert!((a.gpu_energy_j - b.gpu_energy_j).abs() <= 1e-9 * a.gpu_energy_j);
    assert_eq!(a.dropped, b.dropped);
}

#[test]
fn per_source_routing_past_its_group_limit_is_an_error_naming_the_limit() {
    let inp = input(model(512), plan(512, 1, 1, 512, 1), 64);
    let k = knobs(&inp);
    let shares = vec![1.0 / 512.0; 4 * 512 * 512];
    let e = event_step(&inp, &shares, k, false).unwrap_err().to_string();
    assert!(e.contains("at most 256") && e.contains("ep = 512"), "{e}");
}
