//! The per-rank loops of the step's routed ops: every expert-parallel rank's forward and
//! backward time and the group's dynamic energy and busy time, from the memo's rows (a rank's
//! whole sum by its load when no op is sized per local expert, else op by op).

#[cfg(test)]
use super::memo::table_of;
use super::memo::{Memo, PriceTable, RankTable, RoutedOp, ROW_SUM_RANKS};
use super::moe::Routed;
use super::StepModel;
use crate::hardware::PriceKnobs;
use crate::workload::step_ops::RoutedBy;

impl StepModel {
    /// Every rank's routed ops from its row of the rank table (priced through the per-op
    /// tables if new; padded ops at `pad_m`, the group's capacity): the slowest rank's forward
    /// and backward [s]; adds each compute op's
    /// dynamic energy and busy time to `out` in rank order, then list order (as
    /// [`Self::rank_ops`]), or, in groups of more than [`ROW_SUM_RANKS`], each rank's sums.
    pub(super) fn rank_rows(
        &self,
        priced: &[RoutedOp],
        k: &PriceKnobs,
        tables: &mut [PriceTable; 3],
        ranks: &mut RankTable,
        pad_m: f64,
        out: &mut Routed,
    ) -> (f64, f64) {
        let ep = self.plan.ep.max(1) as usize;
        let (mut f_max, mut b_max) = (0.0f64, 0.0f64);
        let (mut dyn_j, mut busy_s) = (out.dyn_sum_j, out.busy_sum_s);
        // Padded ops: the group's one capacity on every rank (`routed_layer`).
        let m = if ranks.by_max { pad_m } else { 0.0 };
        for r in 0..ep {
            let load = if ranks.by_load { self.load[r] } else { 0.0 };
            let row = ranks
                .rows
                .row([load, m], |v| self.rank_row(priced, k, tables, load, m, v));
            let v = &ranks.rows.vals[row..row + ranks.rows.stride()];
            f_max = f_max.max(v[0]);
            b_max = b_max.max(v[1]);
            if ep > ROW_SUM_RANKS {
                dyn_j += v[2];
                busy_s += v[3];
            } else {
                for e in v[4..].chunks_exact(2) {
                    dyn_j += e[0];
                    busy_s += e[1];
                }
            }
        }
        out.dyn_sum_j = dyn_j;
        out.busy_sum_s = busy_s;
        (f_max, b_max)
    }

    /// One row of the rank table: the forward and backward time of a rank with `load` assignments
    /// and `m` on its largest expert and its dynamic energy and busy time, summed in list order,
    /// then each compute op's (dynamic energy, busy time) — every price read from the per-op tables.
    #[cold]
    #[inline(never)]
    fn rank_row(
        &self,
        priced: &[RoutedOp],
        k: &PriceKnobs,
        tables: &mut [PriceTable; 3],
        load: f64,
        m: f64,
        v: &mut [f64],
    ) {
        let fill = |tokens: f64| {
            move |ops: &[usize], row: &mut [Memo]| self.price_row(priced, k, tokens, ops, row)
        };
        let (mut rf, mut rb, mut j) = (0.0, 0.0, 4);
        let (mut dyn_j, mut busy_s) = (0.0, 0.0);
        for p in priced {
            let x = match p.by {
                RoutedBy::MaxLocalExpert => {
                    let row = tables[1].row(m, fill(m));
                    tables[1].at(row + p.col)
                }
                _ => {
                    let row = tables[0].row(load, fill(load));
                    tables[0].at(row + p.col)
                }
            };
            if p.busy {
                // Each op's terms only where the row has room for them (small groups).
                if let Some(e) = v.get_mut(j..j + 2) {
                    e.copy_from_slice(&[x.dyn_j, x.time_s]);
                }
                j += 2;
                dyn_j += x.dyn_j;
                busy_s += x.time_s;
            }
            if p.forward {
                rf += x.time_s;
            } else {
                rb += x.time_s;
            }
        }
        v[..4].copy_from_slice(&[rf, rb, dyn_j, busy_s]);
    }

    /// Every rank's routed ops priced op by op from the per-op tables (looped experts: the
    /// template chain once per local slot at its count; padded ops at `pad_m`, the group's
    /// capacity): the slowest rank's forward and backward
    /// [s]; adds each compute op's dynamic energy and busy time to `out`.
    pub(super) fn rank_ops(
        &self,
        priced: &[RoutedOp],
        k: &PriceKnobs,
        tables: &mut [PriceTable; 3],
        pad_m: f64,
        out: &mut Routed,
    ) -> (f64, f64) {
        let ep = self.plan.ep.max(1) as usize;
        let width = self.counts.len() / ep;
        let (mut f_max, mut b_max) = (0.0f64, 0.0f64);
        let fill = |tokens: f64| {
            move |ops: &[usize], row: &mut [Memo]| self.price_row(priced, k, tokens, ops, row)
        };
        for r in 0..ep {
            let counts = &self.counts[r * width..r * width + self.slots_of[r]];
            // This rank's rows of the rank-load and largest-expert tables, priced if new.
            let rank_row = match tables[0].ops.is_empty() {
                true => 0,
                false => tables[0].row(self.load[r], fill(self.load[r])),
            };
            let max_row = match tables[1].ops.is_empty() {
                true => 0,
                false => tables[1].row(pad_m, fill(pad_m)),
            };
            let (mut rf, mut rb) = (0.0, 0.0);
            for p in priced {
                let mut charge = |m: Memo| {
                    if p.busy {
                        out.dyn_sum_j += m.dyn_j;
                        out.busy_sum_s += m.time_s;
                    }
                    m.time_s
                };
                let t = match p.by {
                    RoutedBy::RankReceived => charge(tables[0].at(rank_row + p.col)),
                    RoutedBy::MaxLocalExpert => charge(tables[1].at(max_row + p.col)),
                    RoutedBy::LocalExpert(_) => {
                        let mut t = 0.0;
                        for &c in counts {
                            let row = tables[2].row(c, fill(c));
                            t += charge(tables[2].at(row + p.col));
                        }
                        t
                    }
                };
                if p.forward {
                    rf += t;
                } else {
                    rb += t;
                }
            }
            f_max = f_max.max(rf);
            b_max = b_max.max(rb);
        }
        (f_max, b_max)
    }

    /// Price the ops `ops` (indices into `priced`) at `tokens` into `row` (`Op::at_tokens` +
    /// `price_op`, the unmemoised price). Out of line: the per-step path rarely comes here.
    #[cold]
    #[inline(never)]
    pub(super) fn price_row(
        &self,
        priced: &[RoutedOp],
        k: &PriceKnobs,
        tokens: f64,
        ops: &[usize],
        row: &mut [Memo],
    ) {
        for (m, &i) in row.iter_mut().zip(ops) {
            let q = self.price_op(&priced[i].op.at_tokens(tokens), k);
            *m = Memo {
                time_s: q.time_s,
                dyn_j: (q.energy_j - self.acc.idle_w * q.time_s).max(0.0),
            };
        }
    }

    /// The remembered price of routed op `i` of knob setting `fi` at `tokens` (priced and
    /// remembered if new): what the per-step path reads, one op at a time (for tests).
    #[cfg(test)]
    pub(super) fn price_at(&mut self, fi: usize, i: usize, tokens: f64, k: &PriceKnobs) -> Memo {
        let priced = std::mem::take(&mut self.cache[fi].priced);
        let mut tables = std::mem::take(&mut self.cache[fi].tables);
        let p = &priced[i];
        let t = &mut tables[table_of(p.by)];
        let row = t.row(tokens, |ops, row| {
            self.price_row(&priced, k, tokens, ops, row)
        });
        let m = t.at(row + p.col);
        self.cache[fi].priced = priced;
        self.cache[fi].tables = tables;
        m
    }
}
