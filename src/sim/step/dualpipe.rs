//! DeepSeek's DualPipe pipeline schedule in the fast path, pass by pass in the order of the
//! reference implementation (github.com/deepseek-ai/DualPipe, `dualpipe/dualpipe.py`).
//!
//! DeepSeek-AI 2024, "DeepSeek-V3 Technical Report" (arXiv:2412.19437), Sec. 3.2.1, Fig. 4-5,
//! Table 2: `pp` ranks (even), the model cut into `pp` stages, rank `r` holding stages `r` and
//! `pp-1-r`; half of the `m` micro-batches enter at rank 0 (direction 0: stage `s` on rank `s`),
//! half at rank `pp-1` (direction 1: stage `s` on rank `pp-1-s`). In steady state a rank runs a
//! forward chunk of one direction together with a backward chunk of the other, each one's
//! dispatch/combine all-to-alls under the other's compute (the same two-stream pass as
//! Megatron-LM's combined 1F1B, `overlap::combined_layers_s`). Pipeline sends are batched and
//! waited for at the next chunk's start (`_commit_and_wait_comm`), as the reference code does.
//!
//! Not modelled: the zero-bubble split of a backward into input and weight gradients (`W`,
//! `WeightGradStore`): each backward here computes both, and a `W` step only waits for the
//! pending communication, so the bubble is `(pp/2-1)(F&B + B)`, not Table 2's `- 3W`.

use super::schedule::{stage_synced_s, ChunkDrain};
use super::StepModel;

/// One step of a rank's program (`DualPipe.step` transliterated): post a receive or a send of
/// local phase `p` (0 = the direction entering at the rank's nearer end), wait for everything
/// posted (`_commit_and_wait_comm`), or compute a forward, a backward, or a forward of one
/// phase together with a backward of the other.
/// (Also the event level's DualPipe order, `sim::event_step::graph::order`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Act {
    RecvF(u8),
    RecvB(u8),
    SendF(u8),
    SendB(u8),
    Commit,
    F(u8),
    B(u8),
    Fb(u8, u8),
}

/// The program of rank `r` of `n` with `m` micro-batches: `DualPipe.step`'s eight steps with its
/// `_forward_chunk`, `_backward_chunk`, `_forward_backward_chunk` and `_weight_chunk` expanded
/// into posts, commits and computes (the `W` of a zero-bubble backward is a commit only).
pub(crate) fn program(r: usize, n: usize, m: usize) -> Vec<Act> {
    use Act::*;
    let half_n = n / 2;
    let h = r.min(n - 1 - r);
    let half_m = m / 2;
    let middle = r + 1 == half_n || r == half_n;
    let mut a = Vec::new();
    let fwd = |a: &mut Vec<Act>, p: u8, recv: bool, send: bool| {
        if recv {
            a.push(RecvF(p));
        }
        a.extend([Commit, F(p)]);
        if send {
            a.push(SendF(p));
        }
    };
    let bwd = |a: &mut Vec<Act>, p: u8, send: bool| {
        a.extend([RecvB(p), Commit, B(p)]);
        if send {
            a.push(SendB(p));
        }
    };
    let fb = |a: &mut Vec<Act>, p0: u8, p1: u8, recv0: bool| {
        if recv0 {
            a.push(RecvF(p0));
        }
        a.extend([RecvB(p1), Commit, Fb(p0, p1), SendF(p0), SendB(p1)]);
    };
    // Step 1: nF0.
    for _ in 0..(half_n - h - 1) * 2 {
        fwd(&mut a, 0, true, true);
    }
    // Step 2: nF0F1.
    a.push(RecvF(0));
    for i in 0..=h {
        fwd(&mut a, 0, false, middle);
        a.push(RecvF(0));
        fwd(&mut a, 1, true, !middle || i < h);
        if !middle {
            a.push(SendF(0));
        }
    }
    // Step 3: nB1W1F1.
    for _ in 0..half_n - h - 1 {
        bwd(&mut a, 1, true);
        a.extend([RecvF(1), Commit]);
        fwd(&mut a, 1, false, true);
    }
    // Step 4 (main): nF0B1F1B0; the middle ranks run their first pair apart.
    for i in 0..(half_m + h + 1).saturating_sub(n) {
        if i == 0 {
            if middle {
                fwd(&mut a, 0, false, false);
                a.push(SendF(1));
                bwd(&mut a, 1, false);
                a.extend([SendF(0), SendB(1)]);
            } else {
                fb(&mut a, 0, 1, false);
            }
        } else {
            fb(&mut a, 0, 1, true);
        }
        fb(&mut a, 1, 0, true);
    }
    // Step 5: nB1F1B0.
    for _ in 0..half_n - h - 1 {
        bwd(&mut a, 1, true);
        fb(&mut a, 1, 0, true);
    }
    // Step 6: nB1B0.
    for _ in 0..=h {
        bwd(&mut a, 1, true);
        bwd(&mut a, 0, true);
    }
    // Step 7: nWB0.
    for _ in 0..half_n - h - 1 {
        a.push(Commit);
        bwd(&mut a, 0, true);
    }
    // Step 8: nW, then the last commit.
    for _ in 0..=h {
        a.push(Commit);
    }
    a.push(Commit);
    a
}

/// A pending transfer of a rank: (direction, backward?, micro-batch, stage that sends it).
type Key = (usize, bool, usize, usize);

/// One rank while the schedule runs.
#[derive(Clone, Copy, Debug, Default)]
struct Rank {
    pc: usize,
    clock: f64,
    /// Sends and receives posted since the last commit (at most two of each in `dualpipe.py`).
    sends: [Option<Key>; 4],
    recvs: [Option<Key>; 4],
    /// When the pending commit posted its sends (None: not yet).
    posted: Option<f64>,
    /// Per direction: forwards/backwards sent and received so far (`current_*_chunk_id`).
    sent_f: [usize; 2],
    sent_b: [usize; 2],
    recv_f: [usize; 2],
    recv_b: [usize; 2],
}

/// DualPipe's programs (per micro-batch count) and its scratch; kept by the step model so the
/// per-step path does not allocate once a micro-batch count has been seen.
#[derive(Clone, Debug, Default)]
pub(super) struct DualPipe {
    programs: Vec<(usize, Vec<Vec<Act>>)>,
    /// When each transfer was posted, `((d * 2 + bwd) * (m/2) + mb) * pp + stage` (NaN: not yet).
    sent: Vec<f64>,
    ranks: Vec<Rank>,
    /// Per rank: when its last commit ended [s].
    pub rank_end: Vec<f64>,
    /// Per rank and stage held (0: stage `r`, 1: stage `pp-1-r`): when its last backward's
    /// compute ended [s].
    pub last_b: Vec<[f64; 2]>,
    /// Per knob setting (the step model's `cache` index): optimizer time of the slowest rank
    /// (both of its stages) [s].
    opt_s: Vec<f64>,
}

/// The stage rank `r` of `n` runs for direction `d`.
#[inline]
fn stage_of(r: usize, n: usize, d: usize) -> usize {
    if d == 0 {
        r
    } else {
        n - 1 - r
    }
}

impl DualPipe {
    /// Makespan of one DualPipe step [s]: `f[s]`, `b[s]` a forward / backward of stage `s` for
    /// one micro-batch, `comb[2r]` rank `r`'s forward of stage `r` with a backward of stage
    /// `pp-1-r` and `comb[2r+1]` the other pair, `p2p_s` one pipeline transfer (a commit with
    /// sends waits for them to complete; a receive arrives `p2p_s` after both ends posted it).
    pub(super) fn makespan(
        &mut self,
        f: &[f64],
        b: &[f64],
        comb: &[f64],
        m: usize,
        p2p_s: f64,
    ) -> f64 {
        let n = f.len();
        if n < 2 || m < 2 {
            return f64::NAN;
        }
        let pi = match self.programs.iter().position(|(k, _)| *k == m) {
            Some(i) => i,
            None => {
                self.programs
                    .push((m, (0..n).map(|r| program(r, n, m)).collect()));
                self.programs.len() - 1
            }
        };
        let half_m = m / 2;
        let slot = |(d, bw, mb, s): Key| ((d * 2 + bw as usize) * half_m + mb) * n + s;
        self.sent.clear();
        self.sent.resize(4 * half_m * n, f64::NAN);
        self.ranks.clear();
        self.ranks.resize(n, Rank::default());
        self.rank_end.clear();
        self.rank_end.resize(n, 0.0);
        self.last_b.clear();
        self.last_b.resize(n, [0.0; 2]);
        let progs = &self.programs[pi].1;
        let mut left: usize = progs.iter().map(Vec::len).sum();
        while left > 0 {
            let before = left;
            for (r, prog) in progs.iter().enumerate() {
                let second = usize::from(r >= n / 2);
                let st = &mut self.ranks[r];
                while st.pc < prog.len() {
                    let dir = |p: u8| usize::from(p) ^ second;
                    let push = |q: &mut [Option<Key>; 4], k: Key| {
                        if let Some(e) = q.iter_mut().find(|e| e.is_none()) {
                            *e = Some(k);
                        }
                    };
                    match prog[st.pc] {
                        Act::RecvF(p) => {
                            let d = dir(p);
                            let s = stage_of(r, n, d);
                            if s > 0 {
                                push(&mut st.recvs, (d, false, st.recv_f[d], s - 1));
                                st.recv_f[d] += 1;
                            }
                        }
                        Act::RecvB(p) => {
                            let d = dir(p);
                            let s = stage_of(r, n, d);
                            if s + 1 < n {
                                push(&mut st.recvs, (d, true, st.recv_b[d], s + 1));
                                st.recv_b[d] += 1;
                            }
                        }
                        Act::SendF(p) => {
                            let d = dir(p);
                            let s = stage_of(r, n, d);
                            if s + 1 < n {
                                push(&mut st.sends, (d, false, st.sent_f[d], s));
                                st.sent_f[d] += 1;
                            }
                        }
                        Act::SendB(p) => {
                            let d = dir(p);
                            let s = stage_of(r, n, d);
                            if s > 0 {
                                push(&mut st.sends, (d, true, st.sent_b[d], s));
                                st.sent_b[d] += 1;
                            }
                        }
                        Act::Commit => {
                            let post = *st.posted.get_or_insert(st.clock);
                            let any_send = st.sends.iter().any(Option::is_some);
                            for k in st.sends.iter_mut().filter_map(Option::take) {
                                self.sent[slot(k)] = post;
                            }
                            let mut ready = if any_send { post + p2p_s } else { post };
                            let mut blocked = false;
                            for k in st.recvs.iter().flatten() {
                                let t = self.sent[slot(*k)];
                                if t.is_nan() {
                                    blocked = true;
                                    break;
                                }
                                ready = ready.max(t.max(post) + p2p_s);
                            }
                            if blocked {
                                // Keep the posted time; the sends are out already.
                                if any_send {
                                    st.clock = st.clock.max(post + p2p_s);
                                }
                                break;
                            }
                            st.clock = st.clock.max(ready);
                            st.recvs = [None; 4];
                            st.posted = None;
                        }
                        Act::F(p) => st.clock += f[stage_of(r, n, dir(p))],
                        Act::B(p) => {
                            let s = stage_of(r, n, dir(p));
                            st.clock += b[s];
                            self.last_b[r][usize::from(s != r)] = st.clock;
                        }
                        Act::Fb(p0, p1) => {
                            let s0 = stage_of(r, n, dir(p0));
                            let s1 = stage_of(r, n, dir(p1));
                            st.clock += comb[2 * r + usize::from(s0 != r)];
                            self.last_b[r][usize::from(s1 != r)] = st.clock;
                        }
                    }
                    st.pc += 1;
                    left -= 1;
                }
                self.rank_end[r] = st.clock;
            }
            if left == before {
                // dualpipe.py is deadlock-free and sends never wait here; this guards the loop.
                return f64::NAN;
            }
        }
        self.rank_end.iter().copied().fold(0.0, f64::max)
    }
}

impl StepModel {
    /// Makespan of this step's pipeline under DualPipe [s] (`DualPipe::makespan` over the
    /// per-stage times of `step_block`; the paired passes timed on two streams from the layers'
    /// halves plus each stage's ops outside the layers). NaN if the plan has no DualPipe.
    pub(super) fn dualpipe_pipe(&mut self, fi: usize, m: u32) -> f64 {
        let n = self.plan.pp as usize;
        let Some(mut dual) = self.dual.take() else {
            return f64::NAN;
        };
        let f = &self.cache[fi];
        let mut comb = std::mem::take(&mut self.comb);
        comb.clear();
        for r in 0..n {
            for (sf, sb) in [(r, n - 1 - r), (n - 1 - r, r)] {
                let lf = self.stage_layers[sf].clone();
                let lb = self.stage_layers[sb].clone();
                let (hf, hb) = (
                    &self.halves[lf.start as usize..lf.end as usize],
                    &self.halves[lb.start as usize..lb.end as usize],
                );
                let t = super::overlap::combined_layers_s(
                    hf.iter().map(|x| &x.0),
                    hb.iter().rev().map(|x| &x.1),
                );
                comb.push(f.extra[sf].f_s + f.extra[sb].b_s + t);
            }
        }
        // Every transfer at the dearest boundary's price (per-boundary `hops` not yet threaded
        // through DualPipe's two directions: pessimistic where some boundaries stay in a node).
        let t = dual.makespan(&self.stage_f, &self.stage_b, &comb, m as usize, f.p2p_s);
        self.comb = comb;
        self.dual = Some(dual);
        t
    }

    /// How long after the pipeline's end (`pipe`) the last rank is done with its gradient sync
    /// under DualPipe [s]: each rank syncs the gradients of both stages it holds after its own
    /// last backward of each (`schedule::stage_synced_s` with the two stages as its chunks).
    pub(super) fn dualpipe_sync(&self, fi: usize, pipe: f64) -> f64 {
        let Some(dual) = &self.dual else {
            return 0.0;
        };
        let f = &self.cache[fi];
        let n = self.plan.pp as usize;
        let mut exposed = 0.0f64;
        for r in 0..n.min(dual.rank_end.len()) {
            let end = dual.rank_end[r];
            let chunk = |c: usize| {
                let s = if c == 0 { r } else { n - 1 - r };
                let l = self.stage_layers[s].clone();
                ChunkDrain {
                    bwd_end: dual.last_b[r][c],
                    layers: &self.layer_fb[l.start as usize..l.end as usize],
                    sync: f.chunk_sync[s],
                }
            };
            // DualPipe refuses ZeRO-3: no side stream to drain.
            let t = stage_synced_s(
                end,
                2,
                chunk,
                self.schedule.overlap_grad_sync,
                f64::NEG_INFINITY,
            );
            exposed = exposed.max(end - pipe + t);
        }
        exposed
    }

    /// Optimizer time of the slowest rank under DualPipe [s]: each rank updates both stages it
    /// holds (Table 2's "2x" parameters), so the rank with the largest pair of stages paces it.
    /// Priced once per knob setting from the stages' own per-step ops.
    pub(super) fn dualpipe_opt(&mut self, fi: usize) -> f64 {
        let Some(mut dual) = self.dual.take() else {
            return 0.0;
        };
        while dual.opt_s.len() <= fi {
            let k = self.price_knobs(self.cache[dual.opt_s.len()].knobs);
            let per_stage: Vec<f64> = self
                .chunk_steps
                .iter()
                .map(|(ops, _)| {
                    ops.iter()
                        .filter(|op| {
                            !op.class.is_comm()
                                || op.phase == crate::workload::step_ops::Phase::Optimizer
                        })
                        .map(|op| self.price_op(op, &k).time_s)
                        .sum()
                })
                .collect();
            let n = per_stage.len();
            let worst = (0..n)
                .map(|r| per_stage[r] + per_stage[n - 1 - r])
                .fold(0.0, f64::max);
            dual.opt_s.push(worst);
        }
        let t = dual.opt_s[fi];
        self.dual = Some(dual);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(prog: &[Act], want: impl Fn(&Act) -> bool) -> usize {
        prog.iter().filter(|a| want(a)).count()
    }

    #[test]
    fn every_rank_runs_each_micro_batch_forward_and_backward_once_per_stage() {
        // Why: the transliteration must keep dualpipe.py's counts (its asserts: m/2 per phase).
        for (n, m) in [(2, 4), (4, 8), (4, 10), (8, 16), (8, 40)] {
            for r in 0..n {
                let p = program(r, n, m);
                for ph in 0..2u8 {
                    let fw = count(&p, |a| matches!(a, Act::F(x) if *x == ph))
                        + count(&p, |a| matches!(a, Act::Fb(x, _) if *x == ph));
                    let bw = count(&p, |a| matches!(a, Act::B(x) if *x == ph))
                        + count(&p, |a| matches!(a, Act::Fb(_, x) if *x == ph));
                    assert_eq!((fw, bw), (m / 2, m / 2), "n {n} m {m} rank {r} phase {ph}");
                }
            }
        }
    }

    /// Stage times all `t_f`, `t_b`, paired passes `t_fb`, no transfer cost.
    fn uniform(n: usize, m: usize, t_f: f64, t_b: f64, t_fb: f64) -> f64 {
        let mut d = DualPipe::default();
        d.makespan(&vec![t_f; n], &vec![t_b; n], &vec![t_fb; 2 * n], m, 0.0)
    }

    #[test]
    fn bubble_matches_table_2_without_the_weight_split() {
        // DeepSeek-V3 report Table 2: bubble (pp/2 - 1)(F&B + B - 3W); W = 0 here (not split).
        // Ideal work per rank: m/2 forwards and backwards of each of its two stages.
        for (n, m) in [(4, 8), (4, 16), (8, 16), (8, 32)] {
            let (f, b, fb) = (1.0, 2.0, 2.5);
            let t = uniform(n, m, f, b, fb);
            let ideal = (m as f64) * (f + b);
            // The paired passes save (f + b - fb) each; count them from the programs.
            let pairs = count(&program(0, n, m), |a| matches!(a, Act::Fb(..)));
            let work = ideal - pairs as f64 * (f + b - fb);
            let bubble = t - work;
            let table2 = (n as f64 / 2.0 - 1.0) * (fb + b);
            eprintln!("n {n} m {m}: bubble {bubble}, Table 2 (W = 0) {table2}");
            assert!(
                bubble >= -1e-9 && bubble <= table2 + f + b + 1e-9,
                "n {n} m {m}: bubble {bubble} vs Table 2 {table2}"
            );
        }
    }

    #[test]
    fn hiding_under_paired_passes_shortens_the_step_and_transfers_lengthen_it() {
        let base = uniform(4, 16, 1.0, 2.0, 3.0);
        let hidden = uniform(4, 16, 1.0, 2.0, 2.4);
        assert!(hidden < base - 1.0, "{hidden} vs {base}");
        let mut d = DualPipe::default();
        let slow = d.makespan(&[1.0; 4], &[2.0; 4], &[3.0; 8], 16, 0.1);
        assert!(slow > base, "{slow} vs {base}");
        assert!(d.rank_end.iter().all(|e| *e > 0.0 && e.is_finite()));
    }

    #[test]
    fn a_dualpipe_job_steps_and_beats_1f1b_on_two_stages() {
        // Why: end to end through StepModel (paired passes from the layers' halves, the sync of
        // both stages, the doubled optimizer). On pp = 2 DualPipe has no bubble pass and hides
        // the all-to-alls of its paired passes; 1F1B has a (F + B) bubble.
        use crate::scenario::parse_scenario;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let text = std::fs::read_to_string(dir.join("single_node.toml")).expect("scenario");
        let s = parse_scenario("single_node.toml", &text, &dir).expect("valid");
        let mut job = s.moe.clone().expect("moe");
        job.plan.dp = 4;
        job.plan.ep = 4;
        job.plan.pp = 2;
        let run = |job: &crate::scenario::Job| {
            let mut sm = StepModel::new(job, &s.cluster).expect("op list");
            let e = sm.experts();
            let shares = vec![1.0 / e as f64; sm.moe_layers() * e];
            sm.step(&shares, sm.full_knobs())
        };
        let one = run(&job);
        job.schedule.pipeline = crate::workload::PipelineKind::DualPipe;
        job.schedule.validate(&job.model, &job.plan).expect("valid");
        let dual = run(&job);
        assert!(dual.time_s.is_finite() && dual.time_s > 0.0, "{dual:?}");
        assert!(
            dual.time_s < one.time_s,
            "{} vs {}",
            dual.time_s,
            one.time_s
        );
        assert_eq!(dual.tokens, one.tokens);
    }

    #[test]
    fn the_deepseek_v3_case_fits_and_dualpipe_and_its_recompute_shorten_its_step() {
        // Why: the validation case runs the report's plan (pp 16 DualPipe, 120 micro-batches,
        // norms_up_proj); it must pass the memory check, and each of the report's choices must
        // shorten the step against the settings the case used before (1F1B, full recompute).
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios/validation/deepseek_v3.toml");
        let s = crate::scenario::Scenario::from_file(&path).expect("case parses and fits");
        let job = s.moe.clone().expect("moe");
        assert_eq!(
            job.schedule.pipeline,
            crate::workload::PipelineKind::DualPipe
        );
        let run = |job: &crate::scenario::Job| {
            let mut sm = StepModel::new(job, &s.cluster).expect("op list");
            let e = sm.experts();
            let shares = vec![1.0 / e as f64; sm.moe_layers() * e];
            sm.step(&shares, sm.full_knobs()).time_s
        };
        let dual = run(&job);
        let mut one = job.clone();
        one.schedule.pipeline = crate::workload::PipelineKind::OneFOneB;
        let one_t = run(&one);
        let mut full = job.clone();
        full.plan.recompute = crate::workload::Recompute::Full;
        let full_t = run(&full);
        eprintln!("DeepSeek-V3 step: DualPipe {dual:.2} s, 1F1B {one_t:.2} s, DualPipe + full recompute {full_t:.2} s");
        assert!(dual.is_finite() && dual > 0.0);
        assert!(dual < one_t && dual < full_t);
    }

    #[test]
    fn dualpipe_beats_1f1b_bubble_on_the_same_stages() {
        // Why: Table 2's point: (pp/2 - 1) paired passes of bubble against 1F1B's (pp - 1)(F + B).
        let (n, m) = (8usize, 16usize);
        let dual = uniform(n, m, 1.0, 2.0, 3.0);
        let mut ends = Vec::new();
        let one =
            super::super::pipeline_passes_s(&[1.0; 8], &[2.0; 8], m as u32, 0.0, 1, &mut ends);
        assert!(dual < one, "{dual} vs {one}");
    }
}
