//! Every op of the step's op list runs: each GPU's records hold each compute op `m` times (once
//! for once-per-step ops) and each communication op's bytes in full (a gradient sync split into
//! buckets sums to the op's bytes), over plans with and without ZeRO-3, overlap and pipelines.

use std::collections::HashMap;

use super::graph::Graph;
use super::tests::{input, model, plan};
use super::*;
use crate::workload::step_ops::Phase;

type Key = (&'static str, Option<u32>, Phase);

/// What GPU `gi` must have run by the op lists of `g`: per op (name, layer, phase), how often and
/// how many bytes (communication).
fn expected(g: &Graph, gi: usize) -> HashMap<Key, (u64, f64)> {
    let st = &g.stages[gi / g.ep as usize];
    let m = g.chunk_mbs.max(1) as u64;
    let mut want: HashMap<Key, (u64, f64)> = HashMap::new();
    let each = st.ops.iter().map(|o| (o, m));
    for (o, n) in each.chain(st.per_step.iter().map(|o| (o, 1))) {
        let e = want.entry((o.name, o.layer, o.phase)).or_default();
        e.0 += n;
        e.1 += n as f64 * o.comm.map_or(0.0, |c| c.bytes_per_rank);
    }
    want
}

/// Simulate `inp` with `mbs` micro-batches and return every (GPU, op) whose records do not
/// match the op list: compute ops by count, communication ops by bytes (`dp.grad_sync` may run as
/// buckets) and, but for the buckets, by count.
pub(super) fn missing(inp: &EventStepInput, mbs: u32) -> Vec<String> {
    let k = crate::sim::test_setup::knobs(
        inp.accelerator.tdp_w,
        inp.model.moe().map_or(0, |m| m.top_k),
        mbs,
    );
    let g = Graph::new(inp, k).unwrap();
    let (l, e) = match inp.model.moe() {
        Some(m) => (inp.model.moe_layers() as usize, m.experts as usize),
        None => (0, 0),
    };
    let r = event_step(inp, &vec![1.0 / e.max(1) as f64; l * e], k, true).unwrap();
    let mut bad = Vec::new();
    for gi in 0..g.gpus() {
        let want = expected(&g, gi);
        let mut got: HashMap<Key, (u64, f64)> = HashMap::new();
        for x in r.records.iter().filter(|x| x.gpu as usize == gi) {
            let e = got.entry((x.name, x.layer, x.phase)).or_default();
            e.0 += 1;
            e.1 += if x.stream == 1 { x.bytes } else { 0.0 };
        }
        for (key, &(n, bytes)) in &want {
            let (gn, gb) = got.get(key).copied().unwrap_or_default();
            let comm = bytes > 0.0;
            let count_ok = gn == n || (key.0 == "dp.grad_sync" && gn > 0);
            let bytes_ok = !comm || (gb - bytes).abs() <= 1e-9 * bytes;
            if !count_ok || !bytes_ok {
                bad.push(format!(
                    "GPU {gi} {key:?}: ran {gn} times, {gb:.0} B; the op list has {n}, {bytes:.0} B"
                ));
            }
        }
        for key in got.keys().filter(|k| !want.contains_key(*k)) {
            bad.push(format!("GPU {gi} {key:?}: ran but is not in the op list"));
        }
    }
    bad
}

/// The plans: dense and MoE, ZeRO 0 / 1 / 3, overlap of the gradient sync off and on, one to
/// four stages, TP 1 / 2, interleaving.
fn plans() -> Vec<(String, EventStepInput, u32)> {
    let mut out = Vec::new();
    for experts in [0, 8] {
        for (dp, tp, pp, ep, mbs) in [
            (4, 1, 1, 4, 2),
            (4, 2, 2, 2, 4),
            (2, 1, 4, 2, 4),
            (2, 2, 1, 1, 2),
        ] {
            for zero in [0, 1, 3] {
                for grad in [false, true] {
                    for v in [1, 2] {
                        if v == 2 && pp < 2 {
                            continue;
                        }
                        let mut p = plan(dp, tp, pp, if experts > 0 { ep } else { 1 }, mbs);
                        p.zero_stage = zero;
                        let mut m = model(experts);
                        m.layers = 8;
                        let mut inp = input(m, p, (dp * tp * pp).div_ceil(8));
                        inp.overlap.grad_sync = grad;
                        inp.virtual_stages = v;
                        let name = format!(
                            "experts {experts} dp {dp} tp {tp} pp {pp} v {v} zero {zero} overlap_grad_sync {grad}"
                        );
                        out.push((name, inp, mbs));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn every_gradient_sync_and_every_op_of_the_op_list_runs() {
    // Why: a gradient bucket released only at a compute op's end would drop the sync of a layer
    // whose backward ends in a communication op (ZeRO-3's reduce-scatter): the step silently
    // shorter than the framework's.
    let mut bad = Vec::new();
    for (name, inp, mbs) in plans() {
        for x in missing(&inp, mbs) {
            bad.push(format!("{name}: {x}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn every_op_runs_in_combined_1f1b_passes() {
    // Why: the combined passes walk merged op lists of two halves; none may be lost.
    let mut bad = Vec::new();
    for (pp, v, grad) in [(1, 1, false), (1, 1, true), (2, 2, false), (2, 2, true)] {
        let mut m = model(8);
        m.layers = 8;
        let mut inp = input(m, plan(4, 1, pp, 4, 4), pp);
        inp.overlap = Overlap {
            grad_sync: grad,
            ep_comm: true,
            param_gather: false,
        };
        inp.virtual_stages = v;
        for x in missing(&inp, 4) {
            bad.push(format!("pp {pp} v {v} overlap_grad_sync {grad}: {x}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn a_padded_ops_record_carries_the_padded_rows_it_was_priced_at() {
    // Why: a Tutel expert GEMM (dynamic capacity) runs over `E_local x capacity` rows, the
    // group's largest (rank, expert) count per local expert; its price was sized so, but its
    // record took the rank's received load (all its experts' tokens) as that count, 8x the
    // FLOPs here on one rank of 8 experts, and insensitive to the skew that sizes the buffer.
    use crate::workload::step_ops::{ExpertKernel, MoeImpl};
    let mut inp = input(model(8), plan(1, 1, 1, 1, 2), 1);
    inp.ops_config.moe_impl = MoeImpl::Tutel;
    inp.ops_config.expert_kernel = ExpertKernel::Padded;
    let k = crate::sim::test_setup::knobs(inp.accelerator.tdp_w, 2, 2);
    let g = Graph::new(&inp, k).unwrap();
    assert!(
        g.padded,
        "a Tutel plan with dynamic capacity pads its expert ops"
    );
    let fc1 = g.stages[0]
        .ops
        .iter()
        .find(|o| o.name == "moe.expert_fc1" && o.phase == Phase::Forward)
        .expect("Tutel's expert GEMM")
        .clone();
    let flops_of = |shares: &[f64]| {
        let r = event_step(&inp, shares, k, true).unwrap();
        let x = r
            .records
            .iter()
            .find(|x| x.name == "moe.expert_fc1" && x.phase == Phase::Forward)
            .expect("a record of the expert GEMM");
        x.flops
    };
    let layers = inp.model.moe_layers() as usize;
    // Balanced: every expert's count is the mean, so the padded rows are the op list's own.
    let balanced = flops_of(&vec![1.0 / 8.0; layers * 8]);
    assert!(
        (balanced / fc1.flops - 1.0).abs() < 1e-9,
        "{balanced} vs {}",
        fc1.flops
    );
    // Skewed: the largest expert (0.30 of the assignments) sets every expert's rows.
    let row = [0.30, 0.20, 0.10, 0.10, 0.10, 0.10, 0.05, 0.05];
    let skewed = flops_of(&row.repeat(layers));
    assert!(
        (skewed / balanced - 0.30 * 8.0).abs() < 1e-9,
        "{skewed} vs {balanced}"
    );
}

#[test]
fn a_plan_without_padded_ops_skips_the_padded_capacity() {
    // Why: the padded capacity (`Graph::pad_m`) is a pass over every GPU's slots per MoE layer
    // and step; only plans with ops sized by it (Tutel's dynamic capacity) need it.
    let inp = input(model(8), plan(4, 1, 1, 4, 2), 1);
    let k = crate::sim::test_setup::knobs(inp.accelerator.tdp_w, 2, 2);
    let g = Graph::new(&inp, k).unwrap();
    assert!(!g.padded && !g.padded_a2a);
    assert!(g.pad_m.iter().all(|&m| m == 0.0), "{:?}", g.pad_m);
    let mut tutel = inp.clone();
    tutel.ops_config.moe_impl = crate::workload::step_ops::MoeImpl::Tutel;
    tutel.ops_config.expert_kernel = crate::workload::step_ops::ExpertKernel::Padded;
    let g = Graph::new(&tutel, k).unwrap();
    assert!(g.padded && g.padded_a2a);
    assert!(g.pad_m.iter().all(|&m| m > 0.0), "{:?}", g.pad_m);
}

#[test]
fn overlapped_param_gathers_with_combined_passes_are_refused_by_name() {
    // Why: combined 1F1B passes run merged op lists with no per-layer forward start to hold a
    // parameter-gather bucket at; the event level names the two settings instead of running
    // the gathers where no framework does.
    let mut inp = input(model(8), plan(4, 1, 1, 4, 2), 1);
    inp.overlap.ep_comm = true;
    inp.overlap.param_gather = true;
    let k = crate::sim::test_setup::knobs(inp.accelerator.tdp_w, 2, 2);
    match Graph::new(&inp, k) {
        Err(EventStepError::Plan(m)) => {
            assert!(
                m.contains("overlap_param_gather") && m.contains("overlap_ep_comm"),
                "{m}"
            )
        }
        other => panic!("accepted: {:?}", other.map(|g| g.gpus())),
    }
    // Either alone runs.
    inp.overlap.ep_comm = false;
    assert!(Graph::new(&inp, k).is_ok());
}
