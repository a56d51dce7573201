//! Closed-form makespans of the pipeline schedules the fast step model knows: 1F1B and
//! interleaved 1F1B (virtual stages), over per-stage forward/backward times of one micro-batch;
//! and each stage's gradient sync after its own last backward.

use super::fixed::ChunkSync;

/// Makespan of a 1F1B pipeline step [s]: the first micro-batch crosses every stage forward and backward,
/// the remaining ones are paced by the slowest stage; plus p2p transfers on the fill and drain.
pub fn pipeline_1f1b_s(fwd: &[f64], bwd: &[f64], micro_batches: u32, p2p_s: f64) -> f64 {
    pipeline_interleaved_s(fwd, bwd, micro_batches, p2p_s, 1)
}

/// Makespan of an interleaved 1F1B step with `v` model chunks per stage [s] (`v = 1` is plain
/// 1F1B). `fwd[s]`, `bwd[s]` are stage `s`'s whole forward / backward of one micro-batch (all its
/// chunks). Narayanan et al. 2021 (SC'21, "Efficient Large-Scale Language Model Training on GPU
/// Clusters Using Megatron-LM"), Sec. 2.2.2: the pipeline bubble shrinks from `(p-1)(t_f+t_b)` to
/// `(p-1)(t_f+t_b)/v` (bubble fraction `(1/v)(p-1)/m`), while the point-to-point transfers grow
/// `v`-fold: the fill and drain cross `p·v - 1` chunk boundaries each way instead of `p - 1`.
/// With uneven stages the slowest stage paces the `m` micro-batches and the others' fill/drain
/// share is divided by `v`: `m·slow + (Σ_s (f_s+b_s) - slow)/v + 2(p·v - 1)·p2p`.
pub fn pipeline_interleaved_s(
    fwd: &[f64],
    bwd: &[f64],
    micro_batches: u32,
    p2p_s: f64,
    v: u32,
) -> f64 {
    let p = fwd.len() as f64;
    let v = f64::from(v.max(1));
    let m = f64::from(micro_batches.max(1));
    let sum: f64 = fwd.iter().zip(bwd).map(|(f, b)| f + b).sum();
    let slow = fwd.iter().zip(bwd).map(|(f, b)| f + b).fold(0.0, f64::max);
    let hops = (p * v - 1.0).max(0.0);
    m * slow + (sum - slow) / v + 2.0 * hops * p2p_s
}

/// Makespan of a plain 1F1B step pass by pass [s]: every stage runs its passes in 1F1B order
/// (warm-up forwards, one forward one backward, cool-down backwards; Narayanan et al. 2021,
/// PipeDream-Flush), a pass starts when its stage is free and its input has arrived, and a
/// pass that hands its output to a neighbour stage ends with that blocking send (`p2p_s`;
/// Megatron-LM's `send_forward` / `send_backward` wait for the transfer). Exact for uneven
/// stages, where the closed form `m·slow + Σ others` is only a bound. `ends` is scratch
/// (2·p·m entries; kept by the caller so the per-step path does not allocate).
pub fn pipeline_1f1b_passes_s(
    fwd: &[f64],
    bwd: &[f64],
    micro_batches: u32,
    p2p_s: f64,
    ends: &mut Vec<f64>,
) -> f64 {
    pipeline_passes_s(fwd, bwd, micro_batches, p2p_s, 1, ends)
}

/// The `k`-th pass of stage `s` (of `p`, `v` model chunks, `m` micro-batches): (backward?,
/// micro-batch, chunk). `v = 1`: 1F1B order. `v > 1`: Megatron-LM's interleaved order
/// (`megatron/core/pipeline_parallel/schedules.py`, `get_schedule_table` and
/// `get_pp_rank_microbatches` at the default `microbatch_group_size_per_vp_stage = p`): the
/// j-th forward runs micro-batch `p·⌊j/(p·v)⌋ + j mod p` through chunk `⌊j/p⌋ mod v`
/// (micro-batches in groups of `p` through chunk 0, then chunk 1, ...), the j-th backward the
/// same with the chunk mirrored; `(p-s-1)·2 + (v-1)·p` warm-up forwards (at most `m·v`).
fn pass_of(k: usize, s: usize, p: usize, v: usize, m: usize) -> (bool, usize, usize) {
    let total = m * v;
    let warm = if v == 1 {
        (p - 1 - s).min(m)
    } else {
        ((p - s - 1) * 2 + (v - 1) * p).min(total)
    };
    let (bwd, j) = if k < warm {
        (false, k)
    } else if k < warm + 2 * (total - warm) {
        let i = k - warm;
        if i.is_multiple_of(2) {
            (false, warm + i / 2)
        } else {
            (true, i / 2)
        }
    } else {
        (true, k - (warm + 2 * (total - warm)) + (total - warm))
    };
    if v == 1 {
        return (bwd, j, 0);
    }
    // The last group of micro-batches may be shorter than p (`get_schedule_table`).
    let group = j / (p * v);
    let size = p.min(m - group * p);
    let r = j - group * p * v;
    let (mb, chunk) = (group * p + r % size, r / size);
    (bwd, mb, if bwd { v - 1 - chunk } else { chunk })
}

/// Makespan of a 1F1B (`v = 1`) or interleaved 1F1B (`v` model chunks per stage) step pass by
/// pass [s]: as [`pipeline_1f1b_passes_s`], chunk `c` of stage `s` taking `fwd[s * v + c]` and
/// `bwd[s * v + c]` (so `fwd.len()` is stages × `v`); a forward through chunk `c` of stage 0 waits for chunk `c - 1` of the last
/// stage (and the backward the other way round), and every pass but the model's first
/// backward and last forward ends with a blocking send. `ends`: scratch (2·p·m·v entries).
pub fn pipeline_passes_s(
    fwd: &[f64],
    bwd: &[f64],
    micro_batches: u32,
    p2p_s: f64,
    v: u32,
    ends: &mut Vec<f64>,
) -> f64 {
    let vu = v.max(1) as usize;
    passes_by(
        fwd.len() / vu,
        v,
        micro_batches,
        |_| p2p_s,
        ends,
        false,
        |s, (b, _, c), _, t| t + if b { bwd[s * vu + c] } else { fwd[s * vu + c] },
    )
}

/// Makespan of a (interleaved) 1F1B step pass by pass over `p` stages [s], each pass timed by
/// `run(stage, (backward?, micro-batch, chunk), next, start)` → when its compute ends, `next`
/// being the stage's next pass (backward?, chunk) in its order (None after its last, or when
/// `want_next` is false: its lookup is skipped on the hot path of a `run` that ignores it); the send
/// that ends a pass crosses stage boundary `hop(b)` (between stage `b` and stage `(b + 1) % p`:
/// a forward of stage `s` sends over `s`, a backward over `s - 1`, as the boundaries may
/// price differently — NVLink inside a node, the NIC across). Each stage's passes are run in
/// its order, so `run` may carry per-stage state from one pass to the next. Dependencies as
/// [`pipeline_passes_s`]; `ends`: scratch (2·p·m·v entries, filled as it describes).
pub(super) fn passes_by(
    p: usize,
    v: u32,
    micro_batches: u32,
    hop: impl Fn(usize) -> f64,
    ends: &mut Vec<f64>,
    want_next: bool,
    mut run: impl FnMut(usize, (bool, usize, usize), Option<(bool, usize)>, f64) -> f64,
) -> f64 {
    let v = v.max(1) as usize;
    let m = micro_batches.max(1) as usize;
    if p == 0 {
        return 0.0;
    }
    // ends[((s * v + c) * m + mb) * 2 + bwd]: end of that pass, NaN until scheduled.
    ends.clear();
    ends.resize(2 * p * m * v, f64::NAN);
    let at = |s: usize, c: usize, mb: usize, b: bool| pass_slot((v, m), s, c, mb, b);
    let mut done = 0;
    let mut cursor = [0usize; 64];
    let mut clock = [0.0f64; 64];
    let mut cur_big;
    let mut clk_big;
    let (cursor, clock): (&mut [usize], &mut [f64]) = if p <= 64 {
        (&mut cursor[..p], &mut clock[..p])
    } else {
        cur_big = vec![0usize; p];
        clk_big = vec![0.0f64; p];
        (&mut cur_big[..], &mut clk_big[..])
    };
    let passes = 2 * m * v;
    while done < 2 * p * m * v {
        let before = done;
        for s in 0..p {
            while cursor[s] < passes {
                let (bwd_pass, mb, c) = pass_of(cursor[s], s, p, v, m);
                let dep = pass_dep(ends, (p, v, m), s, c, mb, bwd_pass);
                if dep.is_nan() {
                    break;
                }
                let next = (want_next && cursor[s] + 1 < passes).then(|| {
                    let (b, _, c) = pass_of(cursor[s] + 1, s, p, v, m);
                    (b, c)
                });
                let send = if bwd_pass {
                    if s > 0 || c > 0 {
                        hop((s + p - 1) % p)
                    } else {
                        0.0
                    }
                } else if s + 1 < p || c + 1 < v {
                    hop(s)
                } else {
                    0.0
                };
                let end = run(s, (bwd_pass, mb, c), next, clock[s].max(dep)) + send;
                clock[s] = end;
                ends[at(s, c, mb, bwd_pass)] = end;
                cursor[s] += 1;
                done += 1;
            }
        }
        if done == before {
            // Both orders are deadlock-free; this guards the loop should the order be wrong.
            break;
        }
    }
    clock.iter().copied().fold(0.0, f64::max)
}

/// The slot of a pass in an interleaved schedule's `ends` table, for `(v, m)` model chunks and
/// micro-batches: `((s * v + c) * m + mb) * 2 + bwd` for stage `s`, chunk `c`, micro-batch `mb`.
#[inline]
pub(super) fn pass_slot((v, m): (usize, usize), s: usize, c: usize, mb: usize, b: bool) -> usize {
    ((s * v + c) * m + mb) * 2 + b as usize
}

/// When the input of a pass of the interleaved 1F1B schedule is ready [s] (NaN while the pass it
/// waits on has not run), for `(p, v, m)` stages, chunks and micro-batches: a forward waits on the
/// previous stage's forward of its chunk (stage 0 on the last stage's previous chunk), a backward on
/// the next stage's backward (the last stage on stage 0's next chunk, and the last chunk's backward on
/// its own forward).
#[inline]
pub(super) fn pass_dep(
    ends: &[f64],
    (p, v, m): (usize, usize, usize),
    s: usize,
    c: usize,
    mb: usize,
    b: bool,
) -> f64 {
    let at = |s: usize, c: usize, mb: usize, b: bool| pass_slot((v, m), s, c, mb, b);
    if !b {
        match (s, c) {
            (0, 0) => 0.0,
            (0, c) => ends[at(p - 1, c - 1, mb, false)],
            (s, c) => ends[at(s - 1, c, mb, false)],
        }
    } else if s + 1 == p && c + 1 == v {
        ends[at(s, c, mb, false)]
    } else if s + 1 == p {
        ends[at(0, c + 1, mb, true)]
    } else {
        ends[at(s + 1, c, mb, true)]
    }
}

/// The last micro-batch's backward of chunk `c` on stage `s` in a pass table (`(v, m)` chunks
/// and micro-batches; as [`pipeline_passes_s`] and the combined schedule fill `ends`): when it
/// ended, its blocking send included, and when its compute ended [s]; `p2p_s`: the stage's
/// backward send (over the boundary to stage `s - 1`, or from stage 0 to the last). A stage's last pass is
/// chunk 0's (both orders end on it).
pub(super) fn last_backward_end(
    ends: &[f64],
    (v, m): (usize, usize),
    s: usize,
    c: usize,
    p2p_s: f64,
) -> (f64, f64) {
    let end = ends[pass_slot((v, m), s, c, m - 1, true)];
    (end, if s > 0 || c > 0 { end - p2p_s } else { end })
}

/// One model chunk of a stage as its gradient sync sees it: when its last backward's compute
/// ended [s], its layers' (forward, backward) times of one micro-batch in layer order [s], and
/// its sync's prices.
pub(super) struct ChunkDrain<'a> {
    pub bwd_end: f64,
    pub layers: &'a [(f64, f64)],
    pub sync: ChunkSync,
}

/// How long after its last pass (ended at `stage_end`) a pipeline stage is done with its
/// gradient sync [s]. Each rank syncs its own gradients once its own last backward is done
/// (Megatron-LM's `finalize_model_grads` runs per rank at the end of
/// `forward_backward_pipelining_*`; only the optimizer's global-norm all-reduce joins the
/// stages), so a stage that finishes early syncs early. Without `overlap` the chunks' syncs
/// follow the last pass; with it (`--overlap-grad-reduce`) each layer's bucket goes to the
/// communication stream as the last micro-batch's backward of that layer ends, one bucket
/// after another in the order they are released, and the unbucketed syncs follow the drain.
/// `chunk(i)`: the stage's `n` model chunks (at most 64). `z3_drain`: when the stage's ZeRO-3
/// stream has run its last reduce-scatter, from the stage's end (−∞ without ZeRO-3): the
/// rank drains its side streams before the once-per-step ops (as the event level's `Drain`).
pub(super) fn stage_synced_s<'a>(
    stage_end: f64,
    n: usize,
    chunk: impl Fn(usize) -> ChunkDrain<'a>,
    overlap: bool,
    z3_drain: f64,
) -> f64 {
    let n = n.min(64);
    if !overlap {
        return z3_drain.max(0.0) + (0..n).map(|i| chunk(i).sync.all_s).sum::<f64>();
    }
    // Chunks in the order their last backwards ran (they run one after another on the stage).
    let mut order = [0usize; 64];
    for (i, o) in order[..n].iter_mut().enumerate() {
        *o = i;
    }
    order[..n].sort_unstable_by(|&a, &b| {
        (chunk(a).bwd_end, a)
            .partial_cmp(&(chunk(b).bwd_end, b))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    // Times from the stage's end.
    let mut free = f64::NEG_INFINITY;
    let mut rest = 0.0;
    for &i in &order[..n] {
        let c = chunk(i);
        let layers_b: f64 = c.layers.iter().map(|x| x.1).sum();
        // The backward runs the layers last to first, then the ops after them (embedding).
        let mut t = (c.bwd_end - stage_end) - c.sync.tail_b_s - layers_b;
        for l in c.layers.iter().rev() {
            t += l.1;
            free = free.max(t) + c.sync.bucket_s;
        }
        rest += c.sync.unbucketed_s;
    }
    free.max(z3_drain).max(0.0) + rest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_1f1b_is_m_plus_p_minus_one_passes() {
        // p = 4 stages of 3 s (1 fwd + 2 bwd), m = 8: (8 + 3) x 3 s + 2 x 3 hops x 0.1 s.
        let t = pipeline_1f1b_s(&[1.0; 4], &[2.0; 4], 8, 0.1);
        assert!((t - (33.0 + 0.6)).abs() < 1e-12, "{t}");
    }

    #[test]
    fn interleaving_divides_the_bubble_and_multiplies_the_hops() {
        let (p, m) = (4.0, 8.0);
        let plain = pipeline_interleaved_s(&[1.0; 4], &[2.0; 4], 8, 0.0, 1);
        let v2 = pipeline_interleaved_s(&[1.0; 4], &[2.0; 4], 8, 0.0, 2);
        // Bubble fraction (1/v)(p-1)/m of the ideal m x 3 s (Narayanan et al. 2021).
        let ideal = m * 3.0;
        assert!(((plain - ideal) / ideal - (p - 1.0) / m).abs() < 1e-12);
        assert!(((v2 - ideal) / ideal - 0.5 * (p - 1.0) / m).abs() < 1e-12);
        let hops1 = pipeline_interleaved_s(&[1.0; 4], &[2.0; 4], 8, 1.0, 1) - plain;
        let hops2 = pipeline_interleaved_s(&[1.0; 4], &[2.0; 4], 8, 1.0, 2) - v2;
        assert_eq!((hops1, hops2), (6.0, 14.0));
    }

    #[test]
    fn pass_by_pass_equals_the_closed_form_on_even_stages() {
        // Why: on identical stages the closed form is exact, so the two must agree.
        let mut scratch = Vec::new();
        let exact = pipeline_1f1b_passes_s(&[1.0; 4], &[2.0; 4], 8, 0.0, &mut scratch);
        assert!((exact - 33.0).abs() < 1e-12, "{exact}");
    }

    #[test]
    fn pass_by_pass_is_below_the_bound_when_the_slow_stage_leads() {
        // Stage 0 slow (3 + 6), stage 1 fast (1 + 2), m = 4: stage 0's warm-up forward of
        // micro-batch 1 hides part of stage 1's first pass. By hand: stage 0 F0 [0,3], F1 [3,6];
        // stage 1 F0 [3,4], B0 [4,6]; stage 0 B0 [6,12], F2 [12,15], B1 [15,21], F3 [21,24],
        // B2 [24,30], B3 [30,36]. The bound m·9 + 3 = 39.
        let mut scratch = Vec::new();
        let exact = pipeline_1f1b_passes_s(&[3.0, 1.0], &[6.0, 2.0], 4, 0.0, &mut scratch);
        assert!((exact - 36.0).abs() < 1e-12, "{exact}");
        assert!(exact < pipeline_1f1b_s(&[3.0, 1.0], &[6.0, 2.0], 4, 0.0));
    }

    #[test]
    fn a_stage_syncs_its_own_gradients_after_its_own_last_backward() {
        let sync = |all_s, bucket_s, unbucketed_s, tail_b_s| ChunkSync {
            all_s,
            bucket_s,
            unbucketed_s,
            tail_b_s,
            gather_s: 0.0,
        };
        let layers = [(0.0, 1.0), (0.0, 2.0)];
        // Without overlap: the chunks' syncs after the stage's end, 10 + 1 + 2.
        let chunks = [sync(1.0, 0.0, 0.0, 0.0), sync(2.0, 0.0, 0.0, 0.0)];
        let drain = |i: usize| ChunkDrain {
            bwd_end: 10.0,
            layers: &layers,
            sync: chunks[i],
        };
        assert_eq!(
            stage_synced_s(10.0, 2, drain, false, f64::NEG_INFINITY),
            3.0
        );
        // A ZeRO-3 stream still busy 2 s after the stage's end delays the syncs.
        assert_eq!(stage_synced_s(10.0, 2, drain, false, 2.0), 5.0);
        // With overlap, by hand: the backward runs layer 1 [6.5, 8.5], layer 0 [8.5, 9.5], the
        // embedding [9.5, 10]; bucket 1 [8.5, 10], bucket 0 [10, 11.5]; then the unbucketed
        // 0.25: 1.75 after the stage's end.
        let one = |_: usize| ChunkDrain {
            bwd_end: 10.0,
            layers: &layers,
            sync: sync(3.0, 1.5, 0.25, 0.5),
        };
        assert_eq!(stage_synced_s(10.0, 1, one, true, f64::NEG_INFINITY), 1.75);
        assert_eq!(stage_synced_s(10.0, 1, one, true, 3.0), 3.25);
    }

    #[test]
    fn the_slowest_stage_paces_uneven_stages() {
        // Stage 0 holds one layer more (3 of 3 s + 2 of 2 s): m x 3 + (3 + 2 + 2 - 3).
        let t = pipeline_1f1b_s(
            &[1.0, 2.0 / 3.0, 2.0 / 3.0],
            &[2.0, 4.0 / 3.0, 4.0 / 3.0],
            4,
            0.0,
        );
        assert!((t - (12.0 + 4.0)).abs() < 1e-12, "{t}");
    }
}
