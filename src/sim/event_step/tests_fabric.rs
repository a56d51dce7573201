//! The fabric's own links at event level: oversubscribed leaf up-links shared by flows, torus
//! links under dimension-ordered routing, node-pair all-to-all flows against rank-pair ones.

use super::graph::Graph;
use super::links::Net;
use super::tests::{input, model, plan};
use super::tests_a2a::{combine_ends, knobs};
use super::*;
use crate::network::{link_preset, FatTree, Group, Topology, Torus};

/// `nodes` nodes of one GPU each, an expert-parallel group over all of them, on `fabric`.
fn one_gpu_nodes(nodes: u32, fabric: Fabric) -> (EventStepInput, Graph) {
    let mut inp = input(model(nodes), plan(nodes, 1, 1, nodes, 1), 1);
    inp.fabric = fabric;
    inp.gpus_per_node = fabric.gpus_per_node;
    let g = Graph::new(&inp, knobs(&inp)).unwrap();
    (inp, g)
}

/// Start a flow of `bytes` from simulated GPU `a` to `b` for each pair at time 0; the
/// completion time of each [ns].
fn drain(net: &mut Net, pairs: &[(usize, usize)], bytes: f64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut path = Vec::new();
    let ids: Vec<u32> = pairs
        .iter()
        .map(|&(a, b)| {
            net.paths.gpu_to_gpu(a, b, &mut path);
            net.add(0, bytes, &path, 0, 0)
        })
        .collect();
    net.retime_batch(&ids, 0, &mut out);
    ids.iter().map(|&i| net.completion(i)).collect()
}

#[test]
fn flows_sharing_an_oversubscribed_up_link_are_slower_by_the_ratio() {
    // Why: at down:up = o:1 a leaf group's up-links carry 1/o of its NICs' rate, so when every
    // GPU under the leaves sends to the other leaf group at once each flow gets 1/o of its NIC;
    // a lone flow and flows inside one leaf group run at the NIC rate.
    for (o, radix) in [(2.0, 3), (3.0, 4)] {
        let mut f = Fabric::from_presets("nvlink4", "ib-ndr", 1, 2).unwrap();
        f.oversubscription = o;
        f.topology = Topology::FatTree(FatTree { radix });
        let k = f.nodes_per_leaf() as usize;
        f.nodes = 2 * k as u32;
        let (inp, g) = one_gpu_nodes(f.nodes, f);
        let mut net = Net::default();
        net.reset_for(&g, &inp.fabric);
        let bytes = 1e8;
        let nic = (bytes / (f.leaf_bw_bytes_per_s() * 1e-9)).ceil() as u64;
        // A lone cross-leaf flow: the up-links are free, the NIC sets the rate.
        assert_eq!(drain(&mut net, &[(0, k)], bytes), vec![nic]);
        // Every GPU of leaf group 0 to its counterpart in group 1: o times as long.
        net.reset_for(&g, &inp.fabric);
        let all: Vec<_> = (0..k).map(|x| (x, x + k)).collect();
        for t in drain(&mut net, &all, bytes) {
            let r = t as f64 / nic as f64;
            assert!(
                (r - o).abs() < 1e-6,
                "o = {o}: {t} ns vs {nic} ns alone ({r})"
            );
        }
        // The same pairs inside one leaf group (each GPU to its neighbour) do not touch them.
        net.reset_for(&g, &inp.fabric);
        let inside: Vec<_> = (0..k).map(|x| (x, (x + 1) % k)).collect();
        if k > 1 {
            assert!(drain(&mut net, &inside, bytes).iter().all(|&t| t == nic));
        }
        // At 1:1 the same cross traffic runs at the NIC rate.
        let mut full = f;
        full.oversubscription = 1.0;
        let (inp1, g1) = one_gpu_nodes(f.nodes, full);
        net.reset_for(&g1, &inp1.fabric);
        let t1 = drain(&mut net, &all, bytes);
        assert!(
            t1.iter()
                .all(|&t| (t as f64 / nic as f64 - 1.0).abs() < 1e-6),
            "{t1:?}"
        );
    }
}

#[test]
fn torus_flows_cross_every_link_of_their_route_and_share_it() {
    // Why: inside a slice a transfer rides each ICI link of its dimension-ordered route; two
    // transfers whose routes share a link split it, two that do not run at full rate.
    let ici = link_preset("tpu-v4-ici").unwrap().link;
    let dcn = link_preset("dcn-tpu").unwrap().link;
    let f = Fabric::torus(ici, dcn, 1, 8, [8, 1, 1]).unwrap();
    let (inp, g) = one_gpu_nodes(8, f);
    let mut net = Net::default();
    net.reset_for(&g, &inp.fabric);
    let mut path = Vec::new();
    net.paths.gpu_to_gpu(0, 3, &mut path);
    assert_eq!(path.len(), 3, "0 -> 3 on a ring of 8 is three hops");
    net.paths.gpu_to_gpu(0, 6, &mut path);
    assert_eq!(path.len(), 2, "0 -> 6 goes back through the wrap-around");
    let bytes = 1e8;
    let one = (bytes / (f.intra_bw_bytes_per_s() * 1e-9)).ceil() as u64;
    assert_eq!(drain(&mut net, &[(0, 2)], bytes), vec![one]);
    // 0 -> 2 and 1 -> 3 share the link 1 -> 2.
    net.reset_for(&g, &inp.fabric);
    for t in drain(&mut net, &[(0, 2), (1, 3)], bytes) {
        assert!((t as f64 / one as f64 - 2.0).abs() < 1e-6, "{t} vs {one}");
    }
    // 0 -> 2 and 4 -> 6 do not.
    net.reset_for(&g, &inp.fabric);
    assert_eq!(drain(&mut net, &[(0, 2), (4, 6)], bytes), vec![one, one]);
}

#[test]
fn a_route_through_chips_past_the_highest_simulated_one_has_links_of_its_own() {
    // Why: the torus links were sized to the highest simulated chip, but a dimension-ordered
    // route passes through chips beyond it: on a 4 x 8 slice with dp 4, tp 4, pp 2 the
    // simulated chips are 0 and 16, and 16 -> 0 goes round the 8-ring through 20, 24 and 28
    // (it indexed past the links and panicked). Every chip of the slice now has its links.
    let ici = link_preset("tpu-v4-ici").unwrap().link;
    let dcn = link_preset("dcn-tpu").unwrap().link;
    let f = Fabric::torus(ici, dcn, 4, 32, [4, 8, 1]).unwrap();
    let mut inp = input(model(0), plan(4, 4, 2, 1, 1), 8);
    inp.fabric = f;
    inp.gpus_per_node = 4;
    let g = Graph::new(&inp, knobs(&inp)).unwrap();
    assert_eq!(g.gpus(), 2);
    let mut net = Net::default();
    net.reset_for(&g, &inp.fabric);
    let bytes = 1e8;
    let one = (bytes / (f.intra_bw_bytes_per_s() * 1e-9)).ceil() as u64;
    let mut path = Vec::new();
    for (a, b) in [(0, 1), (1, 0)] {
        net.paths.gpu_to_gpu(a, b, &mut path);
        assert_eq!(path.len(), 4, "{a} -> {b}: four hops along the 8-ring");
        let mut ids = path.clone();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 4, "{a} -> {b}: distinct links {path:?}");
        // Each transfer alone runs at one ICI link's rate.
        net.reset_for(&g, &inp.fabric);
        assert_eq!(drain(&mut net, &[(a, b)], bytes), vec![one]);
    }
    // The two ways round use disjoint links (0 -> 16 through 4, 8, 12; back through 20, 24,
    // 28): together each still runs at the full rate.
    net.reset_for(&g, &inp.fabric);
    assert_eq!(drain(&mut net, &[(0, 1), (1, 0)], bytes), vec![one, one]);
}

/// Shares per MoE layer (4 layers x `experts`): node 0's experts (the first `hot_experts`)
/// take `hot` of the assignments between them, the rest spread evenly.
fn node_skew(experts: usize, hot_experts: usize, hot: f64) -> Vec<f64> {
    let row: Vec<f64> = (0..experts)
        .map(|e| {
            if e < hot_experts {
                hot / hot_experts as f64
            } else {
                (1.0 - hot) / (experts - hot_experts) as f64
            }
        })
        .collect();
    (0..4).flat_map(|_| row.clone()).collect()
}

#[test]
fn node_pair_flows_equal_rank_pair_flows_when_a_nodes_gpus_route_alike() {
    // Why: the node-pair aggregate (for groups above 64 ranks) must not move the step where
    // both are computable and the routing treats a node's GPUs alike: 64 ranks, 8 per node,
    // balanced and with node 0's experts hot.
    let inp = input(model(64), plan(64, 1, 1, 64, 1), 8);
    let k = knobs(&inp);
    let mut m = EventStepModel::new(inp.clone());
    for hot in [1.0 / 8.0, 0.4] {
        let shares = node_skew(64, 8, hot);
        m.set_pair_flow_max(64);
        let pairs = m.step(&shares, k, false).unwrap();
        m.set_pair_flow_max(0);
        let nodes = m.step(&shares, k, false).unwrap();
        let d = nodes.time_s / pairs.time_s - 1.0;
        println!(
            "hot {hot}: rank pairs {:.6e} s, node pairs {:.6e} s ({:+.4} %)",
            pairs.time_s,
            nodes.time_s,
            100.0 * d
        );
        assert!(d.abs() < 0.005, "hot {hot}: {d}");
        let e = nodes.gpu_energy_j / pairs.gpu_energy_j - 1.0;
        assert!(e.abs() < 0.005, "hot {hot}: {e}");
    }
}

#[test]
fn a_hot_node_delays_only_the_nodes_that_exchange_tokens_with_it() {
    // Why: node-pair flows keep what rank-pair flows are for at scale: the members of a node
    // wait for that node's flows only, so a hot expert's node holds up its peers and nobody
    // else. 32 ranks on 4 nodes; nodes 0-1 route among themselves, nodes 2-3 likewise; layer
    // 0's expert 0 (node 0) gets `hot` of nodes 0-1's assignments.
    let inp = input(model(32), plan(32, 1, 1, 32, 1), 4);
    let k = knobs(&inp);
    let rows = |hot: f64| {
        let mut v = Vec::with_capacity(4 * 32 * 32);
        for l in 0..4 {
            for i in 0..32 {
                let mut r = [0.0; 32];
                let lo = if i < 16 { 0 } else { 16 };
                if l == 0 && i < 16 {
                    r[0] = hot;
                    for x in &mut r[1..16] {
                        *x = (1.0 - hot) / 15.0;
                    }
                } else {
                    for x in &mut r[lo..lo + 16] {
                        *x = 1.0 / 16.0;
                    }
                }
                v.extend(r);
            }
        }
        v
    };
    let mut m = EventStepModel::new(inp.clone());
    m.set_pair_flow_max(0);
    let even = combine_ends(&m.step(&rows(1.0 / 16.0), k, true).unwrap());
    let hot = combine_ends(&m.step(&rows(0.5), k, true).unwrap());
    for g in 0..16 {
        assert!(
            hot[g] > even[g],
            "GPU {g} waits on node 0: {hot:?} vs {even:?}"
        );
    }
    for g in 16..32 {
        assert_eq!(hot[g], even[g], "GPU {g} exchanges nothing with node 0");
    }
}

#[test]
fn an_oversubscribed_fabric_slows_a_cross_leaf_all_to_all_step() {
    // Why: the up-links are real resources in a step: 16 ranks on 4 nodes of 4, 2 nodes per
    // leaf group (radix 3 at 2:1), half of each rank's all-to-all peers across leaf groups.
    let mut inp = input(model(16), plan(16, 1, 1, 16, 1), 4);
    inp.gpus_per_node = 4;
    inp.fabric = Fabric::from_presets("nvlink4", "ib-ndr", 4, 4).unwrap();
    let k = knobs(&inp);
    let uniform = vec![1.0 / 16.0; 4 * 16];
    let mut full = inp.clone();
    full.fabric.topology = Topology::FatTree(FatTree { radix: 3 });
    let mut over = full.clone();
    over.fabric.oversubscription = 2.0;
    let a = event_step(&full, &uniform, k, false).unwrap();
    let b = event_step(&over, &uniform, k, false).unwrap();
    assert!(b.time_s > a.time_s * 1.01, "{} vs {}", b.time_s, a.time_s);
    assert!(b.contention.total() >= a.contention.total());
}

#[test]
fn torus_all_to_all_per_port_load_matches_dimension_ordered_routes_and_the_bisection_bound() {
    // Why: above 32 hosts the event level prices an expert-parallel all-to-all as per-port
    // aggregates; on a torus these must carry what the ICI's dimension-ordered routes put on
    // each link (not the hosts' DCN NICs, the 3x GShard gap), and the fast path's bisection
    // price must be the analytical bound k·B/(8·bw) per direction of a wrapped k x k torus.
    // One balanced all-to-all on an 8 x 8 wrapped torus, 4 chips per host, B bytes per chip.
    let (k, per_host) = (8u32, 4u32);
    let n = k * k;
    let ici = link_preset("tpu-v3-ici").unwrap().link;
    let dcn = link_preset("dcn-tpu").unwrap().link;
    let f = Fabric::torus(ici, dcn, per_host, n, [k, k, 1]).unwrap();
    let mut inp = input(model(n), plan(n, 1, 1, n, 1), per_host);
    inp.fabric = f;
    inp.gpus_per_node = per_host;
    let g = Graph::new(&inp, knobs(&inp)).unwrap();
    let mut net = Net::default();
    net.reset_for(&g, &inp.fabric);
    let b = 64e6; // bytes each chip sends, spread evenly over the other 63
    let (load, steps) = net
        .paths
        .torus_a2a_load(&f, Group::strided(n, per_host, 1))
        .unwrap();
    assert_eq!(steps, 2.0 * f64::from(k - 1));
    // Every pair's route, link by link: the busiest link per dimension and direction.
    let t = Torus { dims: [k, k, 1] };
    let mut per_link = vec![0.0; 6 * n as usize];
    for a in 0..u64::from(n) {
        for c in 0..u64::from(n) {
            if a != c {
                t.route(a, c, |chip, d, neg| {
                    per_link[chip as usize * 6 + d * 2 + neg as usize] += b / f64::from(n - 1);
                });
            }
        }
    }
    for l in 0..6 {
        let max = (0..n as usize)
            .map(|c| per_link[c * 6 + l])
            .fold(0.0, f64::max);
        assert!(
            (max - b * load[l]).abs() <= 1e-9 * max.max(1.0),
            "link {l}: routes {max} vs per-port {}",
            b * load[l]
        );
    }
    // Bisection bound per direction: k·B/8 over one link, times n/(n−1) (no self-traffic).
    let bw = f.intra_bw_bytes_per_s();
    let bound = f64::from(k) * b / (8.0 * bw) * f64::from(n) / f64::from(n - 1);
    let both_ways = (load[0] + load[1]) / 2.0 * b / bw;
    assert!(
        (both_ways / bound - 1.0).abs() < 1e-12,
        "{both_ways} vs {bound}"
    );
    // Ties (offset k/2) split over both ways, as `Torus::route`'s parity rule: each way
    // carries the bound (with every tie the positive way that link carried (k+2)/k of it).
    let positive = load[0] * b / bw;
    assert!(
        (positive / bound - 1.0).abs() < 1e-12,
        "{positive} vs {bound}"
    );
    assert_eq!(load[0].to_bits(), load[1].to_bits());
    // The event level's per-port flows on the simulated chips' links drain in the busiest
    // link's time, all chips at once (every link carries the same by translation symmetry).
    let mut ids = Vec::new();
    for x in 0..n as usize {
        for (l, &w) in load.iter().enumerate() {
            if w > 0.0 {
                let link = net.paths.torus_link(x, l / 2, l % 2 == 1);
                ids.push(net.add(0, b * w, &[link], 0, 0));
            }
        }
    }
    let mut out = Vec::new();
    net.retime_batch(&ids, 0, &mut out);
    let end = ids.iter().map(|&i| net.completion(i)).max().unwrap() as f64 * 1e-9;
    // (Within the integer-ns clock: each flow's end is rounded to a nanosecond.)
    assert!((end - positive).abs() <= 2e-9, "{end} vs {positive}");
    // The fast path: the bisection bound plus one α per ring step and the launch latency.
    let fast = f.all_to_all_s(&[b; 64], &[b; 64], Group::new(n, per_host));
    let expect = bound + steps * ici.latency_s + crate::network::COLLECTIVE_BASE_LATENCY_S;
    assert!((fast / expect - 1.0).abs() < 1e-9, "{fast} vs {expect}");
    // Not the DCN: the hosts' NICs would take B / dcn, far longer than the bisection bound.
    assert!(b / (dcn.bw_bytes_per_s) > 2.0 * positive);
}

#[test]
fn torus_per_port_all_to_all_is_no_slower_than_rank_pair_flows_on_their_routes() {
    // Why: the per-port aggregate (groups over 32 hosts on a torus) rides the ICI links its
    // routes load, at the busiest link's rate; rank-pair flows on the same dimension-ordered
    // routes share each link equally between flows of unequal path length, which leaves links
    // idle, so they are an upper bound (before the fix the aggregate took the hosts' DCN
    // NICs, 13x slower than a TPU v3 ICI link, and was far slower). 64 chips of one per host
    // on an 8 x 8 wrapped torus (64 hosts), balanced routing.
    let ici = link_preset("tpu-v3-ici").unwrap().link;
    let dcn = link_preset("dcn-tpu").unwrap().link;
    let f = Fabric::torus(ici, dcn, 1, 64, [8, 8, 1]).unwrap();
    let mut inp = input(model(64), plan(64, 1, 1, 64, 1), 1);
    inp.fabric = f;
    inp.gpus_per_node = 1;
    let k = knobs(&inp);
    let uniform = vec![1.0 / 64.0; 4 * 64];
    let mut m = EventStepModel::new(inp.clone());
    m.set_pair_flow_max(64);
    let pairs = m.step(&uniform, k, false).unwrap();
    m.set_pair_flow_max(0);
    let ports = m.step(&uniform, k, false).unwrap();
    let d = ports.time_s / pairs.time_s - 1.0;
    println!(
        "rank pairs {:.6e} s, per-port {:.6e} s ({:+.3} %)",
        pairs.time_s,
        ports.time_s,
        100.0 * d
    );
    assert!(d <= 0.0, "{d}");
}
