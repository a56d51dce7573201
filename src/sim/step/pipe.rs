//! The pipeline's makespan of one step in the fast path: 1F1B and interleaved 1F1B pass by
//! pass (each send priced by its stage boundary), with ZeRO-3 layer by layer on each stage's
//! stream ([`super::zero3`]), or Megatron-LM's combined 1F1B ([`super::overlap`]).

use super::{overlap, schedule, zero3, StepModel};

impl StepModel {
    /// Makespan of this step's pipeline at knob setting `fi` over `mb` micro-batches [s], from
    /// the per-layer times of the step (`layer_fb`, `halves`, `stage_f`/`stage_b`); fills
    /// `pipe_ends` (and the ZeRO-3 streams) for the gradient sync that follows. Allocation-free
    /// after the first step.
    pub(super) fn pipeline_s(&mut self, fi: usize, mb: u32) -> f64 {
        // Megatron-LM's combined 1F1B with `overlap_ep_comm`.
        let combined = self.combined.then(|| self.combined_pipe(fi, mb));
        let pp = self.plan.pp as usize;
        let f = &self.cache[fi];
        let v = self.schedule.virtual_stages;
        let hops = &f.hops;
        // ZeRO-3: the layers' gathers and reduce-scatters on each stage's own stream.
        let z3 = !f.z3.is_empty();
        // 1F1B and interleaved 1F1B pass by pass (exact on uneven stages, the sends on the
        // critical path as Megatron-LM blocks on them, each priced by its stage boundary); one
        // stage has no pipeline.
        if let Some(t) = combined {
            t
        } else if z3 {
            // Pass by pass and layer by layer: a pass's time depends on its stream's backlog.
            let vu = v.max(1) as usize;
            let ranges = if vu > 1 {
                &self.chunk_layers[..]
            } else {
                &self.stage_layers[..]
            };
            let (e0, el) = (f.edges[0], f.edges[pp - 1]);
            let lay = zero3::Layout {
                pp,
                v: vu,
                ranges,
                layer_fb: &self.layer_fb,
                z3: &f.z3,
                first: [e0[0], e0[3]],
                last: [el[1], el[2]],
            };
            self.z3_streams.clear();
            self.z3_streams.resize(pp, zero3::Stream::default());
            let streams = &mut self.z3_streams;
            if ranges.len() == pp * vu {
                schedule::passes_by(
                    pp,
                    v,
                    mb,
                    |b| hops[b],
                    &mut self.pipe_ends,
                    true,
                    |s, pass, next, t| lay.run(&mut streams[s], s, pass, next, t),
                )
            } else {
                f64::NAN
            }
        } else if pp > 1 {
            // Plain 1F1B is the one-chunk case: each stage's passes are its whole stage.
            let interleaved = v > 1 && self.chunk_layers.len() == pp * v as usize;
            let vu = if interleaved { v as usize } else { 1 };
            if interleaved {
                // Each chunk's passes from its own layers: the embedding rides on the first
                // virtual stage, the head and loss on the last.
                self.chunk_f.clear();
                self.chunk_f.resize(pp * vu, 0.0);
                self.chunk_b.clear();
                self.chunk_b.resize(pp * vu, 0.0);
                for (vs, r) in self.chunk_layers.iter().enumerate() {
                    let k = (vs % pp) * vu + vs / pp;
                    for l in r.clone() {
                        let (lf, lb) = self.layer_fb[l as usize];
                        self.chunk_f[k] += lf;
                        self.chunk_b[k] += lb;
                    }
                }
                let (x0, xl) = (f.extra[0], f.extra[pp - 1]);
                self.chunk_f[0] += x0.f_s;
                self.chunk_b[0] += x0.b_s;
                self.chunk_f[pp * vu - 1] += xl.f_s;
                self.chunk_b[pp * vu - 1] += xl.b_s;
            }
            let (cf, cb) = if interleaved {
                (&self.chunk_f, &self.chunk_b)
            } else {
                (&self.stage_f, &self.stage_b)
            };
            schedule::passes_by(
                pp,
                vu as u32,
                mb,
                |b| hops[b],
                &mut self.pipe_ends,
                false,
                |s, (b, _, c), _, t| t + if b { cb[s * vu + c] } else { cf[s * vu + c] },
            )
        } else {
            schedule::pipeline_interleaved_s(&self.stage_f, &self.stage_b, mb, 0.0, v)
        }
    }

    /// Makespan of this step's pipeline in Megatron-LM's combined 1F1B order
    /// (`overlap::pipeline_combined_s`) [s]: per stage and model chunk the blocking forward and
    /// backward of the passes that run alone, and per (forward chunk, backward chunk) pair the
    /// combined pass, its layers timed on two streams (`overlap::combined_layers_s`) plus the
    /// chunk's ops outside the layers (embedding on the first virtual stage, head and loss on
    /// the last). Allocation-free after the first step.
    fn combined_pipe(&mut self, fi: usize, m: u32) -> f64 {
        let pp = self.plan.pp.max(1) as usize;
        let v = self.schedule.virtual_stages.max(1) as usize;
        let nvs = pp * v;
        if v > 1 && self.chunk_layers.len() != nvs {
            return f64::NAN;
        }
        let f = &self.cache[fi];
        let (x0, xl) = (f.extra[0], f.extra[pp - 1]);
        let extra = |vs: usize| -> (f64, f64) {
            if v == 1 {
                (f.extra[vs].f_s, f.extra[vs].b_s)
            } else {
                let (mut a, mut b) = (0.0, 0.0);
                if vs == 0 {
                    (a, b) = (a + x0.f_s, b + x0.b_s);
                }
                if vs + 1 == nvs {
                    (a, b) = (a + xl.f_s, b + xl.b_s);
                }
                (a, b)
            }
        };
        let layers = |vs: usize| {
            let r = if v == 1 {
                self.stage_layers[vs].clone()
            } else {
                self.chunk_layers[vs].clone()
            };
            r.start as usize..r.end as usize
        };
        let mut cf = std::mem::take(&mut self.chunk_f);
        let mut cb = std::mem::take(&mut self.chunk_b);
        let mut comb = std::mem::take(&mut self.comb);
        cf.clear();
        cb.clear();
        comb.clear();
        for s in 0..pp {
            for c in 0..v {
                let vs = c * pp + s;
                let (ef, eb) = extra(vs);
                let r = layers(vs);
                cf.push(ef + self.layer_fb[r.clone()].iter().map(|x| x.0).sum::<f64>());
                cb.push(eb + self.layer_fb[r].iter().map(|x| x.1).sum::<f64>());
            }
            for c_f in 0..v {
                for c_b in 0..v {
                    let (vf, vb) = (c_f * pp + s, c_b * pp + s);
                    let (hf, hb) = (&self.halves[layers(vf)], &self.halves[layers(vb)]);
                    let t = overlap::combined_layers_s(
                        hf.iter().map(|x| &x.0),
                        hb.iter().rev().map(|x| &x.1),
                    );
                    comb.push(extra(vf).0 + extra(vb).1 + t);
                }
            }
        }
        let hops = &f.hops;
        let t = overlap::pipeline_combined_s(
            &cf,
            &cb,
            &comb,
            m,
            |b| hops[b],
            v as u32,
            &mut self.pipe_ends,
        );
        self.chunk_f = cf;
        self.chunk_b = cb;
        self.comb = comb;
        t
    }
}
