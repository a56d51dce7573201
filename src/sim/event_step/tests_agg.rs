//! Node-aggregate all-to-alls (groups over more than 32 nodes) against the node-pair flows
//! they stand in for, on sizes where both run.

use super::tests::{input, model, plan};
use super::*;

fn knobs(i: &EventStepInput) -> Knobs {
    crate::sim::test_setup::knobs(i.accelerator.tdp_w, 2, 1)
}

/// Shares per MoE layer (4 layers x `experts`): balanced, node 0's experts taking 40 % of
/// the assignments, or Zipf (s = 1) rotated per layer; per source rank (4 layers x `experts`
/// sources x `experts`, one expert per rank): Zipf rotated per layer and source, or each
/// source sending half its assignments to the next node's experts.
fn routing(kind: &str, experts: usize) -> Vec<f64> {
    let norm = |w: Vec<f64>| {
        let s: f64 = w.iter().sum();
        w.into_iter().map(move |x| x / s)
    };
    match kind {
        "zipf per source" => {
            return (0..4 * experts)
                .flat_map(|r| {
                    let (l, i) = (r / experts, r % experts);
                    norm(
                        (0..experts)
                            .map(|e| 1.0 / (1.0 + ((e + 37 * l + 13 * i) % experts) as f64))
                            .collect(),
                    )
                })
                .collect()
        }
        "next node" => {
            return (0..4 * experts)
                .flat_map(|r| {
                    let next = (r % experts / 8 + 1) % (experts / 8);
                    norm(
                        (0..experts)
                            .map(|e| {
                                if e / 8 == next {
                                    0.5 / 8.0
                                } else {
                                    0.5 / (experts - 8) as f64
                                }
                            })
                            .collect(),
                    )
                })
                .collect()
        }
        _ => {}
    }
    (0..4)
        .flat_map(|l| {
            let w: Vec<f64> = (0..experts)
                .map(|e| match kind {
                    "balanced" => 1.0,
                    "hot node" if e < 8 => 0.4 / 8.0,
                    "hot node" => 0.6 / (experts - 8) as f64,
                    _ => 1.0 / (1.0 + ((e + 37 * l) % experts) as f64),
                })
                .collect();
            norm(w)
        })
        .collect()
}

/// End [ns] of each GPU's all-to-alls, in record order.
fn a2a_ends(r: &EventStep) -> Vec<u64> {
    r.records
        .iter()
        .filter(|x| x.class == crate::workload::step_ops::KernelClass::AllToAll)
        .map(|x| x.end_ns)
        .collect()
}

#[test]
fn node_aggregates_agree_with_node_pair_flows_on_8_to_32_nodes() {
    // Why: the node aggregates replace node-pair flows above 32 nodes, so where both run they
    // must give the same step: within 1 % on step time and GPU energy and 3 % on every
    // all-to-all's end (a GPU's records in order), balanced, with one hot node, under Zipf
    // routing shared by all sources, and with per-source rows (Zipf rotated per source; half to
    // the next node). Where every source routes alike the flows into a node are equal and
    // processor sharing on its NIC is exact; per-source Zipf is where they part.
    for nodes in [8u32, 16, 32] {
        let ranks = 8 * nodes;
        // Tokens wide enough that the all-to-alls are bandwidth-bound, not latency-bound.
        let mut md = model(ranks);
        md.d_model = 4096;
        md.seq_len = 4096;
        let inp = input(md, plan(ranks, 1, 1, ranks, 1), nodes);
        let k = knobs(&inp);
        let mut m = EventStepModel::new(inp.clone());
        m.set_pair_flow_max(0);
        for kind in [
            "balanced",
            "hot node",
            "zipf",
            "zipf per source",
            "next node",
        ] {
            let shares = routing(kind, ranks as usize);
            m.set_node_pair_max_nodes(nodes);
            let pairs = m.step(&shares, k, true).unwrap();
            m.set_node_pair_max_nodes(0);
            let agg = m.step(&shares, k, true).unwrap();
            let d = agg.time_s / pairs.time_s - 1.0;
            let e = agg.gpu_energy_j / pairs.gpu_energy_j - 1.0;
            let (a, p) = (a2a_ends(&agg), a2a_ends(&pairs));
            assert_eq!(a.len(), p.len());
            let worst = a
                .iter()
                .zip(&p)
                .map(|(&x, &y)| x as f64 / y as f64 - 1.0)
                .fold(0.0f64, |w, x| if x.abs() > w.abs() { x } else { w });
            let wait = pairs.max_gpu_comm_wait_s / pairs.time_s;
            println!(
                "{nodes} nodes, {kind}: waiting in communication {:.1} % of the step (most waiting GPU); step {:+.3} %, energy {:+.3} %, worst all-to-all end {:+.3} %; events {} vs {}",
                100.0 * wait,
                100.0 * d,
                100.0 * e,
                100.0 * worst,
                agg.events,
                pairs.events
            );
            assert!(d.abs() < 0.01, "{nodes} nodes, {kind}: step {d}");
            assert!(e.abs() < 0.01, "{nodes} nodes, {kind}: energy {e}");
            assert!(
                worst.abs() < 0.03,
                "{nodes} nodes, {kind}: all-to-all {worst}"
            );
        }
    }
}
