//! Megatron-LM's combined 1F1B (`--overlap-moe-expert-parallel-comm`): the pass order with each
//! steady-state forward merged with the backward that follows it, and the merged op list of such a
//! pass, whose dispatch/combine all-to-alls run on a communication stream under the other half's
//! compute.
//!
//! Read from Megatron-LM (`megatron/core/pipeline_parallel/combined_1f1b.py`,
//! `megatron/core/models/common/model_chunk_schedule_plan.py`, `pipeline_parallel/schedules.py`,
//! commit d98e8a6): with pp = 1 micro-batch 0's forward runs alone, then backward k with forward
//! k+1, then the last backward alone (`combined_1f1b_schedule_for_no_pipelining`); with pipeline
//! stages (interleaved 1F1B only: `TransformerConfig` asserts virtual stages) the interleaved
//! order gets one more warm-up forward ("needed to ensure the forward and backward computations
//! are independent in all 1f1b steps", `get_pp_rank_microbatches`) and each steady-state
//! forward/backward pair runs combined. Inside a combined pass
//! (`TransformerModelChunkSchedulePlan.run`) the forward's layer i runs with the backward's i-th
//! layer (`TransformerLayerSchedulePlan.run`): compute stream `attn+router fwd | experts bwd,
//! experts fwd | attn bwd`, communication stream `combine bwd | dispatch fwd, dispatch bwd |
//! combine fwd`, each op waiting for its own half's previous op.

use super::graph::{Pass, PassTable, NONE};
use crate::workload::step_ops::{KernelClass, Op};

/// One op of a combined pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Item {
    /// Index in the stage's op list.
    pub op: u32,
    /// Of the backward half (else the forward half).
    pub bwd: bool,
    /// A dispatch/combine all-to-all: issued on the GPU's all-to-all stream, the compute stream
    /// goes on.
    pub a2a: bool,
    /// All-to-alls of this pass (in issue order) that must have completed before it starts:
    /// those up to its own half's latest one.
    pub wait: u32,
}

/// Pass order of stage `s` of `pp` with `v` model chunks and `m` micro-batches in the combined
/// 1F1B order: the forward passes of [`super::graph::one_f_one_b`] (`v = 1`) or
/// [`super::graph::interleaved`] with one more warm-up forward, each steady-state forward paired
/// with the backward that follows it (`pair[k]`: that backward's micro-batch and model chunk, None
/// for a pass that runs alone).
pub(super) fn combined_order(
    s: u32,
    pp: u32,
    v: u32,
    m: u32,
) -> (Vec<Pass>, Vec<Option<(u32, u32)>>) {
    let n = pp.max(1);
    let t = PassTable::new(pp, v, m);
    let total = t.len();
    let base = if v == 1 {
        pp - 1 - s
    } else {
        (pp - s - 1) * 2 + (v - 1) * n
    };
    let warm = (base + 1).min(total);
    let (f, b) = (|k| t.forward(k), |k| t.backward(k));
    let mut order = Vec::with_capacity((total + warm) as usize);
    let mut pair = Vec::with_capacity(order.capacity());
    for k in 0..warm {
        order.push(f(k));
        pair.push(None);
    }
    for k in 0..total - warm {
        order.push(f(warm + k));
        let bp = b(k);
        pair.push(Some((bp.mb, bp.chunk)));
    }
    for k in total - warm..total {
        order.push(b(k));
        pair.push(None);
    }
    (order, pair)
}

/// A pass's ops cut the way the combined schedule treats them: ops outside any layer before the
/// layers, each layer's ops, ops outside any layer after them, and the pipeline sends.
struct Cut {
    prefix: Vec<u32>,
    layers: Vec<Vec<u32>>,
    suffix: Vec<u32>,
    sends: Vec<u32>,
}

fn cut(ops: &[Op], (lo, hi): (usize, usize)) -> Cut {
    let mut c = Cut {
        prefix: Vec::new(),
        layers: Vec::new(),
        suffix: Vec::new(),
        sends: Vec::new(),
    };
    let mut cur = NONE;
    for (i, op) in ops.iter().enumerate().take(hi).skip(lo) {
        let i = i as u32;
        if op.class == KernelClass::SendRecv {
            c.sends.push(i);
        } else if let Some(l) = op.layer {
            if l != cur || c.layers.is_empty() {
                c.layers.push(Vec::new());
                cur = l;
            }
            if let Some(x) = c.layers.last_mut() {
                x.push(i);
            }
        } else if c.layers.is_empty() {
            c.prefix.push(i);
        } else {
            c.suffix.push(i);
        }
    }
    c
}

/// A layer's ops as compute runs between runs of all-to-alls: `(compute, a2a)` with
/// `compute.len() == a2a.len() + 1`.
fn segments(ops: &[Op], layer: &[u32]) -> (Vec<Vec<u32>>, Vec<Vec<u32>>) {
    let mut comp = vec![Vec::new()];
    let mut a2a: Vec<Vec<u32>> = Vec::new();
    let mut in_a2a = false;
    for &i in layer {
        if ops[i as usize].class == KernelClass::AllToAll {
            if !in_a2a {
                a2a.push(Vec::new());
                in_a2a = true;
            }
            if let Some(x) = a2a.last_mut() {
                x.push(i);
            }
        } else {
            if in_a2a {
                comp.push(Vec::new());
                in_a2a = false;
            }
            if let Some(x) = comp.last_mut() {
                x.push(i);
            }
        }
    }
    if in_a2a {
        comp.push(Vec::new());
    }
    (comp, a2a)
}

/// Builds a merged list, tracking each half's latest all-to-all.
struct Merge {
    items: Vec<Item>,
    issued: u32,
    last: [u32; 2],
}

impl Merge {
    fn comp(&mut self, ops: &[u32], bwd: bool) {
        for &op in ops {
            self.items.push(Item {
                op,
                bwd,
                a2a: false,
                wait: self.last[bwd as usize],
            });
        }
    }

    fn a2a(&mut self, ops: &[u32], bwd: bool) {
        for &op in ops {
            self.items.push(Item {
                op,
                bwd,
                a2a: true,
                wait: 0,
            });
            self.issued += 1;
        }
        self.last[bwd as usize] = self.issued;
    }

    /// Layer `f` of the forward half with layer `b` of the backward half (either may be
    /// missing), in `TransformerLayerSchedulePlan.run`'s order: `b0, B1, f0, F1, b1, B2, f1, F2,
    /// b2, f2` for compute runs `f_i`, `b_i` and all-to-all runs `F_i`, `B_i` (forward:
    /// attention+router, dispatch, experts, combine, unpermute; backward: unpermute, combine,
    /// experts, dispatch, attention+router).
    fn layer_pair(&mut self, ops: &[Op], f: Option<&[u32]>, b: Option<&[u32]>) {
        let (fc, fa) = f.map_or((Vec::new(), Vec::new()), |l| segments(ops, l));
        let (bc, ba) = b.map_or((Vec::new(), Vec::new()), |l| segments(ops, l));
        let n = fa.len().max(ba.len());
        if let Some(x) = bc.first() {
            self.comp(x, true);
        }
        for i in 1..=n {
            if let Some(x) = ba.get(i - 1) {
                self.a2a(x, true);
            }
            if let Some(x) = fc.get(i - 1) {
                self.comp(x, false);
            }
            if let Some(x) = fa.get(i - 1) {
                self.a2a(x, false);
            }
            if let Some(x) = bc.get(i) {
                self.comp(x, true);
            }
        }
        if let Some(x) = fc.get(n) {
            self.comp(x, false);
        }
    }
}

/// The merged op list of a combined pass: forward range `f` and backward range `b` of the
/// stage's `ops`. Megatron-LM's `TransformerModelChunkSchedulePlan.run`: the forward's
/// pre-processing (embedding) and the backward's post-processing (loss, head) first, the layers
/// pairwise (forward layer i with the backward's i-th), the backward's remaining layers, then the
/// forward's, then the rest of each half outside the layers, then the forward's and the
/// backward's pipeline sends.
pub(super) fn merge(ops: &[Op], f: (usize, usize), b: (usize, usize)) -> Vec<Item> {
    let (fc, bc) = (cut(ops, f), cut(ops, b));
    let mut m = Merge {
        items: Vec::with_capacity(f.1 - f.0 + b.1 - b.0),
        issued: 0,
        last: [0; 2],
    };
    m.comp(&fc.prefix, false);
    m.comp(&bc.prefix, true);
    let both = fc.layers.len().min(bc.layers.len());
    for i in 0..both {
        m.layer_pair(ops, Some(&fc.layers[i]), Some(&bc.layers[i]));
    }
    for l in &bc.layers[both..] {
        m.layer_pair(ops, None, Some(l));
    }
    for l in &fc.layers[both..] {
        m.layer_pair(ops, Some(l), None);
    }
    m.comp(&fc.suffix, false);
    m.comp(&bc.suffix, true);
    m.comp(&fc.sends, false);
    m.comp(&bc.sends, true);
    m.items
}

#[cfg(test)]
mod tests {
    use super::super::tests::{input, model, plan};
    use super::super::{EventStepError, EventStepModel, Overlap};
    use super::*;
    use crate::sim::event_step::graph::{interleaved, one_f_one_b};
    use crate::workload::step_ops::Phase;

    #[test]
    fn combined_passes_hide_all_to_alls_under_the_other_halfs_compute() {
        // 8 expert-parallel ranks over two nodes of 4, 4 micro-batches, pp = 1.
        let mut i = input(model(8), plan(8, 1, 1, 8, 4), 2);
        i.gpus_per_node = 4;
        i.fabric = crate::network::Fabric::from_presets("nvlink4", "ib-ndr", 4, 2).unwrap();
        let knobs = crate::sim::test_setup::knobs(i.accelerator.tdp_w, 2, 4);
        let shares = vec![1.0 / 8.0; 4 * 8];
        let off = EventStepModel::new(i.clone())
            .step(&shares, knobs, false)
            .unwrap();
        i.overlap = Overlap {
            ep_comm: true,
            ..Overlap::default()
        };
        let on = EventStepModel::new(i).step(&shares, knobs, true).unwrap();
        assert!(on.time_s < off.time_s, "{} !< {}", on.time_s, off.time_s);
        let g0 = |r: &&crate::sim::event_step::OpRecord| r.gpu == 0;
        let recs: Vec<_> = on.records.iter().filter(g0).collect();
        // Micro-batch 0's forward runs alone: the first backward op starts after it.
        let f0_end = recs
            .iter()
            .filter(|r| r.stream == 0 && r.mb == 0 && r.phase == Phase::Forward)
            .map(|r| r.end_ns)
            .max()
            .unwrap();
        let b_start = recs
            .iter()
            .filter(|r| r.stream == 0 && r.phase == Phase::Backward)
            .map(|r| r.start_ns)
            .min()
            .unwrap();
        assert!(b_start >= f0_end);
        // Some all-to-all runs while the same GPU computes another micro-batch's op.
        let hidden = recs
            .iter()
            .filter(|a| a.stream == 1 && a.class == KernelClass::AllToAll)
            .any(|a| {
                recs.iter().any(|c| {
                    c.stream == 0
                        && (c.mb != a.mb || c.phase != a.phase)
                        && c.start_ns < a.end_ns
                        && a.start_ns < c.end_ns
                })
            });
        assert!(hidden, "no all-to-all overlapped with compute");
    }

    #[test]
    fn the_overlap_megatron_refuses_or_moesim_does_not_model_is_an_error() {
        use crate::workload::Recompute::{Full, None as NoRc};
        // ZeRO-3, full recompute, two stages without interleaving.
        for (zero, rc, pp) in [(3u8, NoRc, 1), (1, Full, 1), (1, NoRc, 2)] {
            let mut p = plan(8, 1, pp, 8, 4);
            p.zero_stage = zero;
            p.recompute = rc;
            let mut i = input(model(8), p, 1);
            i.overlap.ep_comm = true;
            let knobs = crate::sim::test_setup::knobs(i.accelerator.tdp_w, 2, 4);
            let e = EventStepModel::new(i)
                .step(&vec![1.0 / 8.0; 32], knobs, false)
                .unwrap_err();
            assert!(
                matches!(&e, EventStepError::Plan(m) if m.contains("overlap_ep_comm")),
                "{e}"
            );
        }
    }

    #[test]
    fn no_pipeline_pairs_backward_k_with_forward_k_plus_one() {
        // combined_1f1b_schedule_for_no_pipelining with 4 micro-batches: F0, (F1,B0), (F2,B1),
        // (F3,B2), B3.
        let (o, p) = combined_order(0, 1, 1, 4);
        let got: Vec<_> = o.iter().zip(&p).map(|(x, y)| (x.bwd, x.mb, *y)).collect();
        assert_eq!(
            got,
            vec![
                (false, 0, None),
                (false, 1, Some((0, 0))),
                (false, 2, Some((1, 0))),
                (false, 3, Some((2, 0))),
                (true, 3, None)
            ]
        );
    }

    #[test]
    fn the_combined_order_runs_every_pass_of_the_plain_order_once() {
        // Why: merging pairs and one more warm-up must neither drop nor repeat a pass.
        for (pp, v, m) in [
            (2, 1, 4),
            (4, 1, 8),
            (3, 1, 2),
            (2, 2, 4),
            (4, 2, 8),
            (2, 3, 6),
        ] {
            for s in 0..pp {
                let plain = if v == 1 {
                    one_f_one_b(s, pp, m)
                } else {
                    interleaved(s, pp, v, m)
                };
                let (o, p) = combined_order(s, pp, v, m);
                let mut all: Vec<_> = o
                    .iter()
                    .zip(&p)
                    .flat_map(|(x, y)| {
                        let mut v = vec![(x.bwd, x.mb, x.chunk)];
                        if let Some((mb, c)) = y {
                            v.push((true, *mb, *c));
                        }
                        v
                    })
                    .collect();
                let mut want: Vec<_> = plain.iter().map(|x| (x.bwd, x.mb, x.chunk)).collect();
                // Forwards keep their order, backwards theirs.
                let fw = |v: &[(bool, u32, u32)], b| {
                    v.iter().filter(|x| x.0 == b).copied().collect::<Vec<_>>()
                };
                assert_eq!(
                    fw(&all, false),
                    fw(&want, false),
                    "pp {pp} v {v} m {m} s {s}"
                );
                assert_eq!(fw(&all, true), fw(&want, true), "pp {pp} v {v} m {m} s {s}");
                all.sort();
                want.sort();
                assert_eq!(all, want);
            }
        }
    }
}
