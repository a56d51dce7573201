//! Exact memo of routed-op prices by token count: one table per kind of routing load, a row per
//! token count holding the price of every op that load sizes (read back bit for bit).

use crate::workload::step_ops::{Op, RoutedBy};

/// Rows per table (direct-mapped by token count; a power of two). The loads of one knob setting
/// spread over a few hundred counts around their mean, so collisions are rare.
pub(super) const MEMO_SLOTS: usize = 1024;

/// One remembered price of a routed op.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Memo {
    /// The op's time at the row's count [s].
    pub time_s: f64,
    /// Its dynamic energy above idle, `max(energy − idle × time, 0)` [J].
    pub dyn_j: f64,
}

/// A routed op priced per rank (compute, or an expert-TP exchange), with what sizes it.
#[derive(Debug, Clone)]
pub(super) struct RoutedOp {
    /// The template at uniform-routing size.
    pub op: Op,
    /// The load that sizes it.
    pub by: RoutedBy,
    /// Forward (else backward or recompute).
    pub forward: bool,
    /// A compute op: its time is busy time and its energy counts (communication only waits).
    pub busy: bool,
    /// Its column in the table of its load kind ([`table_of`]).
    pub col: usize,
}

/// The table a load kind's ops are remembered in: rank load, largest local expert, each local expert.
pub(super) fn table_of(by: RoutedBy) -> usize {
    match by {
        RoutedBy::RankReceived => 0,
        RoutedBy::MaxLocalExpert => 1,
        RoutedBy::LocalExpert(_) => 2,
    }
}

/// Prices of the ops one kind of load sizes, by token count (allocated once per knob setting;
/// the per-step path only reads and writes).
#[derive(Debug, Clone, Default)]
pub(super) struct PriceTable {
    /// The ops of this table (indices into the routed-op list), one column each.
    pub ops: Vec<usize>,
    /// Token count of each row (NaN: empty; a NaN count never matches and is priced afresh).
    pub keys: Vec<f64>,
    /// `MEMO_SLOTS` rows of `ops.len()` prices.
    pub vals: Vec<Memo>,
}

impl PriceTable {
    /// A table over `ops` (indices into the routed-op list); no memory when empty.
    pub fn new(ops: Vec<usize>) -> PriceTable {
        let (keys, vals) = if ops.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            (
                vec![f64::NAN; MEMO_SLOTS],
                vec![Memo::default(); MEMO_SLOTS * ops.len()],
            )
        };
        PriceTable { ops, keys, vals }
    }

    /// Start of the row for `tokens` in `vals`, after `fill(row, tokens)` prices it if the row
    /// holds another count.
    #[inline]
    pub fn row(&mut self, tokens: f64, fill: impl FnOnce(&[usize], &mut [Memo])) -> usize {
        let n = self.ops.len();
        let slot = (tokens as usize) & (MEMO_SLOTS - 1);
        if self.keys[slot] != tokens {
            fill(&self.ops, &mut self.vals[slot * n..(slot + 1) * n]);
            self.keys[slot] = tokens;
        }
        slot * n
    }
}
