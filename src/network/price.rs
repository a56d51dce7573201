//! One pricing of each communication op of the step's operation list on a [`Fabric`].
//!
//! `workload::step_ops` emits the op (class, group, bytes per rank), the caller knows how the
//! group's ranks sit on nodes ([`Group`]), and this file turns both into a
//! [`PricedOp`](crate::hardware::PricedOp) with the α–β collective models of [`fabric`](super::fabric).
//! It imports `workload` (the op) and `hardware` (the priced-op type) — both model modules on the
//! same floor, neither of which imports `network`, so the arrows stay one way.
//!
//! **Energy.** A GPU inside a NCCL collective or a blocking send/receive keeps its clock up and
//! polls: it draws the accelerator's spin power (`Accelerator::spin_w`, see `hardware/presets.rs`),
//! not idle power. The priced op's energy is therefore `spin_w × time` of one GPU. The fast step
//! model (`sim::step`) uses only the time: communication on its critical path is time the GPUs are
//! not computing, which it already charges at spin power as waiting time, so adding this energy too
//! would count it twice; an event-level schedule that runs the op on its own stream uses the energy.

use super::{Fabric, Group};
use crate::hardware::PricedOp;
use crate::workload::step_ops::{KernelClass, Op};

/// Price communication op `op` on `fabric` for a group laid out as `group` (its size and ranks per
/// node): time of the collective [s], energy of one GPU spinning at `spin_w` [W] during it [J].
///
/// `op.comm.bytes_per_rank` is read as the op list defines it: the full buffer of an all-reduce,
/// the input of a reduce-scatter, the output of an all-gather, the bytes each rank sends to the
/// others in an all-to-all (every rank the same: the uniform-routing case; see
/// [`price_all_to_all`] for per-rank loads), the message of a send/receive (which crosses nodes
/// when `group.ranks_per_node < 2`). An op with several `launches` (e.g. the three small
/// all-reduces of the vocab-parallel loss) pays the latency of each: `n ×` the cost of
/// `bytes / n`. A compute op (no `comm`, or a compute class) prices as zero here: it is
/// `Accelerator::price`'s. Allocation-free.
pub fn price_comm(op: &Op, fabric: &Fabric, group: Group, spin_w: f64) -> PricedOp {
    let Some(c) = op.comm.filter(|_| op.class.is_comm()) else {
        return PricedOp::default();
    };
    let n = f64::from(op.launches.max(1));
    let bytes = c.bytes_per_rank / n;
    let one = match op.class {
        KernelClass::AllReduce => fabric.all_reduce_s(bytes, group),
        KernelClass::AllGather => fabric.all_gather_s(bytes, group),
        KernelClass::ReduceScatter => fabric.reduce_scatter_s(bytes, group),
        KernelClass::AllToAll => fabric.uniform_all_to_all_s(bytes, group),
        KernelClass::SendRecv => fabric.p2p_s(bytes, group.ranks_per_node < 2),
        _ => 0.0,
    };
    spinning(n * one, spin_w)
}

/// Price an all-to-all op whose load differs per rank: rank `i` sends `send_bytes[i]` and
/// receives `recv_bytes[i]` in total; the time is set by the most loaded sender or receiver
/// ([`Fabric::all_to_all_s`]). The caller sizes the slices from the op re-sized to each rank's
/// routing load (`Op::at_tokens`). Energy as in [`price_comm`]. A non-all-to-all op prices as
/// [`price_comm`] does. Allocation-free.
pub fn price_all_to_all(
    op: &Op,
    fabric: &Fabric,
    group: Group,
    send_bytes: &[f64],
    recv_bytes: &[f64],
    spin_w: f64,
) -> PricedOp {
    if op.class != KernelClass::AllToAll || op.comm.is_none() {
        return price_comm(op, fabric, group, spin_w);
    }
    spinning(fabric.all_to_all_s(send_bytes, recv_bytes, group), spin_w)
}

fn spinning(time_s: f64, spin_w: f64) -> PricedOp {
    if time_s > 0.0 {
        PricedOp {
            time_s,
            energy_j: time_s * spin_w,
            power_w: spin_w,
        }
    } else {
        PricedOp::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::step_ops::GroupKind;

    fn fabric() -> Fabric {
        Fabric::from_presets("nvlink4", "ib-ndr", 8, 4).expect("presets")
    }

    fn op(class: KernelClass, size: u32, bytes: f64) -> Op {
        Op::comm("t", class, GroupKind::Dp, size, bytes)
    }

    #[test]
    fn each_class_prices_as_its_fabric_collective_at_spin_power() {
        let f = fabric();
        let g = Group::new(16, 8);
        let b = 256e6;
        let cases = [
            (KernelClass::AllReduce, f.all_reduce_s(b, g)),
            (KernelClass::AllGather, f.all_gather_s(b, g)),
            (KernelClass::ReduceScatter, f.reduce_scatter_s(b, g)),
            (KernelClass::AllToAll, f.all_to_all_s(&[b; 16], &[b; 16], g)),
        ];
        for (class, want) in cases {
            let p = price_comm(&op(class, 16, b), &f, g, 300.0);
            assert!(want > 0.0);
            assert!((p.time_s - want).abs() <= 1e-12 * want, "{class:?}");
            assert!((p.energy_j - 300.0 * want).abs() <= 1e-9 * p.energy_j);
            assert_eq!(p.power_w, 300.0);
        }
        // The all-reduce moves twice the data of a reduce-scatter: it takes longer.
        let ar = price_comm(&op(KernelClass::AllReduce, 16, b), &f, g, 1.0).time_s;
        let rs = price_comm(&op(KernelClass::ReduceScatter, 16, b), &f, g, 1.0).time_s;
        assert!(ar > 1.5 * rs, "all-reduce {ar} vs reduce-scatter {rs}");
    }

    #[test]
    fn send_recv_crosses_nodes_only_when_the_neighbours_are_on_different_nodes() {
        let f = fabric();
        let s = op(KernelClass::SendRecv, 2, 64e6);
        let same = price_comm(&s, &f, Group::new(2, 2), 1.0).time_s;
        let across = price_comm(&s, &f, Group::new(2, 1), 1.0).time_s;
        assert!((same - f.p2p_s(64e6, false)).abs() < 1e-15);
        assert!((across - f.p2p_s(64e6, true)).abs() < 1e-15);
        assert!(across > same, "NVLink {same} vs InfiniBand {across}");
    }

    #[test]
    fn launches_pay_latency_each_and_compute_ops_price_zero() {
        let f = fabric();
        let g = Group::intra_node(8);
        let one = op(KernelClass::AllReduce, 8, 12.0);
        let three = one.clone().launches(3);
        let t1 = price_comm(&one, &f, g, 1.0).time_s;
        let t3 = price_comm(&three, &f, g, 1.0).time_s;
        // Latency-bound: three calls of 4 bytes cost about three times one call of 12.
        assert!(t3 > 2.5 * t1, "{t1} {t3}");
        let gemm = Op::gemm("g", 64.0, 64.0, 64.0, 2.0);
        assert_eq!(price_comm(&gemm, &f, g, 300.0), PricedOp::default());
        // A group of one rank does not communicate.
        let solo = price_comm(
            &op(KernelClass::AllReduce, 1, 1e9),
            &f,
            Group::new(1, 1),
            1.0,
        );
        assert_eq!(solo, PricedOp::default());
    }

    #[test]
    fn routed_all_to_all_follows_the_most_loaded_rank() {
        let f = fabric();
        let g = Group::new(16, 8);
        let a2a = op(KernelClass::AllToAll, 16, 1e8);
        let even = price_all_to_all(&a2a, &f, g, &[1e8; 16], &[1e8; 16], 1.0).time_s;
        let mut hot = [1e8; 16];
        hot[3] = 3e8;
        let skew = price_all_to_all(&a2a, &f, g, &[1e8; 16], &hot, 1.0).time_s;
        assert!((even - price_comm(&a2a, &f, g, 1.0).time_s).abs() < 1e-15);
        assert!(skew > 2.0 * even, "{even} {skew}");
    }
}
