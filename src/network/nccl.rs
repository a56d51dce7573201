//! NCCL's all-reduce, reduce-scatter and all-gather on a fat-tree: which algorithm NCCL's tuner
//! picks (ring or tree) and the bytes each puts through every GPU's NVLink port and NIC.
//!
//! Read from NVIDIA/nccl (tag v2.18.3-1, the 2023 release of the validation runs; the lines used
//! are unchanged at the 2026 head):
//!
//! * **Ring** (`src/graph/tuning.cc`, `src/device/all_reduce.h`): one flat ring over all `n`
//!   ranks per channel, NVLink between the `r` GPUs of a node and one NIC hop out of each of the
//!   `m` nodes. Every rank sends `k(n-1)/n · B` on its ring edge (`k` = 2 for an all-reduce, 1
//!   for a reduce-scatter or all-gather). Of a node's `r` edges per ring, `r-1` are NVLink and
//!   one is a NIC; the channels rotate which GPU leaves the node, so per GPU the NIC carries
//!   `k(n-1)/n · B/r` and NVLink `(r-1)/r` of `k(n-1)/n · B` (on one node every edge is NVLink).
//!   The tuner's busBw is the channels' per-channel bandwidth summed, i.e. the node's NICs
//!   together; `busBw / (r · NIC) = 1` is what nccl-tests shows (192 GB/s on 8 × HDR,
//!   github.com/NVIDIA/nccl/issues/1576). Latency: `(nsteps − nInterSteps)` NVLink steps and
//!   `nInterSteps` network steps, `nsteps = k(n-1)`, `nInterSteps = k(m-1)` (tuning.cc).
//! * **Tree** (all-reduce only; `src/graph/trees.cc` `ncclGetDtree`): a chain through the node's
//!   GPUs and a double binary tree over the nodes, each tree carrying half the buffer. A node
//!   interior in one tree (two children) and a leaf in the other sends `B/2 + 2·B/2 + B/2 = 2B`
//!   through its NICs; with 2 nodes each tree is one edge (`B` per node), with 3 the trees are
//!   chains (`1.5B`) — [`tree_node_bytes_factor`], checked against a port of `ncclGetDtree`.
//!   The chain moves `B` up and `B` down each NVLink hop: `2(r-1)/r · B` per GPU. The tuner
//!   derates the tree's busBw by 0.92 ([`TREE_BUSBW_FACTOR`]); latency
//!   `2((r-1)·intra + log2i(m)·inter)` (tuning.cc).
//! * **Choice.** NCCL's tuner takes, per call, the algorithm of least `latency + bytes / bw`
//!   (`ncclTopoGetAlgoTime`, `getAlgoInfo` in `enqueue.cc`). Its bandwidth for `m <= 2` is the
//!   graph's intra bandwidth, which the search lets grow to twice the inter bandwidth for trees
//!   ("increase bwIntra for trees (2 nodes or collnet)", `search.cc`): the tuner sees the 2-node
//!   tree's halved NIC bytes but not the 3-node one's `1.5B`. moesim prices the same choice: both
//!   algorithms' times from the ports' bytes, the tree's NIC bytes counted as the tuner counts
//!   them (`B` at 2 nodes, `2B` from 3), then charges the bytes the chosen algorithm really moves.
//!   Reduce-scatter and all-gather are ring-only (tuning.cc skips Tree for them).
//!
//! Not modelled: the LL/LL128 protocols (the link latencies α are NCCL's LL128 per-step values,
//! see `link.rs`; gradient buckets are large enough for Simple), NVLS (NVLink SHARP, H100
//! NVSwitch, NCCL >= 2.17), CollNet (in-network SHARP) and PAT (NCCL >= 2.23, one GPU per node),
//! and the tuner's per-channel caps (`perChMaxTreeBw`), which need the channel count.

/// NCCL's tree all-reduce bus-bandwidth refinement, `busBw * .92` (NVIDIA/nccl
/// src/graph/tuning.cc, `if (a == NCCL_ALGO_TREE) busBw = std::min(busBw*.92, ...)`, v2.18.3).
pub const TREE_BUSBW_FACTOR: f64 = 0.92;

/// A collective NCCL runs as a ring or a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collective {
    /// All-reduce of a `B`-byte buffer.
    AllReduce,
    /// Reduce-scatter of a `B`-byte input (each rank keeps `B/n`).
    ReduceScatter,
    /// All-gather into a `B`-byte output (each rank gives `B/n`).
    AllGather,
}

/// NCCL's algorithm for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    /// Flat ring over all ranks.
    Ring,
    /// Intra-node chain plus a double binary tree over the nodes.
    Tree,
}

/// What one collective puts on one GPU's ports and the sequential steps its latency pays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CollPlan {
    /// The algorithm.
    pub algo: Algo,
    /// Bytes the GPU sends (and receives) through its NVLink port [bytes].
    pub nvlink_bytes: f64,
    /// Bytes through the GPU's NIC per direction [bytes].
    pub nic_bytes: f64,
    /// Fraction of the ports' bus bandwidth the algorithm reaches [dimensionless] (1 ring,
    /// [`TREE_BUSBW_FACTOR`] tree).
    pub bw_factor: f64,
    /// Sequential NVLink steps (one NVLink α each).
    pub intra_steps: f64,
    /// Sequential network steps (one NIC α each).
    pub inter_steps: f64,
}

impl CollPlan {
    /// Time of the collective without the launch latency [s]: the steps' latencies plus the
    /// busier port at its bandwidth (`bi` NVLink, `be` NIC [bytes/s]; NCCL pipelines the two).
    pub fn time_s(&self, bi: f64, ai: f64, be: f64, ae: f64) -> f64 {
        let bw = (self.nvlink_bytes / bi).max(self.nic_bytes / be) / self.bw_factor;
        self.intra_steps * ai + self.inter_steps * ae + bw
    }

    /// NVLink bytes as seen at the port's full bus bandwidth (the tree's derating folded into
    /// the bytes) [bytes]: what an event-level flow at the link's rate must carry.
    pub fn nvlink_flow_bytes(&self) -> f64 {
        self.nvlink_bytes / self.bw_factor
    }

    /// NIC bytes as seen at the port's full bus bandwidth [bytes] (see `nvlink_flow_bytes`).
    pub fn nic_flow_bytes(&self) -> f64 {
        self.nic_bytes / self.bw_factor
    }
}

/// NCCL's `log2i`: ⌊log2 n⌋ for n >= 1 (src/include/utils.h).
fn log2i(n: u32) -> f64 {
    f64::from(n.max(1).ilog2())
}

/// Bytes a node sends through its NICs in a double-binary-tree all-reduce of a `B`-byte
/// buffer over `m` nodes, in units of `B` (the busiest node): 0 on one node, 1 on 2, 1.5 on 3
/// (both trees are chains), 2 from 4 on (interior in one tree, leaf in the other).
pub fn tree_node_bytes_factor(m: u32) -> f64 {
    match m {
        0 | 1 => 0.0,
        2 => 1.0,
        3 => 1.5,
        _ => 2.0,
    }
}

/// The ring's plan: `k` = 2 (all-reduce) or 1, `n` ranks, `r` per node on `m` nodes.
pub fn ring(c: Collective, bytes: f64, n: u32, r: u32, m: u32) -> CollPlan {
    let k = if c == Collective::AllReduce { 2.0 } else { 1.0 };
    let (nf, rf, mf) = (f64::from(n), f64::from(r), f64::from(m));
    let edge = k * (nf - 1.0) / nf * bytes;
    let (nvlink, nic) = if m <= 1 {
        (edge, 0.0)
    } else {
        (edge * (rf - 1.0) / rf, edge / rf)
    };
    CollPlan {
        algo: Algo::Ring,
        nvlink_bytes: nvlink,
        nic_bytes: nic,
        bw_factor: 1.0,
        intra_steps: k * (nf - mf),
        inter_steps: k * (mf - 1.0),
    }
}

/// The tree all-reduce's plan with the node's NIC bytes `factor · B` spread over its `r` NICs.
fn tree_with(bytes: f64, r: u32, m: u32, factor: f64) -> CollPlan {
    let rf = f64::from(r);
    CollPlan {
        algo: Algo::Tree,
        nvlink_bytes: 2.0 * (rf - 1.0) / rf * bytes,
        nic_bytes: factor * bytes / rf,
        bw_factor: TREE_BUSBW_FACTOR,
        intra_steps: 2.0 * (rf - 1.0),
        inter_steps: 2.0 * log2i(m),
    }
}

/// The tree all-reduce's plan (the bytes it really moves), `r` ranks per node on `m` nodes.
pub fn tree(bytes: f64, r: u32, m: u32) -> CollPlan {
    tree_with(bytes, r, m, tree_node_bytes_factor(m))
}

/// The plan NCCL picks for collective `c` of `bytes` over `n` ranks, `r` per node on `m` nodes,
/// with NVLink at `bi` [bytes/s] and α `ai` [s], the NIC at `be` and α `ae` (see the module doc).
pub fn choose(c: Collective, bytes: f64, (n, r, m): (u32, u32, u32), lat_bw: [f64; 4]) -> CollPlan {
    let [bi, ai, be, ae] = lat_bw;
    let ring = ring(c, bytes, n, r, m);
    if c != Collective::AllReduce || m <= 1 {
        // One node: the chain's latency equals the ring's and its bandwidth is 0.92 of it,
        // so NCCL's tuner never prefers it; reduce-scatter and all-gather have no tree.
        return ring;
    }
    let seen = tree_with(bytes, r, m, if m <= 2 { 1.0 } else { 2.0 });
    if seen.time_s(bi, ai, be, ae) < ring.time_s(bi, ai, be, ae) {
        tree(bytes, r, m)
    } else {
        ring
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Port of NCCL's `ncclGetBtree` (src/graph/trees.cc): (parent, child0, child1), -1 = none.
    fn btree(nranks: i64, rank: i64) -> (i64, i64, i64) {
        let mut bit = 1;
        while bit < nranks {
            if bit & rank != 0 {
                break;
            }
            bit <<= 1;
        }
        if rank == 0 {
            return (-1, -1, if nranks > 1 { bit >> 1 } else { -1 });
        }
        let mut up = (rank ^ bit) | (bit << 1);
        if up >= nranks {
            up = rank ^ bit;
        }
        let mut lowbit = bit >> 1;
        let down0 = if lowbit == 0 { -1 } else { rank - lowbit };
        let mut down1 = if lowbit == 0 { -1 } else { rank + lowbit };
        while down1 >= nranks {
            down1 = if lowbit == 0 { -1 } else { rank + lowbit };
            lowbit >>= 1;
        }
        (up, down0, down1)
    }

    /// Port of `ncclGetDtree`: the second tree mirrors the first (even counts) or shifts it.
    fn dtree(n: i64, rank: i64) -> [(i64, i64, i64); 2] {
        let t0 = btree(n, rank);
        let map = |x: i64, f: &dyn Fn(i64) -> i64| if x == -1 { -1 } else { f(x) };
        let t1 = if n % 2 == 1 {
            let (u, d0, d1) = btree(n, (rank - 1 + n) % n);
            let sh = |x| (x + 1) % n;
            (map(u, &sh), map(d0, &sh), map(d1, &sh))
        } else {
            let (u, d0, d1) = btree(n, n - 1 - rank);
            let mi = |x| n - 1 - x;
            (map(u, &mi), map(d0, &mi), map(d1, &mi))
        };
        [t0, t1]
    }

    /// Hand count over NCCL's own trees: each tree carries half the buffer; a node sends its
    /// half up to its parent and down to each child. The busiest node's total matches
    /// `tree_node_bytes_factor` for 2 to 64 nodes, and every node has a parent or a child.
    #[test]
    fn tree_node_bytes_match_nccl_double_binary_trees() {
        for m in 2..=64i64 {
            let mut busiest = 0.0f64;
            for rank in 0..m {
                let mut sent = 0.0;
                let mut recv = 0.0;
                for (up, d0, d1) in dtree(m, rank) {
                    let kids = [d0, d1].iter().filter(|&&d| d >= 0).count() as f64;
                    let has_up = if up >= 0 { 1.0 } else { 0.0 };
                    sent += 0.5 * (has_up + kids);
                    recv += 0.5 * (kids + has_up);
                    assert!(up >= 0 || kids > 0.0, "m {m} rank {rank} isolated");
                }
                busiest = busiest.max(sent).max(recv);
            }
            assert_eq!(busiest, tree_node_bytes_factor(m as u32), "m = {m}");
        }
    }

    /// Hand count, 4 nodes × 8 GPUs, 1 GB all-reduce: the ring sends 2·31/32 GB per GPU on its
    /// edge, 1/8 of it through the NIC (242.1875 MB) and 7/8 over NVLink; the tree puts 2 GB per
    /// node through the 8 NICs (250 MB each) and 2·7/8 GB over each NVLink port; a 2-node tree
    /// 125 MB per NIC, a 3-node one 187.5 MB. The old hierarchical count, `2(m-1)/m · B/r`,
    /// was 187.5 MB on 4 nodes: 23 % below the ring's.
    #[test]
    fn bytes_per_nic_match_the_hand_count() {
        let b = 1e9;
        let r = ring(Collective::AllReduce, b, 32, 8, 4);
        assert!((r.nic_bytes - 242.1875e6).abs() < 1.0, "{}", r.nic_bytes);
        assert!((r.nvlink_bytes - 2.0 * 31.0 / 32.0 * 7.0 / 8.0 * b).abs() < 1.0);
        assert_eq!((r.intra_steps, r.inter_steps), (56.0, 6.0));
        let t = tree(b, 8, 4);
        assert!((t.nic_bytes - 250e6).abs() < 1.0);
        assert!((t.nvlink_bytes - 1.75e9).abs() < 1.0);
        assert_eq!((t.intra_steps, t.inter_steps), (14.0, 4.0));
        assert!((tree(b, 8, 2).nic_bytes - 125e6).abs() < 1.0);
        assert!((tree(b, 8, 3).nic_bytes - 187.5e6).abs() < 1.0);
        // Reduce-scatter: one pass; one node: every edge on NVLink.
        let rs = ring(Collective::ReduceScatter, b, 32, 8, 4);
        assert!((rs.nic_bytes - 31.0 / 32.0 * b / 8.0).abs() < 1.0);
        assert_eq!((rs.intra_steps, rs.inter_steps), (28.0, 3.0));
        let one = ring(Collective::AllReduce, b, 8, 8, 1);
        assert_eq!((one.nic_bytes, one.nvlink_bytes), (0.0, 1.75e9));
        // One GPU per node: every edge is a NIC hop.
        let spread = ring(Collective::AllGather, b, 16, 1, 16);
        assert_eq!(spread.nvlink_bytes, 0.0);
        assert!((spread.nic_bytes - 15.0 / 16.0 * b).abs() < 1.0);
    }

    /// NCCL's choice on H100 nodes (NVLink 370 GB/s, α 1.9 µs; NDR 48 GB/s, α 4 µs): small
    /// buffers across nodes take the tree (fewer sequential steps), large ones on 16 nodes the
    /// ring (the tree's 2B per node and 0.92); on 2 nodes the tree halves the NIC bytes but is
    /// NVLink-bound at 1.75B/0.92, so a large buffer rides the ring; one node is always ring;
    /// reduce-scatter always ring.
    #[test]
    fn algorithm_choice_follows_size_and_nodes() {
        let lb = [370e9, 1.9e-6, 48e9, 4e-6];
        let ar = Collective::AllReduce;
        assert_eq!(choose(ar, 4e3, (128, 8, 16), lb).algo, Algo::Tree);
        assert_eq!(choose(ar, 64e6, (128, 8, 16), lb).algo, Algo::Tree);
        assert_eq!(choose(ar, 8e9, (128, 8, 16), lb).algo, Algo::Ring);
        assert_eq!(choose(ar, 4.0, (16, 8, 2), lb).algo, Algo::Tree);
        assert_eq!(choose(ar, 1e9, (16, 8, 2), lb).algo, Algo::Ring);
        assert_eq!(choose(ar, 4.0, (8, 8, 1), lb).algo, Algo::Ring);
        assert_eq!(choose(ar, 1e9, (8, 8, 1), lb).algo, Algo::Ring);
        let rs = Collective::ReduceScatter;
        assert_eq!(choose(rs, 4.0, (128, 8, 16), lb).algo, Algo::Ring);
        // 512 GPUs, 64 nodes: the ring's 2·448 NVLink steps make the tree win up to GBs.
        assert_eq!(choose(ar, 1e9, (512, 8, 64), lb).algo, Algo::Tree);
        // A NIC-bound 2-node fabric (EFA, 3.7 GB/s per GPU): the tree wins at every size.
        let efa = [246.7e9, 1.9e-6, 3.7e9, 4e-6];
        assert_eq!(choose(ar, 1e9, (16, 8, 2), efa).algo, Algo::Tree);
        // The chosen plan is never slower than the other one as the tuner counts it.
        for b in [1e2, 1e5, 1e8, 1e10] {
            let p = choose(ar, b, (64, 8, 8), lb);
            let other = if p.algo == Algo::Ring {
                tree(b, 8, 8)
            } else {
                ring(ar, b, 64, 8, 8)
            };
            assert!(
                p.time_s(lb[0], lb[1], lb[2], lb[3]) <= other.time_s(lb[0], lb[1], lb[2], lb[3])
            );
        }
    }
}
