//! Which links a transfer crosses: each simulated GPU's NVLink and NIC ports, its node's NICs
//! together (node-pair all-to-all flows), the fat-tree's leaf up-links when the fabric is
//! oversubscribed, and the torus's neighbour links under dimension-ordered routing.
//!
//! **Fat-tree.** Rail-optimised (see `network::topology`): the nodes under one set of rail
//! leaves form a scalable unit (SU, [`Fabric::nodes_per_leaf`] nodes). Traffic between nodes of
//! one SU stays on its leaves; traffic between SUs goes up the source SU's leaves, across the
//! spine and down the destination SU's leaves. The SU's up-links (all its rails together) are
//! one resource per direction of `endpoints × NIC rate / oversubscription`, `endpoints` the
//! simulated GPUs in the SU: each simulated GPU stands for identical twins (TP peers on their own
//! rails' leaves, other expert-parallel groups with the same traffic), so its fair part of the
//! up-links is its own NIC's `1/o`. The spine is taken as non-blocking (ECMP spreads the leaves'
//! up-links over it), so it is not a resource of its own. At 1:1 the up-links cannot bind a flow
//! that its NICs do not (full bisection) and are left out: equal sharing, which this model uses,
//! would otherwise make them a false bottleneck for uneven flow counts.
//!
//! **Torus.** Inside a slice a transfer takes the dimension-ordered route (x, then y, then z,
//! each the shorter way round the ring, as the TPU ICI routes), one link resource per chip,
//! dimension and direction at the ICI rate; between slices it goes over the hosts' DCN NICs.
//! The simulated GPUs' twins use their own (translated) links, which these links do not carry:
//! where twins' routes cross the simulated ones this is optimistic.
//!
//! **Torus ring collectives** ([`TorusRing`]) follow `network::topology`'s model, which the fast
//! path prices: the group takes the sub-block `Torus::place` gives it, runs a ring per active
//! dimension of the block (the buffer cut in one chunk per dimension, chunk `j` visiting the
//! dimensions in the order rotated by `j`), and the slices' shards ring over the DCN (the
//! hosts' NICs). Each simulated chip sends, along each dimension, what the chunks' phases on
//! that dimension carry in total: on a dimension the block spans whole (3 chips or more) half
//! each way round (its two out-links, a bidirectional ring through the wrap-around), on a
//! partial one (a line) over both out-links at one link's rate, on a dimension of 2 over its
//! one link. Where the fast path sums a chunk's phases and takes the slowest chunk, the flows
//! here see each dimension's whole load: equal on a cube (every dimension carries every phase
//! position once), longer on a block of unequal sides (where the rotated chunks' phases on
//! one dimension overlap, which the fast path's sum leaves out), and the DCN phase runs
//! alongside the in-slice one (the fast path adds them).

use super::graph::{Graph, NONE};
use super::links::{link, LinkId, Port};
use crate::network::{Fabric, Group, Topology, Torus};

/// Per-node ports of the node-pair all-to-all flows: the node's NICs sending / receiving, and
/// (torus) its chips' ICI injection sending / receiving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NodePort {
    NicOut = 0,
    NicIn = 1,
    IciOut = 2,
    IciIn = 3,
}

/// A ring collective's traffic on a torus, per simulated chip (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct TorusRing {
    /// Per dimension: bytes the chip sends along it [bytes] and how (0 unused, 1 a line, 2 a
    /// closed ring, 3 a dimension of 2).
    pub dims: [(f64, u8); 3],
    /// Bytes each chip sends over the DCN between slices [bytes].
    pub dcn: f64,
    /// Ring steps inside the slice (`Σ (a_d − 1)`, one ICI latency each) and across slices.
    pub steps: f64,
    pub dcn_steps: f64,
}

/// Flows of one chip in a torus ring collective: two per dimension.
pub(super) const TORUS_RING_FLOWS: usize = 6;

/// The link layout of one step: ids, bandwidths and routes.
#[derive(Clone, Debug, Default)]
pub(super) struct Paths {
    /// First simulated node (nodes of the simulated GPUs are consecutive from it).
    node0: u32,
    nodes: u32,
    /// Link id of the first node port, the first SU up-link, the first torus link.
    base_node: u32,
    base_su: u32,
    base_torus: u32,
    /// Per simulated GPU: its node (global), its scalable unit, its chip (global rank).
    node: Vec<u32>,
    su: Vec<u32>,
    chip: Vec<u64>,
    /// SU of the first simulated node (SU link ids count from it).
    su0: u32,
    /// Up-links modelled (fat-tree, oversubscription > 1).
    uplinks: bool,
    torus: Option<Torus>,
    /// Longest path [links].
    pub max_len: usize,
}

/// A path being built (up to [`Paths::max_len`] links).
pub(super) type PathBuf = Vec<LinkId>;

impl Paths {
    /// Only the simulated GPUs' four ports (unit tests of the flow model).
    #[cfg(test)]
    pub fn ports(gpus: usize) -> Paths {
        Paths {
            base_node: (gpus * 4) as u32,
            base_su: (gpus * 4) as u32,
            base_torus: (gpus * 4) as u32,
            max_len: 2,
            ..Paths::default()
        }
    }

    /// The layout of `g`'s simulated GPUs on `fabric`; `bw` gets each link's bandwidth
    /// [bytes/ns].
    pub fn rebuild(&mut self, g: &Graph, fabric: &Fabric, bw: &mut Vec<f64>) {
        let n = g.gpus();
        let (ep, tp, dp) = (g.ep as u64, g.tp as u64, g.dp as u64);
        self.chip.clear();
        // Megatron-LM rank order (as `Graph::node`): TP innermost, then DP, then stages.
        self.chip
            .extend((0..n as u64).map(|x| tp * (x % ep + dp * (x / ep))));
        self.node.clear();
        self.node.extend_from_slice(&g.node);
        let npl = fabric.nodes_per_leaf().max(1);
        self.su.clear();
        self.su.extend(self.node.iter().map(|&x| x / npl));
        self.node0 = self.node.iter().copied().min().unwrap_or(0);
        self.nodes = self
            .node
            .iter()
            .copied()
            .max()
            .map_or(0, |m| m + 1 - self.node0);
        self.su0 = self.node0 / npl;
        let sus = self
            .su
            .iter()
            .copied()
            .max()
            .map_or(0, |m| m + 1 - self.su0);
        self.torus = match fabric.topology {
            Topology::Torus(t) => Some(t),
            Topology::FatTree(_) => None,
        };
        self.uplinks = self.torus.is_none() && fabric.oversubscription > 1.0;
        self.base_node = (n * 4) as u32;
        self.base_su = self.base_node + 4 * self.nodes;
        self.base_torus = self.base_su + if self.uplinks { 2 * sus } else { 0 };
        // Links for every chip of the slices the simulated chips lie in, not only up to the
        // highest simulated chip: a dimension-ordered route passes through chips between (and
        // beyond) its ends — on a 4 x 8 slice chip 16 reaches chip 0 through chips 20, 24 and 28.
        let chips = match self.torus {
            Some(t) => {
                let slice = t.chips().max(1);
                self.chip
                    .iter()
                    .copied()
                    .max()
                    .map_or(0, |m| (m / slice + 1) * slice)
            }
            None => 0,
        };
        let total = self.base_torus as usize + 6 * chips as usize;
        self.max_len = match self.torus {
            Some(t) => 2 + t.dims.iter().map(|&d| (d / 2) as usize).sum::<usize>(),
            None => 4,
        };
        // Effective rates as `network::Fabric` prices them: the NIC at its leaf rate (the
        // oversubscription is the up-links'), the DCN between torus slices at its own.
        let nvl = fabric.intra_bw_bytes_per_s() * 1e-9;
        let nic = match self.torus {
            Some(_) => fabric.inter_bw_bytes_per_s(),
            None => fabric.leaf_bw_bytes_per_s(),
        } * 1e-9;
        let ici_per_chip = self
            .torus
            .map_or(0.0, |t| f64::from(t.links_per_chip()) * nvl);
        bw.clear();
        bw.resize(total, 0.0);
        for x in 0..n {
            bw[link(x, Port::NvlOut) as usize] = nvl;
            bw[link(x, Port::NvlIn) as usize] = nvl;
            bw[link(x, Port::NicOut) as usize] = nic;
            bw[link(x, Port::NicIn) as usize] = nic;
            let nb = (self.base_node + 4 * (self.node[x] - self.node0)) as usize;
            bw[nb + NodePort::NicOut as usize] += nic;
            bw[nb + NodePort::NicIn as usize] += nic;
            bw[nb + NodePort::IciOut as usize] += ici_per_chip;
            bw[nb + NodePort::IciIn as usize] += ici_per_chip;
            if self.uplinks {
                let s = (self.base_su + 2 * (self.su[x] - self.su0)) as usize;
                let up = nic / fabric.oversubscription;
                bw[s] += up;
                bw[s + 1] += up;
            }
        }
        for l in bw[self.base_torus as usize..].iter_mut() {
            *l = nvl;
        }
    }

    /// Whether chips `a` and `b` (global) are in one torus slice.
    fn same_slice(t: &Torus, a: u64, b: u64) -> bool {
        let s = t.chips().max(1);
        a / s == b / s
    }

    /// Up-links of SU `from` and down-links of SU `to` into `out`, if the transfer crosses SUs.
    fn leaves(&self, from: u32, to: u32, out: &mut PathBuf) {
        if self.uplinks && from != to {
            out.push(self.base_su + 2 * (from - self.su0));
            out.push(self.base_su + 2 * (to - self.su0) + 1);
        }
    }

    /// The links of a transfer from simulated GPU `a` to `b` (`a != b`) into `out`; returns
    /// whether it stays in `a`'s node (NVLink latency) or leaves it.
    pub fn gpu_to_gpu(&self, a: usize, b: usize, out: &mut PathBuf) -> bool {
        out.clear();
        if let Some(t) = &self.torus {
            let (ca, cb) = (self.chip[a], self.chip[b]);
            if Self::same_slice(t, ca, cb) {
                let s = t.chips().max(1);
                let base = ca / s * s;
                let bt = self.base_torus as u64;
                t.route(ca - base, cb - base, |chip, dim, neg| {
                    out.push((bt + (base + chip) * 6 + dim as u64 * 2 + neg as u64) as LinkId);
                });
                return self.node[a] == self.node[b];
            }
            out.extend([link(a, Port::NicOut), link(b, Port::NicIn)]);
            return false;
        }
        if self.node[a] == self.node[b] {
            out.extend([link(a, Port::NvlOut), link(b, Port::NvlIn)]);
            return true;
        }
        out.extend([link(a, Port::NicOut), link(b, Port::NicIn)]);
        self.leaves(self.su[a], self.su[b], out);
        false
    }

    /// A ring collective of group `g` moving `k` times a `bytes`-byte buffer's reduce-scatter
    /// (`k` = 2: an all-reduce) on the torus; None on a fat-tree.
    pub fn torus_ring(&self, fabric: &Fabric, g: Group, bytes: f64, k: f64) -> Option<TorusRing> {
        let t = self.torus?;
        let mut ring = TorusRing::default();
        if g.size <= 1 || bytes.is_nan() || bytes <= 0.0 {
            return Some(ring);
        }
        let job_chips = u64::from(fabric.nodes) * u64::from(fabric.gpus_per_node);
        let p = t.place(g, fabric.gpus_per_node, job_chips);
        let block = p.block;
        // Active dimensions in order, without allocating (one call per collective launch).
        let mut active = [0usize; 3];
        let mut d = 0;
        for (i, &b) in block.iter().enumerate() {
            if b > 1 {
                active[d] = i;
                d += 1;
            }
        }
        if d > 0 {
            let chunk = bytes / d as f64;
            for j in 0..d {
                let mut reached = 1.0;
                for q in 0..d {
                    let i = active[(j + q) % d];
                    let a = f64::from(block[i]);
                    reached *= a;
                    ring.dims[i].0 += k * (a - 1.0) / reached * chunk;
                }
            }
            for &i in &active[..d] {
                ring.dims[i].1 = if t.dims[i] == 2 {
                    3
                } else if block[i] == t.dims[i] {
                    2
                } else {
                    1
                };
                ring.steps += k * f64::from(block[i] - 1);
            }
        }
        if p.slices > 1 {
            let s = f64::from(p.slices);
            ring.dcn = k * (s - 1.0) / s * bytes / f64::from(p.per_slice);
            ring.dcn_steps = k * (s - 1.0);
        }
        Some(ring)
    }

    /// Per-link load of a uniform all-to-all over group `g` in one
    /// torus slice, per chip out-link `dim * 2 + negative`, as a multiple of the bytes each
    /// chip sends; and the ring steps `Σ (a_d − 1)` (one ICI latency each). None on a fat-tree
    /// or when the group spans slices (its traffic then crosses the DCN).
    ///
    /// Why: under dimension-ordered routing every dimension-`d` hop of every pair lands on a
    /// dimension-`d` link, and by translation symmetry each chip's out-link carries the same
    /// share: a source sends `B / (n − 1)` to each of the `n / a` chips at offset `o` along `d`,
    /// which crosses `h(o)` links, so a link carries `B · n · H / ((n − 1) · a)` with `H` the
    /// hop sum of the offsets routed its way (on a closed ring the shorter way round, the
    /// half-way pairs half each way as [`Torus::route`] splits them; `H = a²/8` each way on an
    /// even ring, the bisection bound `a·B/8` per link). On a line (a partial dimension) the middle links carry `⌊a/2⌋·⌈a/2⌉` pairs' hops
    /// each way; a dimension of 2 has one link per chip.
    pub fn torus_a2a_load(&self, fabric: &Fabric, g: Group) -> Option<([f64; 6], f64)> {
        let t = self.torus?;
        let job_chips = u64::from(fabric.nodes) * u64::from(fabric.gpus_per_node);
        let p = t.place(g, fabric.gpus_per_node, job_chips);
        if p.slices > 1 || p.per_slice <= 1 {
            return None;
        }
        let n = f64::from(p.per_slice);
        let mut load = [0.0; 6];
        let mut steps = 0.0;
        for d in 0..3 {
            let a = p.block[d];
            if a <= 1 {
                continue;
            }
            steps += f64::from(a - 1);
            let per = n / ((n - 1.0) * f64::from(a));
            if t.dims[d] == 2 {
                load[2 * d] = per;
            } else if a == t.dims[d] {
                // Half-way pairs split over both ways (`Torus::route`'s parity rule).
                let (mut pos, mut neg) = (0.0f64, 0.0f64);
                for o in 1..a {
                    if o == a - o {
                        pos += f64::from(o) / 2.0;
                        neg += f64::from(o) / 2.0;
                    } else if o < a - o {
                        pos += f64::from(o);
                    } else {
                        neg += f64::from(a - o);
                    }
                }
                load[2 * d] = per * pos;
                load[2 * d + 1] = per * neg;
            } else {
                let mid = f64::from(a / 2) * f64::from(a.div_ceil(2));
                load[2 * d] = per * mid;
                load[2 * d + 1] = per * mid;
            }
        }
        Some((load, steps))
    }

    /// The torus link leaving simulated GPU `x`'s chip along `dim` (`neg`: the negative way).
    pub fn torus_link(&self, x: usize, dim: usize, neg: bool) -> LinkId {
        (self.base_torus as u64 + self.chip[x] * 6 + dim as u64 * 2 + neg as u64) as LinkId
    }

    /// Flow `f` (< [`TORUS_RING_FLOWS`]) of simulated GPU `x` in `ring`: its links into `out`
    /// and its bytes (None: no such flow).
    pub fn torus_ring_flow(
        &self,
        x: usize,
        ring: &TorusRing,
        f: usize,
        out: &mut PathBuf,
    ) -> Option<f64> {
        out.clear();
        let (dim, second) = (f / 2, f % 2 == 1);
        let (bytes, mode) = ring.dims[dim];
        if bytes <= 0.0 || self.torus.is_none() {
            return None;
        }
        let l =
            |neg: u64| (self.base_torus as u64 + self.chip[x] * 6 + dim as u64 * 2 + neg) as LinkId;
        match (mode, second) {
            // A closed ring, used both ways round: half the bytes on each out-link.
            (2, _) => {
                out.push(l(second as u64));
                Some(bytes / 2.0)
            }
            // A line: the ring's hops go one way and its way back the other, one link's rate.
            (1, false) => {
                out.extend([l(0), l(1)]);
                Some(bytes)
            }
            // A dimension of 2: its one link (reported positive by the route).
            (3, false) => {
                out.push(l(0));
                Some(bytes)
            }
            _ => None,
        }
    }

    /// The inter-node part of GPU `x`'s ring collective: its NIC both ways, and its SU's up-
    /// and down-links when the ring spans more than one SU.
    pub fn ring_inter(&self, x: usize, spans_leaves: bool, out: &mut PathBuf) {
        out.clear();
        out.extend([link(x, Port::NicOut), link(x, Port::NicIn)]);
        if spans_leaves && self.uplinks {
            out.push(self.base_su + 2 * (self.su[x] - self.su0));
            out.push(self.base_su + 2 * (self.su[x] - self.su0) + 1);
        }
    }

    /// Scalable unit (leaf group) of simulated GPU `x`.
    pub fn su(&self, x: usize) -> u32 {
        self.su[x]
    }

    /// The up- and down-links of GPU `x`'s leaf group ([`NONE`] both when not modelled).
    pub fn leaf_links(&self, x: usize) -> [LinkId; 2] {
        if self.uplinks {
            let s = self.base_su + 2 * (self.su[x] - self.su0);
            [s, s + 1]
        } else {
            [NONE; 2]
        }
    }

    /// Port `p` of node `node` (global).
    pub fn node_port(&self, node: u32, p: NodePort) -> LinkId {
        self.base_node + 4 * (node - self.node0) + p as u32
    }

    /// The links of the node-pair flow from the node of simulated GPU `a` to that of `b`
    /// (different nodes): the nodes' NICs (or, in one torus slice, their chips' ICI injection)
    /// and the leaves' up-links between SUs.
    pub fn node_to_node(&self, a: usize, b: usize, out: &mut PathBuf) {
        out.clear();
        let (na, nb) = (self.node[a], self.node[b]);
        if let Some(t) = &self.torus {
            if Self::same_slice(t, self.chip[a], self.chip[b]) {
                out.push(self.node_port(na, NodePort::IciOut));
                out.push(self.node_port(nb, NodePort::IciIn));
                return;
            }
        }
        out.push(self.node_port(na, NodePort::NicOut));
        out.push(self.node_port(nb, NodePort::NicIn));
        self.leaves(self.su[a], self.su[b], out);
    }
}
