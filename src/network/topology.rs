//! Topologies between accelerators: the fat-tree's leaves (oversubscription) and the TPU ICI torus.
//!
//! **Fat-tree.** A rail-optimised two-tier fat-tree of `radix`-port switches, as in NVIDIA's
//! DGX SuperPOD reference design (one NIC per GPU, NIC `k` of every node on leaf `k` of its
//! group): at oversubscription `o` (down:up ports = o:1) a leaf has
//! `⌊radix · o / (1 + o)⌋` down-ports, so that many nodes share a leaf ([`FatTree::nodes_per_leaf`]);
//! at 1:1 and 64 ports that is 32 nodes, the 32-node scalable unit of the SuperPOD
//! (jax-ml/scaling-book `gpus.md`: "SU = 32 nodes / 8 leaf"). Traffic between nodes under one
//! leaf runs at the NIC rate; traffic that crosses leaves shares the up-links and gets `1/o` of it.
//!
//! **Torus.** A slice of `dims[0] × dims[1] × dims[2]` chips (unused dimensions are 1), every
//! chip linked to its two neighbours in each dimension by one ICI link per direction; a job of
//! several slices joins them by the data-centre network (DCN, the fabric's `inter` link).
//! A communicator group occupies a sub-block of the slice ([`Torus::block`]); a dimension the
//! block spans entirely closes into a ring through the wrap-around link and is used in both
//! directions (2 links' worth per chip), a partial one is a line (1 link's worth), following
//! jax-ml/scaling-book `sharding.md` (bidirectional ring on an axis with wrap-around, half of it
//! without). Collectives run a ring per dimension:
//!
//! * reduce-scatter / all-gather of `B` bytes over a block with active dims `d_1..d_D`: the buffer
//!   is cut in `D` chunks, chunk `j` visits the dimensions in the order rotated by `j`, so every
//!   dimension's links carry one chunk at each phase; a chunk's time is
//!   `Σ_p (a_p − 1) / (a_1 ⋯ a_p) · (B/D) / w_p` and the slowest chunk sets the time. On a cube of
//!   side `a` with wrap-around this is `(n−1)/n · B / (D · 2 · link)` (scaling-book: "the bandwidth
//!   available is multiplied by the number of axes"). Latency: one `α` per ring step, `Σ (a_d − 1)`.
//! * all-reduce = reduce-scatter + all-gather.
//! * all-to-all is bisection-limited: across the cut perpendicular to the block's longest
//!   dimension half of every rank's bytes cross `(n / a) · c` links per direction (`c` = 2 with
//!   wrap-around), `T = L̄ · n · a / (4 (n − 1) · c · link)` for a mean per-rank load `L̄`; the most
//!   loaded rank also cannot inject faster than all its links, `L_max / (links · link)`.
//! * Groups spanning slices: the in-slice phase, then the slices' shards over the DCN
//!   (ring), then the in-slice phase again — added, not overlapped (XLA issues them as separate
//!   collectives; a stated assumption).

use super::link::Link;
use super::Group;

/// Achieved fraction of the ICI line rate in collectives: 1.0, assumed — no published measured
/// fraction was found; the per-link rates of the presets are themselves derived from Google's
/// published per-pod all-reduce bandwidth (see `link.rs`).
pub const ICI_EFFICIENCY: f64 = 1.0;

/// How the job's accelerators are joined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Topology {
    /// NVLink/NVSwitch island per node, a rail-optimised fat-tree of NICs between nodes.
    FatTree(FatTree),
    /// A TPU-style ICI torus per slice; slices joined by the fabric's `inter` link (DCN).
    Torus(Torus),
}

/// A two-tier rail-optimised fat-tree of `radix`-port switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FatTree {
    /// Ports per switch (QM9700: 64; QM8700: 40).
    pub radix: u32,
}

impl FatTree {
    /// Nodes under one leaf at oversubscription `o` (down:up = o:1): `⌊radix · o / (1 + o)⌋`,
    /// at least 1 [nodes].
    pub fn nodes_per_leaf(&self, oversubscription: f64) -> u32 {
        let o = if oversubscription.is_finite() {
            oversubscription.max(1.0)
        } else {
            1.0
        };
        let down = (f64::from(self.radix) * o / (1.0 + o)).floor();
        // `as` saturates; radix is a u32, so `down` fits.
        (down as u32).max(1)
    }

    /// Leaves a group of `nodes` consecutive nodes spans at oversubscription `o`.
    pub fn leaves_spanned(&self, nodes: u32, oversubscription: f64) -> u32 {
        nodes.max(1).div_ceil(self.nodes_per_leaf(oversubscription))
    }
}

/// One ICI torus slice: chips per dimension (unused dimensions 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Torus {
    /// Chips along each dimension of one slice.
    pub dims: [u32; 3],
}

/// A group's footprint on the torus: ranks per slice, slices spanned, and its sub-block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TorusPlacement {
    /// Ranks of the group in each slice it spans.
    pub per_slice: u32,
    /// Slices the group spans.
    pub slices: u32,
    /// The group's sub-block in a slice, per dimension (product = `per_slice`, or a 1-D ring
    /// `[per_slice, 1, 1]` when the block does not factor over the slice's dims).
    pub block: [u32; 3],
}

impl Torus {
    /// Chips in one slice.
    pub fn chips(&self) -> u64 {
        self.dims.iter().map(|&d| u64::from(d)).product()
    }

    /// Links per chip: two per dimension longer than 1 (a dimension of 2 has one neighbour,
    /// reached by one link per direction).
    pub fn links_per_chip(&self) -> u32 {
        self.dims
            .iter()
            .map(|&d| match d {
                0 | 1 => 0,
                2 => 1,
                _ => 2,
            })
            .sum()
    }

    /// Coordinates of chip `c` of a slice (dimension 0 fastest).
    pub fn coords(&self, c: u64) -> [u32; 3] {
        let (dx, dy) = (
            u64::from(self.dims[0].max(1)),
            u64::from(self.dims[1].max(1)),
        );
        // Each coordinate is below its dimension, a u32.
        [
            (c % dx) as u32,
            (c / dx % dy) as u32,
            (c / (dx * dy)) as u32,
        ]
    }

    /// Chip index of `coords` in a slice (the inverse of [`Torus::coords`]).
    pub fn chip_at(&self, coords: [u32; 3]) -> u64 {
        let (dx, dy) = (
            u64::from(self.dims[0].max(1)),
            u64::from(self.dims[1].max(1)),
        );
        u64::from(coords[0]) + dx * (u64::from(coords[1]) + dy * u64::from(coords[2]))
    }

    /// The dimension-ordered route from chip `a` to chip `b` of one slice (the ICI's routing:
    /// dimension 0 first, then 1, then 2; along each, the shorter way round the ring through
    /// the wrap-around link): `hop(chip, dim, negative)` for every link crossed, the link
    /// leaving `chip` along `dim`. A dimension of 2 has one link each way between its two
    /// chips, reported as positive. Returns the hop count.
    ///
    /// Ties (half-way round an even ring) go the positive way from a chip at an even
    /// coordinate along that dimension, the negative way from an odd one: the half-way pairs
    /// then load both directions alike (exactly when half the ring is even, as on rings of 4,
    /// 8, 16), as the published TPU all-to-all cost takes them (every link of a bidirectional
    /// ring equally loaded: an all-to-all costs a quarter of an all-gather, Austin et al. 2025,
    /// "How to Scale Your Model", Part 3 "Sharded Matrices"). All ties one way loaded the
    /// positive links with every half-way pair: 1.5x the balanced load on a ring of 4.
    pub fn route(&self, a: u64, b: u64, mut hop: impl FnMut(u64, usize, bool)) -> u32 {
        let mut at = self.coords(a);
        let to = self.coords(b);
        let mut hops = 0;
        for d in 0..3 {
            let n = self.dims[d];
            if n <= 1 || at[d] == to[d] {
                continue;
            }
            let fwd = (to[d] + n - at[d]) % n;
            let tie_neg = fwd == n - fwd && at[d] % 2 == 1;
            let (neg, steps) = if n == 2 || (fwd <= n - fwd && !tie_neg) {
                (false, fwd)
            } else {
                (true, n - fwd)
            };
            for _ in 0..steps {
                hop(self.chip_at(at), d, neg);
                at[d] = if neg {
                    (at[d] + n - 1) % n
                } else {
                    (at[d] + 1) % n
                };
                hops += 1;
            }
        }
        hops
    }

    /// The sub-block `n` ranks occupy in a slice: whole dimensions first (a group that fills a
    /// dimension closes its ring through the wrap-around), then the largest common factor with
    /// each remaining dimension; a size that does not factor is laid out as one ring `[n, 1, 1]`
    /// (a snake through the slice, neighbour hops only).
    pub fn block(&self, n: u32) -> [u32; 3] {
        let mut block = [1u32; 3];
        let mut rem = n.max(1);
        for (b, &d) in block.iter_mut().zip(&self.dims) {
            if d > 1 && rem.is_multiple_of(d) {
                *b = d;
                rem /= d;
            }
        }
        for (b, &d) in block.iter_mut().zip(&self.dims) {
            if *b == 1 && d > 1 && rem > 1 {
                let g = gcd(rem, d);
                *b = g;
                rem /= g;
            }
        }
        if rem > 1 {
            [n.max(1), 1, 1]
        } else {
            block
        }
    }

    /// Where a group sits. A group whose ranks are `stride` apart ([`Group::stride`]) spans
    /// `size × stride` consecutive chips (a data-parallel group of a pipelined job stays in its
    /// stage's chips, which may be one slice of several), laid out in consecutive slices; the
    /// group's region is taken to start on a slice boundary when it is a slice or more. Without
    /// a stride, `ranks_per_host` below `chips_per_host` means its ranks are strided: a group
    /// with one rank per host is taken to spread over the whole job (the outer mesh axis), so
    /// it spans every slice; otherwise its footprint is `size × chips_per_host /
    /// ranks_per_host` chips.
    pub fn place(&self, g: Group, chips_per_host: u32, job_chips: u64) -> TorusPlacement {
        let n = g.size.max(1);
        let slice = self.chips().max(1);
        let job_slices = job_chips.div_ceil(slice).max(1);
        let r = g.ranks_per_node.clamp(1, n);
        let footprint = if g.stride >= 1 {
            u64::from(n) * u64::from(g.stride)
        } else if r == 1 && n > 1 {
            job_chips
        } else {
            u64::from(n) * u64::from(chips_per_host.max(r)) / u64::from(r)
        };
        let slices = footprint
            .div_ceil(slice)
            .clamp(1, job_slices)
            .min(u64::from(n));
        // slices <= n <= u32::MAX
        let slices = slices as u32;
        let per_slice = n.div_ceil(slices);
        TorusPlacement {
            per_slice,
            slices,
            block: self.block(per_slice),
        }
    }

    /// Effective bandwidth per chip along dimension `i` of `block` [bytes/s]: two links' worth on
    /// a closed ring (the block spans the whole dimension, of 3 chips or more), one otherwise.
    fn dim_bw(&self, block: [u32; 3], i: usize, link: &Link) -> f64 {
        let wrap = block[i] == self.dims[i] && self.dims[i] >= 3;
        let c = if wrap { 2.0 } else { 1.0 };
        c * link.bw_bytes_per_s * ICI_EFFICIENCY
    }

    /// Reduce-scatter (or all-gather) of `bytes` within one slice over `block` [s], without the
    /// per-call launch latency: ring per dimension, the buffer in one chunk per active dimension.
    pub fn reduce_scatter_in_slice_s(&self, bytes: f64, block: [u32; 3], link: &Link) -> f64 {
        // Active dimensions, in order, without allocating (hot path).
        let mut dims = [0usize; 3];
        let mut d = 0;
        for (i, &a) in block.iter().enumerate() {
            if a > 1 {
                dims[d] = i;
                d += 1;
            }
        }
        self.rs_over(bytes, block, &dims[..d], link)
    }

    fn rs_over(&self, bytes: f64, block: [u32; 3], dims: &[usize], link: &Link) -> f64 {
        let d = dims.len();
        if d == 0 || bytes.is_nan() || bytes <= 0.0 {
            return 0.0;
        }
        let chunk = bytes / d as f64;
        let mut slowest = 0.0_f64;
        // Time each dimension's links are busy with all the chunks' phases on it.
        let mut on_dim = [0.0_f64; 3];
        for j in 0..d {
            let mut reached = 1.0;
            let mut t = 0.0;
            for p in 0..d {
                let i = dims[(j + p) % d];
                let a = f64::from(block[i]);
                reached *= a;
                let phase = (a - 1.0) / reached * chunk / self.dim_bw(block, i, link);
                t += phase;
                on_dim[i] += phase;
            }
            slowest = slowest.max(t);
        }
        // The chunks run at once, so a dimension's links carry every chunk's phase on it: on a
        // block of unequal sides the rotated chunks' phases on the longer dimension add up to
        // more than any one chunk's path (on [2, 4], the 4-line carries 3/4 + 3/8 of a chunk,
        // a chunk's path 7/8), and the links' rate, not the slowest chunk, bounds the ring.
        // Equal on a cube (every dimension carries every phase position once).
        let busiest = on_dim.iter().copied().fold(0.0_f64, f64::max);
        let steps: f64 = dims.iter().map(|&i| f64::from(block[i]) - 1.0).sum();
        slowest.max(busiest) + steps * link.latency_s
    }

    /// All-to-all within one slice over `block` [s], without the launch latency: the larger of
    /// the bisection bound for the mean per-rank load `mean_load` and the injection bound for
    /// the largest `max_load` [bytes], plus one `α` per ring step of the block.
    pub fn all_to_all_in_slice_s(
        &self,
        mean_load: f64,
        max_load: f64,
        block: [u32; 3],
        link: &Link,
    ) -> f64 {
        let n: f64 = block.iter().map(|&a| f64::from(a)).product();
        if n <= 1.0 || max_load.is_nan() || max_load <= 0.0 {
            return 0.0;
        }
        let mut bisection = 0.0_f64;
        let mut links = 0.0;
        let mut steps = 0.0;
        for i in 0..3 {
            let a = f64::from(block[i]);
            if block[i] <= 1 {
                continue;
            }
            // Per-chip bandwidth across the cut in one direction: c links of `link` each.
            let w = self.dim_bw(block, i, link);
            bisection = bisection.max(mean_load.max(0.0) * n * a / (4.0 * (n - 1.0) * w));
            links += if block[i] == 2 { 1.0 } else { 2.0 };
            steps += a - 1.0;
        }
        let inject = max_load / (links * link.bw_bytes_per_s * ICI_EFFICIENCY);
        bisection.max(inject) + steps * link.latency_s
    }
}

/// Greatest common divisor.
fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    const ICI: Link = Link {
        bw_bytes_per_s: 45e9,
        latency_s: 1e-6,
        busbw_efficiency: crate::network::INTER_BUSBW_EFFICIENCY,
    };

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-15 + 1e-9 * b.abs()
    }

    #[test]
    fn leaf_size_follows_radix_and_oversubscription() {
        let ft = FatTree { radix: 64 };
        assert_eq!(ft.nodes_per_leaf(1.0), 32); // SuperPOD scalable unit
        assert_eq!(ft.nodes_per_leaf(2.0), 42); // 42 down, 22 up
        assert_eq!(ft.nodes_per_leaf(3.0), 48);
        assert_eq!(ft.leaves_spanned(32, 1.0), 1);
        assert_eq!(ft.leaves_spanned(33, 1.0), 2);
        assert_eq!(FatTree { radix: 40 }.nodes_per_leaf(1.0), 20);
    }

    #[test]
    fn block_fills_whole_dimensions_first() {
        let t = Torus { dims: [12, 16, 16] };
        assert_eq!(t.block(12), [12, 1, 1]);
        assert_eq!(t.block(256), [1, 16, 16]);
        assert_eq!(t.block(3072), [12, 16, 16]);
        assert_eq!(t.block(8), [4, 2, 1]);
        assert_eq!(t.block(7), [7, 1, 1]); // does not factor: one snake ring
        assert_eq!(Torus { dims: [32, 32, 1] }.block(64), [32, 2, 1]);
        assert_eq!(t.links_per_chip(), 6);
        assert_eq!(Torus { dims: [32, 32, 1] }.links_per_chip(), 4);
    }

    /// Hand computation: a 4×4×4 cube with wrap-around, 45 GB/s per link, 1 µs per hop.
    /// Three chunks of B/3, each through three rings: (3/4 + 3/16 + 3/64) = 63/64 of a chunk at
    /// 2 × 45 GB/s; nine ring steps. B = 1 GB: 63/64 × (1e9/3) / 90e9 + 9 µs = 3.6458 ms + 9 µs.
    #[test]
    fn cube_reduce_scatter_matches_the_hand_computation() {
        let t = Torus { dims: [4, 4, 4] };
        let got = t.reduce_scatter_in_slice_s(1e9, [4, 4, 4], &ICI);
        let want = 63.0 / 64.0 * (1e9 / 3.0) / 90e9 + 9e-6;
        assert!(close(got, want), "{got} vs {want}");
        // = (n-1)/n · B / (D · 2 · link), scaling-book's multi-axis formula.
        assert!(close(got - 9e-6, 63.0 / 64.0 * 1e9 / (3.0 * 90e9)));
    }

    /// Uneven block: [4, 2, 1] on a 4×4×4 slice — dim 0 wraps (2 links' worth), dim 1 is a line
    /// of 2 (1 link). Chunk A (dim 0 then 1): 3/4·h/90e9 + 1/8·h/45e9; chunk B (dim 1 then 0):
    /// 1/2·h/45e9 + 3/8·h/90e9, h = B/2; B is slower.
    #[test]
    fn uneven_block_takes_the_slowest_chunk() {
        // (Dimension 0's links carry 3/4 + 3/8 of h at 90e9, dimension 1's 1/8 + 1/2 at 45e9:
        // both less than chunk B's path, which binds here.)
        let t = Torus { dims: [4, 4, 4] };
        let h: f64 = 1e9 / 2.0;
        let a: f64 = 0.75 * h / 90e9 + 0.125 * h / 45e9;
        let b = 0.5 * h / 45e9 + 0.375 * h / 90e9;
        let got = t.reduce_scatter_in_slice_s(1e9, [4, 2, 1], &ICI);
        assert!(close(got, a.max(b) + 4e-6), "{got}");
    }

    /// Uneven block [2, 4, 1] on a 2 × 8 slice (as a data-parallel group of 8 with tp 2): a
    /// dimension of 2 (one link) and a line of 4 (one link's rate). Each chunk's path is
    /// 1/2 + 3/8 = 3/4 + 1/8 = 7/8 of h = B/2, but the 4-line carries 3/8 + 3/4 = 9/8 of h:
    /// the line's links bind, not the slowest chunk.
    #[test]
    fn uneven_block_is_bound_by_its_busiest_dimensions_links() {
        let t = Torus { dims: [2, 8, 1] };
        let h: f64 = 1e9 / 2.0;
        let chunk = 0.875 * h / 45e9;
        let line = 1.125 * h / 45e9;
        let got = t.reduce_scatter_in_slice_s(1e9, [2, 4, 1], &ICI);
        assert!(close(got, line + 4e-6), "{got} vs {}", line + 4e-6);
        assert!(got > chunk + 4e-6 * 1.0001);
    }

    /// Uniform all-to-all on a closed ring of 8: bisection L·n·a / (4(n−1)·2·link) =
    /// L·64/(28·90e9). By hop count: a rank's L/7 to each peer travels 1,1,2,2,3,3,4 hops,
    /// 8·(16/7)·L link-bytes over 16 directed links of 45 GB/s = 8L/(7·45e9), the same.
    /// Injection L/(2·45e9) is smaller.
    #[test]
    fn ring_all_to_all_is_bisection_bound() {
        let t = Torus { dims: [8, 1, 1] };
        let l = 1e8;
        let got = t.all_to_all_in_slice_s(l, l, [8, 1, 1], &ICI);
        let want = l * 64.0 / (28.0 * 90e9) + 7e-6;
        assert!(close(want - 7e-6, 8.0 * l / (7.0 * 45e9)));
        assert!(close(got, want), "{got} vs {want}");
        // A hot rank receiving 4× the mean is injection-bound.
        let hot = t.all_to_all_in_slice_s(l, 4.0 * l, [8, 1, 1], &ICI);
        assert!(close(hot, 4.0 * l / 90e9 + 7e-6), "{hot}");
    }

    #[test]
    fn dimension_ordered_routes_take_the_shorter_way_round_each_ring() {
        // Why: the event level puts a transfer on every ICI link it crosses; the hop count is
        // the torus distance (sum over dimensions of the ring distance), dimension 0 first.
        let t = Torus { dims: [4, 4, 4] };
        let mut links = Vec::new();
        let a = t.chip_at([0, 0, 0]);
        let b = t.chip_at([3, 2, 1]);
        let hops = t.route(a, b, |c, d, neg| links.push((t.coords(c), d, neg)));
        // x: 0 -> 3 is one hop back through the wrap-around; y: 0 -> 2 two hops (tie, from an
        // even coordinate: +); z: one hop.
        assert_eq!(hops, 4);
        assert_eq!(
            links,
            vec![
                ([0, 0, 0], 0, true),
                ([3, 0, 0], 1, false),
                ([3, 1, 0], 1, false),
                ([3, 2, 0], 2, false),
            ]
        );
        // A tie from an odd coordinate goes the negative way (y: 1 -> 3 through 0).
        let mut odd = Vec::new();
        t.route(t.chip_at([0, 1, 0]), t.chip_at([0, 3, 0]), |c, d, neg| {
            odd.push((t.coords(c), d, neg))
        });
        assert_eq!(odd, vec![([0, 1, 0], 1, true), ([0, 0, 0], 1, true)]);
        // Every pair: hops = torus distance, the same both ways.
        let dist = |x: u32, y: u32, n: u32| {
            let f = (y + n - x) % n;
            f.min(n - f)
        };
        let t = Torus { dims: [8, 2, 3] };
        for a in 0..t.chips() {
            for b in 0..t.chips() {
                let (ca, cb) = (t.coords(a), t.coords(b));
                let want: u32 = (0..3).map(|d| dist(ca[d], cb[d], t.dims[d])).sum();
                assert_eq!(t.route(a, b, |_, _, _| {}), want, "{ca:?} -> {cb:?}");
                assert_eq!(t.route(b, a, |_, _, _| {}), want);
            }
        }
        // The longest route in an 8 x 8 x 1 torus: 4 + 4 hops.
        let t = Torus { dims: [8, 8, 1] };
        assert_eq!(t.route(0, t.chip_at([4, 4, 0]), |_, _, _| {}), 8);
    }

    #[test]
    fn strided_groups_span_every_slice_and_contiguous_ones_do_not() {
        let t = Torus { dims: [12, 16, 16] };
        let job = 6144;
        // TP group of 12, 4 per host: 12 chips in one slice.
        let tp = t.place(Group::new(12, 4), 4, job);
        assert_eq!((tp.slices, tp.per_slice, tp.block), (1, 12, [12, 1, 1]));
        // DP group of 512, one per host: both pods, 256 each.
        let dp = t.place(Group::new(512, 1), 4, job);
        assert_eq!((dp.slices, dp.per_slice, dp.block), (2, 256, [1, 16, 16]));
        // One slice only: never more slices than the job has.
        let one = t.place(Group::new(512, 1), 4, 3072);
        assert_eq!(one.slices, 1);
    }

    #[test]
    fn a_strided_group_spans_its_ranks_chips_not_the_whole_job() {
        // Why: a data-parallel group of a job pipelined over 4 slices (Gopher: pp 4 across 4
        // pods) has one rank per host but all its ranks in its stage's slice; placed over
        // every slice, its in-pod gradient reduce-scatter was priced across the DCN.
        let t = Torus { dims: [16, 16, 16] };
        let job = 4 * 4096;
        // tp 8, dp 512, pp 4: the DP group's ranks are 8 apart, 4096 chips, one slice.
        let dp = t.place(Group::strided(512, 1, 8), 4, job);
        assert_eq!((dp.slices, dp.per_slice, dp.block), (1, 512, [16, 16, 2]));
        // The pipeline group (ranks tp x dp = 4096 apart): one rank in each slice.
        let pp = t.place(Group::strided(4, 1, 4096), 4, job);
        assert_eq!((pp.slices, pp.per_slice), (4, 1));
        // A DP group over the whole job (pp 1, tp 8, dp 2048) still spans every slice.
        let all = t.place(Group::strided(2048, 1, 8), 4, job);
        assert_eq!((all.slices, all.per_slice), (4, 512));
        // Contiguous ranks (TP): as without a stride.
        let tp = t.place(Group::strided(16, 4, 1), 4, job);
        assert_eq!(tp, t.place(Group::new(16, 4), 4, job));
    }
}
