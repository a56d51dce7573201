//! MegaBlocks' dMoE layer as ops: the kernels, collectives and host syncs of its expert-parallel forward.
//!
//! Read from stanford-futuredata/megablocks commit 1647a0e (2023-01-31, "default settings used in
//! MegaBlocks paper"; Gale et al. 2023, arXiv:2211.15841): `megablocks/layers/moe.py`
//! (`MoE.forward`, `routing_scores`, `indices_and_bins`, `parallel_forward_once`),
//! `megablocks/layers/dmoe.py` (`permute_and_compute`, `topology`, `sparse_transpose`) and the
//! CUDA ops under `csrc/`. Line references are to those files at that commit.
//!
//! What sets it apart from the Megatron-LM token flow of `moe::moe_ffn`:
//! - the router is `mm`, `softmax`, `max` (top-1) or `topk` (`routing_scores`); the
//!   load-balancing loss is taken once per micro-batch over all layers
//!   (`batched_load_balancing_loss`), not per layer;
//! - no probs all-to-all: the expert weights stay on the sending rank and scale the tokens after
//!   the local un-permute (`forward`: `x = x * expert_weights.view(-1, 1)`);
//! - the bins come from CUB kernels (`ops.sort`: `cub::DeviceRadixSort::SortPairs`,
//!   `ops.histogram`: `cub::DeviceHistogram::HistogramEven`, `ops.inclusive_cumsum`:
//!   `cub::DeviceScan::InclusiveSum`);
//! - host syncs: `ops.padded_gather` reads its output row count from the device
//!   (`csrc/padded_gather_scatter.h`: `cudaMemcpyAsync` into a host `int`, pageable, so it
//!   returns only once the copy has completed), and `parallel_forward_once` reads the send and
//!   receive counts with two `.cpu()` calls; `padded_scatter`'s backward is a `padded_gather`;
//! - the experts are block-sparse products (`stk.ops.sdd`, `dsd`) over each local expert's rows
//!   rounded up to blocks of 128 (`dmoe.py`: `self.blocking = 128`, `ops.round_up`), with the
//!   sparse topology and its transpose built on the device every micro-batch.

use super::dropout::residual;
use super::layer::{act_op, norm, routed, Ctx, Emit};
use super::moe::{grouped_gemm, push_gemm, routed_all_to_all};
use super::{GroupKind, KernelClass as K, Load, Op, RoutedBy};
use crate::workload::MoeSpec;

/// Rows of one block of MegaBlocks' block-sparse expert products (`dmoe.py`: `self.blocking =
/// 128`): each local expert's rows are rounded up to a multiple of it.
pub(super) const BLOCK_ROWS: f64 = 128.0;
/// Host calls of `ops.sort`, `ops.histogram` and `ops.inclusive_cumsum`: one each. Each is one
/// Python call into MegaBlocks' C++ extension that runs its CUB device function there
/// (`csrc/sort.h`: `cub::DeviceRadixSort::SortPairs`, upsweep, scan and downsweep of one digit
/// pass for at most 8 bits of expert id; `csrc/histogram.h`: `cub::DeviceHistogram::HistogramEven`,
/// init and sweep; `csrc/cumsum.h`: `cub::DeviceScan::InclusiveSum`, init and scan). A launch here
/// is what the host floor `launch_overhead_s` measures, one eager call from Python (21.3 us, our
/// H100 `micro.csv`); the 2-3 kernels the C++ side launches back to back within it take a few us
/// of host time each (3.8 us per kernel on a stream, NVIDIA "Getting Started with CUDA Graphs",
/// 2019, notes/hardware_constants.md Sec. 6d), inside that floor.
const SORT_LAUNCHES: u32 = 1;
/// See [`SORT_LAUNCHES`].
const HISTOGRAM_LAUNCHES: u32 = 1;
/// See [`SORT_LAUNCHES`].
const CUMSUM_LAUNCHES: u32 = 1;
/// Bytes of an int32 index or count.
const I32: f64 = 4.0;

/// Expected rows one local expert is padded by when its count is rounded up to [`BLOCK_ROWS`]:
/// `(B - 1) / 2` when an expert gets at least a block of rows on average (the remainder is then
/// spread evenly over the block), the rest of the block when it gets fewer.
pub(super) fn expected_block_padding(mean_rows_per_expert: f64) -> f64 {
    if mean_rows_per_expert >= BLOCK_ROWS {
        (BLOCK_ROWS - 1.0) / 2.0
    } else {
        BLOCK_ROWS - mean_rows_per_expert.max(0.0)
    }
}

/// `op` (built at `tokens + pad` rows) routed by the rank's received assignments: it grows by
/// the op's per-row work for each further assignment, and the padding stays a fixed offset.
fn routed_padded(op: Op, tokens: f64, pad: f64) -> Op {
    let rows = tokens + pad;
    let mut op = routed(op, RoutedBy::RankReceived, rows);
    if let Load::Routed { tokens: t, .. } = &mut op.load {
        // Same per-row slopes, anchored at the unpadded count: `at_tokens(x)` is then the op
        // at `x + pad` rows.
        *t = tokens;
    }
    op
}

/// The MegaBlocks dMoE block of one layer (see the module doc), after the Megatron-LM pre-norm.
pub(super) fn megablocks_moe_ffn(e: &mut Emit, c: &Ctx, moe: &MoeSpec) {
    let (p, d) = (c.p, c.d);
    let ts = c.ts;
    let ep = c.plan.ep.max(1);
    let experts = moe.experts as f64;
    let k = moe.top_k as f64;
    // One pass of the token flow per top-k slot (`forward`: `forward_fn` per chunk of the
    // top-k routing), each with its own host syncs.
    let passes = moe.top_k.max(1);
    let el = c.plan.experts_per_rank(c.model).max(1) as f64;
    let fe = moe.expert_ffn_hidden as f64;
    let se = ts * experts;
    let tk = ts * k;
    // Assignments this GPU's experts receive under uniform routing (each rank sends `ts * k`).
    let recv = super::moe::uniform_received(c);
    let a2a_share = (ep - 1) as f64 / ep as f64;

    norm(e, c, "moe.norm", ts, d);
    // Router (`routing_scores`, L178-189): `torch.mm`, `softmax`, `max` / `topk`.
    e.gemm("moe.router", ts, experts, d, p);
    e.mem(
        Op::compute("moe.score", K::Softmax, 5.0 * se, 2.0 * se * p),
        1.5,
    );
    e.mem(
        Op::compute("moe.topk", K::TopK, se, se * p + tk * (p + 8.0)),
        1.0,
    );
    // `indices_and_bins` (L205-224), no gradient: `.int()`, sort of the expert ids (keys and
    // values int32), histogram, inclusive cumsum of the counts.
    let bins_launches = passes * (1 + SORT_LAUNCHES + HISTOGRAM_LAUNCHES + CUMSUM_LAUNCHES);
    e.push(
        Op::compute(
            "megablocks.bins",
            K::Elementwise,
            0.0,
            tk * (8.0 + 6.0 * I32),
        )
        .launches(bins_launches),
        &[],
    );
    if ep > 1 {
        // `all_to_all_single` of `tokens_per_expert` (L303-308): a few hundred bytes, latency-
        // bound; priced as the Megatron path's count gather. Forward only.
        e.push(
            Op::comm(
                "moe.count_gather",
                K::AllGather,
                GroupKind::Ep,
                ep,
                ep as f64 * experts * I32,
            ),
            &[],
        );
    }
    // Local permute (`ops.padded_gather(x, indices, bin_ids, bins, bins)`, L319): reads its row
    // count on the host; backward `padded_scatter` (no sync).
    let rows_moved = 2.0 * tk * d * p + tk * 3.0 * I32;
    let mut gather = Op::compute("moe.permute", K::Permute, 0.0, rows_moved).launches(passes);
    gather.host_syncs = passes;
    e.push(
        gather,
        &[Op::compute("moe.permute", K::Permute, 0.0, rows_moved).launches(passes)],
    );
    if ep > 1 {
        // Send and receive counts to the host (L329-330: two `.cpu()`), then the receive-side
        // bins (L336-375): cumsum, `arange`, `remainder`, `ops.replicate` (one int32 per
        // received assignment), sort, `sum`, cumsum. No gradient.
        let mut read = Op::compute("megablocks.count_read", K::Elementwise, 0.0, 4.0 * experts)
            .launches(2 * passes);
        read.host_syncs = 2 * passes;
        e.push(read, &[]);
        let setup = passes * (CUMSUM_LAUNCHES + 3 + SORT_LAUNCHES + 1 + CUMSUM_LAUNCHES);
        e.push(
            routed(
                Op::compute(
                    "megablocks.recv_bins",
                    K::Elementwise,
                    0.0,
                    recv * 5.0 * I32,
                )
                .launches(setup),
                RoutedBy::RankReceived,
                recv,
            ),
            &[],
        );
        // Tokens only: the weights stay here (no probs all-to-all).
        routed_all_to_all(e, "moe.dispatch", ep, recv * d * p * a2a_share, recv);
    }
    // `dMoE.permute_and_compute` (dmoe.py L161-183): round the counts up to blocks (`round_up`:
    // add, div, mul) and cumsum them, gather the received rows into the block-padded layout
    // (a host read of the padded row count), build the sparse topology and its transpose
    // (`topology`, `sparse_transpose`: arange, topology kernel, row indices, cast, sort,
    // gather, cast, zeros, histogram, cumsum, cat). No gradient but for the gather.
    let pad = el * expected_block_padding(recv / el);
    e.push(
        Op::compute(
            "megablocks.padded_bins",
            K::Elementwise,
            0.0,
            8.0 * el * I32,
        )
        .launches(passes * (3 + CUMSUM_LAUNCHES)),
        &[],
    );
    let moved = |rows: f64| 2.0 * rows * d * p + rows * 3.0 * I32;
    let mut sort = routed_padded(
        Op::compute("moe.sort_chunks", K::Permute, 0.0, moved(recv + pad)).launches(passes),
        recv,
        pad,
    );
    sort.host_syncs = passes;
    let unsort_bwd = sort.clone();
    let mut sort_bwd = sort.clone();
    sort_bwd.host_syncs = 0;
    e.push(sort, &[sort_bwd]);
    // Block-sparse topology: one int16 column index per nonzero block, (rows / 128) x
    // (ffn / 128) of them, written and then sorted with its transpose (~10 passes).
    let blocks = (recv + pad) / BLOCK_ROWS * (fe / BLOCK_ROWS);
    e.push(
        routed_padded(
            Op::compute(
                "megablocks.topology",
                K::Elementwise,
                0.0,
                blocks * 10.0 * I32,
            )
            .launches(passes * (4 + SORT_LAUNCHES + 3 + HISTOGRAM_LAUNCHES + CUMSUM_LAUNCHES + 1)),
            recv,
            pad,
        ),
        &[],
    );
    // Experts (`compute`, dmoe.py L136-137): `dsd(gelu(sdd(x, w1^T)), w2)` over the padded
    // rows; the block-sparse kernels run at 98.6 % of cuBLAS batched matmul on average (Gale et
    // al. 2023, Fig. 9), priced as the grouped GEMM.
    let fc1 = c.model.arch.act.fc1_matrices() * fe;
    let rows = recv + pad;
    let mut f1 = routed_padded(
        grouped_gemm("moe.expert_fc1", rows, fc1, d, el, p),
        recv,
        pad,
    );
    let mut f2 = routed_padded(
        grouped_gemm("moe.expert_fc2", rows, d, fe, el, p),
        recv,
        pad,
    );
    f1.launches = passes;
    f2.launches = passes;
    push_gemm(e, f1, p);
    let (a, f) = act_op(c, "moe.expert_act", rows * fe);
    e.mem(routed_padded(a, recv, pad), f);
    push_gemm(e, f2, p);
    // Un-permute out of the padded layout (`ops.padded_scatter`, no sync); its backward is a
    // `padded_gather` with its host read.
    let mut unsort = unsort_bwd;
    unsort.name = "moe.unsort_chunks";
    let mut unsort_fwd = unsort.clone();
    unsort_fwd.host_syncs = 0;
    e.push(unsort_fwd, &[unsort]);
    if ep > 1 {
        routed_all_to_all(e, "moe.combine", ep, recv * d * p * a2a_share, recv);
    }
    // Local un-permute (`ops.padded_scatter(x, indices, bin_ids, bins, bins)`, L411); backward
    // its `padded_gather` with the host read. Then the weights (`x * expert_weights`): forward
    // one multiply, backward the input gradient and the weight gradient (multiply, row sum).
    let mut unperm = Op::compute("moe.unpermute", K::Permute, 0.0, rows_moved).launches(passes);
    let unperm_fwd = unperm.clone();
    unperm.host_syncs = passes;
    e.push(unperm_fwd, &[unperm]);
    e.push(
        Op::compute(
            "megablocks.weight",
            K::Elementwise,
            tk * d,
            (2.0 * tk * d + tk) * p,
        ),
        &[Op::compute(
            "megablocks.weight",
            K::Elementwise,
            2.0 * tk * d,
            (4.0 * tk * d + 2.0 * tk) * p,
        )
        .launches(3)],
    );
    residual(e, c, "moe.residual");
}

#[cfg(test)]
mod tests {
    use super::super::{step_ops, MoeImpl, OpsConfig, Phase};
    use super::*;
    use crate::workload::{Arch, FfnKind, ModelSpec, ParallelPlan, Precision, Recompute};

    /// One MoE layer, d 256, 16 experts top-1 of width 512, seq 1024, on 8 ranks (ep 8).
    fn layer_ops(imp: MoeImpl, micro: u32) -> super::super::StepOps {
        let m = ModelSpec {
            name: "mb".into(),
            layers: 1,
            d_model: 256,
            heads: 4,
            kv_heads: 4,
            seq_len: 1024,
            vocab: 1000,
            ffn_hidden: 1024,
            ffn: FfnKind::Moe(MoeSpec {
                experts: 16,
                top_k: 1,
                capacity_factor: None,
                expert_ffn_hidden: 512,
                shared_experts: 0,
                moe_every: 1,
            }),
            arch: Arch::default(),
        };
        let p = ParallelPlan {
            dp: 8,
            tp: 1,
            pp: 1,
            ep: 8,
            micro_batch_seqs: micro,
            global_batch_seqs: 8 * micro,
            zero_stage: 0,
            recompute: Recompute::None,
            precision: Precision::Fp16,
        };
        let cfg = OpsConfig {
            moe_impl: imp,
            ..OpsConfig::default()
        };
        step_ops(&m, &p, &cfg).expect("valid plan")
    }

    fn syncs(s: &super::super::StepOps, phase: Phase) -> u32 {
        s.stages[0]
            .micro_batch()
            .filter(|o| o.phase == phase)
            .map(|o| o.host_syncs)
            .sum()
    }

    #[test]
    fn megablocks_sends_no_probs_and_reads_counts_and_padded_rows_on_the_host() {
        let mb = layer_ops(MoeImpl::Megablocks, 1);
        let meg = layer_ops(MoeImpl::Megatron, 1);
        let names = |s: &super::super::StepOps| -> Vec<&'static str> {
            s.stages[0].micro_batch().map(|o| o.name).collect()
        };
        assert!(names(&meg).contains(&"moe.dispatch_probs"));
        assert!(!names(&mb).contains(&"moe.dispatch_probs"));
        assert!(names(&mb).contains(&"megablocks.topology"));
        // Forward: local padded gather 1, two `.cpu()` 2, block-padded gather 1; backward: the
        // two padded scatters' gathers.
        assert_eq!(syncs(&mb, Phase::Forward), 4);
        assert_eq!(syncs(&mb, Phase::Backward), 2);
    }

    #[test]
    fn expert_rows_are_rounded_up_to_blocks_and_follow_the_load_by_an_offset() {
        // 1024 tokens per rank, 2 local experts: 512 rows each on average (>= a block), so
        // (128 - 1) / 2 padding rows per expert.
        let s = layer_ops(MoeImpl::Megablocks, 1);
        let fc1 = s.stages[0]
            .forward
            .iter()
            .find(|o| o.name == "moe.expert_fc1")
            .expect("fc1");
        let pad = 2.0 * 63.5;
        let n = Arch::default().act.fc1_matrices() * 512.0;
        let want = 2.0 * (1024.0 + pad) * n * 256.0;
        assert!(
            (fc1.flops - want).abs() < 1e-6 * want,
            "{} vs {want}",
            fc1.flops
        );
        // At twice the load the padding is the same offset, not twice it.
        let at = fc1.at_tokens(2048.0);
        let want2 = 2.0 * (2048.0 + pad) * n * 256.0;
        assert!(
            (at.flops - want2).abs() < 1e-6 * want2,
            "{} vs {want2}",
            at.flops
        );
        // Fewer rows than a block per expert: the rest of the block.
        assert_eq!(expected_block_padding(100.0), 28.0);
        assert_eq!(expected_block_padding(1000.0), 63.5);
    }
}
