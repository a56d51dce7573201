use super::graph::one_f_one_b;
use super::links::{link, Net, Port};
use super::*;
use crate::hardware::{preset, PriceKnobs};
use crate::workload::step_ops::{step_ops, Phase};
use crate::workload::{Arch, FfnKind, MoeSpec, Precision, Recompute};

pub(crate) fn model(experts: u32) -> ModelSpec {
    ModelSpec {
        name: "small".into(),
        layers: 4,
        d_model: 512,
        heads: 8,
        kv_heads: 2,
        seq_len: 256,
        vocab: 1000,
        ffn_hidden: 2048,
        ffn: if experts == 0 {
            FfnKind::Dense
        } else {
            FfnKind::Moe(MoeSpec {
                experts,
                top_k: 2,
                capacity_factor: None,
                expert_ffn_hidden: 1024,
                shared_experts: 0,
                moe_every: 1,
            })
        },
        arch: Arch::default(),
    }
}

pub(crate) fn plan(dp: u32, tp: u32, pp: u32, ep: u32, mbs: u32) -> ParallelPlan {
    ParallelPlan {
        dp,
        tp,
        pp,
        ep,
        micro_batch_seqs: 2,
        global_batch_seqs: 2 * dp * mbs,
        zero_stage: 0,
        recompute: Recompute::None,
        precision: Precision::Bf16,
    }
}

pub(crate) fn input(m: ModelSpec, p: ParallelPlan, nodes: u32) -> EventStepInput {
    EventStepInput {
        model: m,
        plan: p,
        ops_config: OpsConfig::default(),
        accelerator: preset("h100").unwrap(),
        fabric: Fabric::from_presets("nvlink4", "ib-ndr", 8, nodes).unwrap(),
        gpus_per_node: 8,
        choice: RoutingChoice::TokenChoice,
        placement: None,
        overlap: Overlap::default(),
        virtual_stages: 1,
        pipeline: crate::workload::PipelineKind::OneFOneB,
        pad_spread: Vec::new(),
    }
}

fn knobs(i: &EventStepInput, mbs: u32) -> Knobs {
    crate::sim::test_setup::knobs(
        i.accelerator.tdp_w,
        i.model.moe().map_or(0, |m| m.top_k),
        mbs,
    )
}

fn uniform(i: &EventStepInput) -> Vec<f64> {
    let (l, e) = match i.model.moe() {
        Some(m) => (i.model.moe_layers() as usize, m.experts as usize),
        None => (0, 0),
    };
    vec![1.0 / e.max(1) as f64; l * e]
}

#[test]
fn a_dense_single_gpu_step_is_the_sum_of_its_priced_ops() {
    // Why: with pp = 1 and no communication the schedule is a chain; any gap or overlap is a bug.
    let inp = input(model(0), plan(1, 1, 1, 1, 3), 1);
    let k = knobs(&inp, 3);
    let r = event_step(&inp, &[], k, false).unwrap();
    let ops = step_ops(&inp.model, &inp.plan, &inp.ops_config).unwrap();
    let pk = PriceKnobs {
        power_limit_w: k.power_limit_w,
        precision: inp.plan.precision,
    };
    let price_ns =
        |o: &crate::workload::step_ops::Op| graph::secs_to_ns(inp.accelerator.price(o, &pk).time_s);
    let st = &ops.stages[0];
    let sum_ns: u64 = 3 * st.micro_batch().map(price_ns).sum::<u64>()
        + st.per_step.iter().map(price_ns).sum::<u64>();
    assert_eq!((r.time_s * 1e9).round() as u64, sum_ns);
    // Busy all the time: energy is the sum of the ops' priced energies (no waiting).
    let e: f64 = 3.0
        * st.micro_batch()
            .map(|o| inp.accelerator.price(o, &pk).energy_j)
            .sum::<f64>()
        + st.per_step
            .iter()
            .map(|o| inp.accelerator.price(o, &pk).energy_j)
            .sum::<f64>();
    assert!(
        (r.gpu_energy_j - e).abs() < 1e-6 * e,
        "{} vs {e}",
        r.gpu_energy_j
    );
    assert!(r.waiting_energy_j < 1e-9);
}

#[test]
fn two_flows_on_one_link_take_twice_as_long_as_one() {
    let f = Fabric::from_presets("nvlink4", "ib-ndr", 8, 2).unwrap();
    let bw = f.inter_bw_bytes_per_s() * 1e-9;
    let bytes = 1e8;
    let mut net = Net::default();
    net.reset(2, &f);
    let mut out = Vec::new();
    let l = [link(0, Port::NicOut), link(1, Port::NicIn)];
    net.start(0, bytes, &l, 0, 0, &mut out);
    let one = out.last().unwrap().0;
    assert_eq!(one, (bytes / bw).ceil() as u64);
    let mut net = Net::default();
    net.reset(2, &f);
    out.clear();
    net.start(0, bytes, &l, 0, 0, &mut out);
    net.start(0, bytes, &[link(0, Port::NicOut)], 0, 0, &mut out);
    // Both flows now end at twice the single time (the first flow's earlier event, still
    // pending, re-arms when it fires: `Net::due`).
    let ends: Vec<u64> = (0..2).map(|i| net.completion(i)).collect();
    assert!(
        !net.due(0, one, &mut out),
        "the slowed flow is not done at its old time"
    );
    assert_eq!(ends.len(), 2);
    for e in &ends {
        assert!(
            (*e as f64 - 2.0 * one as f64).abs() <= 2.0,
            "{e} vs {}",
            2 * one
        );
    }
    // When one ends, the other speeds up again: a half-done second flow finishes at 1.5x.
    let mut net = Net::default();
    net.reset(2, &f);
    out.clear();
    net.start(0, bytes, &l, 0, 0, &mut out);
    net.start(0, bytes / 2.0, &[link(0, Port::NicOut)], 1, 0, &mut out);
    let (t1, f1) = (0..2)
        .map(|i| (net.completion(i), i))
        .min_by_key(|x| x.0)
        .unwrap();
    assert!(
        (t1 as f64 - one as f64).abs() <= 2.0,
        "the half flow ends at {t1}, one = {one}"
    );
    out.clear();
    net.finish(f1, t1, &mut out);
    // The other flow sped up; its pending event is not later than its new completion.
    let t2 = net.completion(1 - f1);
    assert!(net.flows[(1 - f1) as usize].at <= t2);
    assert!(
        (t2 as f64 - 1.5 * one as f64).abs() <= 3.0,
        "{t2} vs {}",
        1.5 * one as f64
    );
}

#[test]
fn one_f_one_b_runs_every_pass_once_with_warm_up_by_stage() {
    let v = one_f_one_b(0, 4, 6);
    assert_eq!(v.len(), 12);
    assert!(
        v[..3].iter().all(|p| !p.bwd),
        "stage 0 warms up with pp - 1 forwards"
    );
    let last = one_f_one_b(3, 4, 6);
    assert!(
        !last[0].bwd && last[1].bwd,
        "the last stage alternates at once"
    );
    for s in 0..4 {
        let v = one_f_one_b(s, 4, 6);
        for mb in 0..6 {
            assert_eq!(v.iter().filter(|p| p.mb == mb).count(), 2);
            let f = v.iter().position(|p| p.mb == mb && !p.bwd).unwrap();
            let b = v.iter().position(|p| p.mb == mb && p.bwd).unwrap();
            assert!(f < b);
        }
    }
}

#[test]
fn pipeline_stages_wait_for_each_other_and_bubbles_are_spin_energy() {
    let inp = input(model(0), plan(1, 1, 2, 1, 4), 1);
    let k = knobs(&inp, 4);
    let r = event_step(&inp, &[], k, true).unwrap();
    assert_eq!(r.gpus_simulated, 2);
    // Each stage does about half of the work, so the step is shorter than one GPU's full
    // chain (pp=1) but longer than half of it (bubbles, transfers).
    let one = event_step(&input(model(0), plan(1, 1, 1, 1, 4), 1), &[], k, false).unwrap();
    assert!(
        r.time_s < one.time_s && r.time_s > 0.5 * one.time_s,
        "{} vs {}",
        r.time_s,
        one.time_s
    );
    assert!(r.waiting_energy_j > 0.0);
    // Stage 1's first forward starts only after stage 0's first activation has arrived.
    let s0_send = r
        .records
        .iter()
        .find(|x| x.gpu == 0 && x.name == "pp.send_activation")
        .unwrap();
    let s1_first = r
        .records
        .iter()
        .filter(|x| x.gpu == 1 && x.stream == 0)
        .map(|x| x.start_ns)
        .min()
        .unwrap();
    assert!(s1_first >= s0_send.end_ns);
}

#[test]
fn a_hot_expert_rank_slows_the_step_and_its_waiting_shows_in_its_layers() {
    let inp = input(model(8), plan(8, 1, 1, 8, 1), 1);
    let k = knobs(&inp, 1);
    let mut m = EventStepModel::new(inp.clone());
    let bal = m.step(&uniform(&inp), k, false).unwrap();
    // Layer 2 sends half of its assignments to expert 0 (rank 0); the others stay uniform.
    let mut shares = uniform(&inp);
    let l2 = &mut shares[2 * 8..3 * 8];
    l2[0] = 0.5;
    for s in &mut l2[1..] {
        *s = 0.5 / 7.0;
    }
    let hot = m.step(&shares, k, false).unwrap();
    assert!(hot.time_s > bal.time_s, "{} vs {}", hot.time_s, bal.time_s);
    let skew = skew::layer_skew(&mut m, &hot, k).unwrap();
    assert_eq!(skew.len(), 4);
    let by = |l: u32| skew.iter().find(|s| s.layer == l).unwrap().skew_j;
    assert!(by(2) > 0.0, "the skewed layer waits more: {skew:?}");
    for l in [0, 1, 3] {
        assert!(by(l).abs() < 0.05 * by(2), "layer {l}: {skew:?}");
    }
    assert!(hot.gpu_energy_j > bal.gpu_energy_j);
}

#[test]
fn overlapped_gradient_buckets_hide_behind_the_backward() {
    let mut inp = input(model(0), plan(8, 1, 1, 1, 2), 1);
    let k = knobs(&inp, 2);
    let plain = event_step(&inp, &[], k, false).unwrap();
    inp.overlap.grad_sync = true;
    let over = event_step(&inp, &[], k, false).unwrap();
    assert!(
        over.time_s < plain.time_s,
        "{} vs {}",
        over.time_s,
        plain.time_s
    );
}

#[test]
fn the_trace_is_json_with_a_track_per_gpu_and_stream() {
    let inp = input(model(8), plan(8, 1, 2, 4, 2), 2);
    let k = knobs(&inp, 2);
    let r = event_step(&inp, &uniform(&inp), k, true).unwrap();
    let mut buf = Vec::new();
    trace::write_chrome_trace(&mut buf, &r, 160.0, "test").unwrap();
    let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
    let ev = v["traceEvents"].as_array().unwrap();
    let mut tracks = std::collections::BTreeSet::new();
    for e in ev.iter().filter(|e| e["ph"] == "X") {
        tracks.insert((e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap()));
        assert!(e["dur"].as_f64().unwrap() >= 0.0);
        assert!(e["args"]["bytes"].is_number() && e["args"]["flops"].is_number());
    }
    assert_eq!(tracks.len(), 2 * r.gpus_simulated as usize);
    // Compute durations plus gaps fill the step on every GPU: the last op ends at the step end.
    let end_us = ev
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| e["ts"].as_f64().unwrap() + e["dur"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(
        (end_us - r.time_s * 1e6).abs() < 1e-3,
        "{end_us} vs {}",
        r.time_s * 1e6
    );
    assert!(ev.iter().any(|e| e["ph"] == "C"));
}

#[test]
fn wrong_share_length_is_an_error_naming_both_sizes() {
    let inp = input(model(8), plan(8, 1, 1, 8, 1), 1);
    let e = event_step(&inp, &[0.5; 3], knobs(&inp, 1), false).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("3 entries") && msg.contains("32"), "{msg}");
}

#[test]
fn every_plan_shape_finishes_with_energy_between_spin_and_tdp() {
    // Why: a collective whose members never all arrive would hang the step; each layout must
    // finish, and energy must lie between all GPUs spinning and all at TDP for the step.
    for experts in [0, 8] {
        for (dp, tp, pp, ep, zero, overlap) in [
            (2, 2, 2, 2, 1, true),
            (4, 1, 2, 4, 3, false),
            (4, 2, 1, 2, 3, true),
            (8, 1, 4, 8, 0, true),
            (2, 4, 2, 1, 2, false),
        ] {
            let ep = if experts == 0 { 1 } else { ep };
            let mut p = plan(dp, tp, pp, ep, 4);
            p.zero_stage = zero;
            p.recompute = Recompute::Selective;
            let mut inp = input(model(experts), p, 4);
            inp.overlap.grad_sync = overlap;
            let k = knobs(&inp, 4);
            let r = event_step(&inp, &uniform(&inp), k, false)
                .unwrap_or_else(|e| panic!("{dp}/{tp}/{pp}/{ep} z{zero}: {e}"));
            let gpus = (dp * tp * pp) as f64;
            assert_eq!(r.gpus_simulated as f64 * r.gpus_represented, gpus);
            let spin = inp.accelerator.spin_w();
            let lo = 0.5 * spin * gpus * r.time_s;
            let hi = inp.accelerator.tdp_w * gpus * r.time_s;
            assert!(
                r.time_s > 0.0 && r.gpu_energy_j > lo && r.gpu_energy_j <= hi * 1.0001,
                "{dp}/{tp}/{pp}/{ep}: {} J over {} s",
                r.gpu_energy_j,
                r.time_s
            );
        }
    }
}

#[test]
fn the_same_step_twice_gives_bit_identical_results_and_timelines() {
    // Why: same scenario + seed must give byte-identical outputs; ties between events at one
    // instant are broken by the engine's sequence numbers, never by hash order.
    let mut inp = input(model(8), plan(8, 2, 2, 4, 4), 4);
    inp.overlap.grad_sync = true;
    let k = knobs(&inp, 4);
    let mut sh = uniform(&inp);
    sh[3] += 0.2;
    sh[4] -= 0.2;
    let a = event_step(&inp, &sh, k, true).unwrap();
    let mut m = EventStepModel::new(inp.clone());
    let _ = m.step(&uniform(&inp), k, false).unwrap();
    let b = m.step(&sh, k, true).unwrap();
    assert_eq!(a.time_s.to_bits(), b.time_s.to_bits());
    assert_eq!(a.gpu_energy_j.to_bits(), b.gpu_energy_j.to_bits());
    assert_eq!(a.events, b.events);
    assert_eq!(a.records, b.records);
}

#[test]
fn overlapped_gradient_buckets_meet_the_all_to_all_on_a_port_and_are_counted() {
    // Why: the agreement test trusts `contention` to tell contended plans from free ones; a
    // counter stuck at zero would hold contended plans to the 2 % tolerance and hide the regimes.
    // Large layers, few tokens: a layer's gradient bucket outlasts the compute before the next
    // layer's all-to-all (one GPU per node, so both cross the NIC).
    let mut m = model(8);
    m.d_model = 4096;
    m.ffn_hidden = 16384;
    if let FfnKind::Moe(x) = &mut m.ffn {
        x.expert_ffn_hidden = 8192;
    }
    let mut p = plan(2, 1, 1, 2, 4);
    p.micro_batch_seqs = 1;
    p.global_batch_seqs = 8;
    let mut inp = input(m, p, 1);
    inp.gpus_per_node = 1;
    inp.fabric = Fabric::from_presets("nvlink4", "ib-ndr", 1, 2).unwrap();
    let k = knobs(&inp, 4);
    let blocking = event_step(&inp, &uniform(&inp), k, false).unwrap();
    assert_eq!(blocking.contention, Contention::default());
    inp.overlap.grad_sync = true;
    let overlapped = event_step(&inp, &uniform(&inp), k, false).unwrap();
    assert!(
        overlapped.contention.all_to_all > 0 && overlapped.contention.grad_sync > 0,
        "{:?}",
        overlapped.contention
    );
    assert_eq!(overlapped.contention.p2p, 0);
}

#[test]
fn interleaved_order_follows_megatrons_schedule_table() {
    // Why: the order decides the bubble; hand-built from Megatron-LM's `get_schedule_table`
    // (groups of pp micro-batches through chunk 0, then chunk 1) and its warm-up count
    // (pp - s - 1) * 2 + (v - 1) * pp, for pp = 2, v = 2, m = 4.
    let p = |bwd, mb, chunk| graph::Pass { bwd, mb, chunk };
    let s0 = graph::interleaved(0, 2, 2, 4);
    let want0 = [
        p(false, 0, 0),
        p(false, 1, 0),
        p(false, 0, 1),
        p(false, 1, 1),
        p(false, 2, 0),
        p(true, 0, 1),
        p(false, 3, 0),
        p(true, 1, 1),
        p(false, 2, 1),
        p(true, 0, 0),
        p(false, 3, 1),
        p(true, 1, 0),
        p(true, 2, 1),
        p(true, 3, 1),
        p(true, 2, 0),
        p(true, 3, 0),
    ];
    assert_eq!(s0, want0);
    let s1 = graph::interleaved(1, 2, 2, 4);
    assert_eq!(
        &s1[..4],
        &[
            p(false, 0, 0),
            p(false, 1, 0),
            p(false, 0, 1),
            p(true, 0, 1)
        ]
    );
    for s in [s0, s1] {
        for mb in 0..4 {
            for c in 0..2 {
                assert_eq!(s.iter().filter(|x| x.mb == mb && x.chunk == c).count(), 2);
            }
        }
    }
}

#[test]
fn interleaving_shrinks_the_bubble_and_doubles_the_pipeline_sends() {
    // Why: Narayanan et al. 2021 Sec. 2.2.2: v chunks divide the bubble by v and multiply the
    // stage-boundary crossings by v; both must show in the event-level step.
    let mut m = model(0);
    m.layers = 8;
    let p = plan(1, 1, 2, 1, 4);
    let inp = input(m.clone(), p.clone(), 1);
    let k = knobs(&inp, 4);
    let plain = event_step(&inp, &[], k, true).unwrap();
    let mut inp2 = input(m, p, 1);
    inp2.virtual_stages = 2;
    let inter = event_step(&inp2, &[], k, true).unwrap();
    assert!(
        inter.time_s < plain.time_s,
        "{} vs {}",
        inter.time_s,
        plain.time_s
    );
    let sends = |r: &EventStep| {
        r.records
            .iter()
            .filter(|x| x.name.starts_with("pp.send"))
            .count()
    };
    // Plain: 4 activations + 4 gradients; interleaved: 3 virtual boundaries each way.
    assert_eq!(sends(&plain), 8);
    assert_eq!(sends(&inter), 24);
    // Stage 1's last chunk hands its activations back to stage 0 (the wrap-around).
    assert!(inter
        .records
        .iter()
        .any(|x| x.gpu == 1 && x.name == "pp.send_activation"));
}

#[test]
fn interleaving_a_plan_that_megatron_rejects_is_an_error() {
    let mut inp = input(model(0), plan(1, 1, 2, 1, 3), 1);
    inp.virtual_stages = 2;
    let e = event_step(&inp, &[], knobs(&inp, 3), false).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("virtual_stages = 2") && msg.contains("micro-batches (3)"),
        "{msg}"
    );
}

#[test]
fn zero3_gathers_the_next_layer_while_the_current_one_computes() {
    // Why: ZeRO-3 / FSDP prefetch (Rajbhandari et al. 2020, Sec. 7.2.2): each layer's
    // parameter gather after the first runs under the previous layer's compute, so the step
    // is shorter than with every gather exposed.
    let mut p = plan(4, 1, 1, 1, 2);
    p.zero_stage = 3;
    let inp = input(model(0), p, 1);
    let k = knobs(&inp, 2);
    let r = event_step(&inp, &[], k, true).unwrap();
    let compute_end = |l: u32| {
        r.records
            .iter()
            .filter(|x| x.stream == 0 && x.mb == 0 && x.layer == Some(l))
            .filter(|x| x.phase == Phase::Forward)
            .map(|x| x.end_ns)
            .max()
            .unwrap()
    };
    for l in 1..4 {
        let g = r
            .records
            .iter()
            .find(|x| {
                x.name == "zero3.param_gather"
                    && x.layer == Some(l)
                    && x.phase == Phase::Forward
                    && x.mb == 0
            })
            .unwrap();
        assert!(
            g.start_ns < compute_end(l - 1),
            "layer {l}: gather at {} after layer {} ended at {}",
            g.start_ns,
            l - 1,
            compute_end(l - 1)
        );
        assert!(!g.waiting, "a prefetched gather is not a blocking wait");
    }
    // Every gather and reduce-scatter blocking instead costs more time.
    let comm: f64 = r
        .records
        .iter()
        .filter(|x| x.name.starts_with("zero3."))
        .map(|x| (x.end_ns - x.start_ns) as f64 * 1e-9)
        .sum();
    let busy: f64 = r
        .records
        .iter()
        .filter(|x| x.stream == 0)
        .map(|x| (x.end_ns - x.start_ns) as f64 * 1e-9)
        .sum();
    assert!(r.time_s < busy + comm, "{} vs {}", r.time_s, busy + comm);
}

#[test]
fn no_stage_starts_its_optimizer_before_every_stage_has_its_gradients() {
    // Why: the optimizer clips by the global gradient norm, an all-reduce over all stages.
    let inp = input(model(0), plan(1, 1, 4, 1, 4), 1);
    let r = event_step(&inp, &[], knobs(&inp, 4), true).unwrap();
    let starts: Vec<u64> = r
        .records
        .iter()
        .filter(|x| x.phase == Phase::Optimizer && x.stream == 0)
        .map(|x| x.start_ns)
        .collect();
    let last_bwd = r
        .records
        .iter()
        .filter(|x| x.phase != Phase::Optimizer && x.stream == 0)
        .map(|x| x.end_ns)
        .max()
        .unwrap();
    assert!(!starts.is_empty());
    assert!(
        starts.iter().all(|&t| t >= last_bwd),
        "{starts:?} vs {last_bwd}"
    );
}
