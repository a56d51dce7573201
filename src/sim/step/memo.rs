//! Exact memo of routed-op prices by token count: one table per kind of routing load, a row per
//! token count holding the price of every op that load sizes (read back bit for bit).

use crate::workload::step_ops::{Op, RoutedBy};

/// Rows a table starts with (a power of two); it doubles as counts come. Small, because a sweep
/// point or a short run builds tables for every knob setting it meets and zeroing large ones
/// was a third of such a point's CPU time (`perf`, BENCHMARKS.md).
pub(super) const MEMO_SLOTS: usize = 64;

/// Most prices (rows × ops) a table grows to, 4 MiB of [`Memo`]: a skewed router over a thousand
/// experts gives each rank its own count (a thousand or more distinct keys); past this the table
/// stops growing and a new count evicts the one in its home row.
pub(super) const MEMO_MAX_PRICES: usize = 1 << 18;

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

/// A memo key: a token count, or a rank's (load, largest local expert) pair.
pub(super) trait RowKey: Copy + PartialEq {
    /// The key of an empty row.
    const EMPTY: Self;
    /// Whether a row with this key is empty.
    fn vacant(&self) -> bool;
    /// Whether this key can be remembered (no NaN part: a NaN never matches, it is priced afresh).
    fn storable(&self) -> bool;
    /// 64 well-mixed bits (Fibonacci hashing of the bits: whole counts differ in high bits).
    fn hash(&self) -> u64;
}

impl RowKey for f64 {
    const EMPTY: f64 = f64::NAN;
    fn vacant(&self) -> bool {
        self.is_nan()
    }
    fn storable(&self) -> bool {
        !self.is_nan()
    }
    #[inline]
    fn hash(&self) -> u64 {
        self.to_bits().wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

impl RowKey for [f64; 2] {
    const EMPTY: [f64; 2] = [f64::NAN, f64::NAN];
    fn vacant(&self) -> bool {
        self[0].is_nan()
    }
    fn storable(&self) -> bool {
        !self[0].is_nan() && !self[1].is_nan()
    }
    #[inline]
    fn hash(&self) -> u64 {
        (self[0].to_bits() ^ self[1].to_bits().rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

/// Rows of `stride` values by key: an open-addressed hash table (linear probing, at most half
/// full) that doubles while it stays under `max_vals` values, so a step whose ranks all carry
/// different counts still finds them all on the next step; past that a new key evicts the one
/// in its home row. Allocated once per knob setting and grown only on a new key; the per-step
/// path only reads and writes.
#[derive(Debug, Clone, Default)]
pub(super) struct RowTable<K, V> {
    /// Key of each row ([`RowKey::EMPTY`]: empty).
    pub keys: Vec<K>,
    /// `keys.len()` rows of `stride` values.
    pub vals: Vec<V>,
    /// Values per row.
    stride: usize,
    /// Rows holding a key.
    used: usize,
    /// `64 − log2(keys.len())`: the hash's shift.
    shift: u32,
    /// Most values (rows × stride) the table grows to.
    max_vals: usize,
}

impl<K: RowKey, V: Copy + Default> RowTable<K, V> {
    /// A table of [`MEMO_SLOTS`] rows of `stride` values (no memory when `stride` is 0).
    pub fn new(stride: usize, max_vals: usize) -> Self {
        let rows = if stride == 0 { 0 } else { MEMO_SLOTS };
        RowTable {
            keys: vec![K::EMPTY; rows],
            vals: vec![V::default(); rows * stride],
            stride,
            used: 0,
            shift: 64 - MEMO_SLOTS.trailing_zeros(),
            max_vals,
        }
    }

    /// Rows the table holds now (a power of two).
    #[cfg(test)]
    pub fn rows(&self) -> usize {
        self.keys.len()
    }

    /// Values per row.
    #[inline]
    pub fn stride(&self) -> usize {
        self.stride
    }

    #[inline]
    fn home(&self, key: &K) -> usize {
        (key.hash() >> self.shift) as usize
    }

    /// Start of the row for `key` in `vals`, after `fill(row)` writes it if no row holds `key`.
    #[inline]
    pub fn row(&mut self, key: K, fill: impl FnOnce(&mut [V])) -> usize {
        let mask = self.keys.len() - 1;
        let mut i = self.home(&key);
        // At most half full, so an empty row ends every probe.
        loop {
            let k = self.keys[i];
            if k == key {
                return i * self.stride;
            }
            if k.vacant() {
                break;
            }
            i = (i + 1) & mask;
        }
        self.insert(key, i, fill)
    }

    /// Write `key`'s row: the empty row `empty` its probe ended at, or a fresh one after the
    /// table doubled, or (full) its home row, evicting that row's key.
    #[cold]
    #[inline(never)]
    fn insert(&mut self, key: K, empty: usize, fill: impl FnOnce(&mut [V])) -> usize {
        let n = self.stride;
        let mut i = empty;
        if key.storable() {
            if 2 * (self.used + 1) <= self.keys.len() {
                self.used += 1;
            } else if 2 * self.keys.len() * n <= self.max_vals {
                self.grow();
                i = self.empty_row(&key);
                self.used += 1;
            } else {
                // Full: overwrite the home row (no row is emptied, so every probe chain holds).
                i = self.home(&key);
            }
            self.keys[i] = key;
        }
        // A key that cannot be stored is written into the empty row and leaves it empty.
        fill(&mut self.vals[i * n..(i + 1) * n]);
        i * n
    }

    /// The first empty row on `key`'s probe path.
    fn empty_row(&self, key: &K) -> usize {
        let mask = self.keys.len() - 1;
        let mut i = self.home(key);
        while !self.keys[i].vacant() {
            i = (i + 1) & mask;
        }
        i
    }

    /// Double the rows and re-place every remembered key with its row.
    fn grow(&mut self) {
        let n = self.stride;
        let rows = 2 * self.keys.len();
        let keys = std::mem::replace(&mut self.keys, vec![K::EMPTY; rows]);
        let vals = std::mem::replace(&mut self.vals, vec![V::default(); rows * n]);
        self.shift -= 1;
        for (j, k) in keys.iter().enumerate() {
            if k.vacant() {
                continue;
            }
            let i = self.empty_row(k);
            self.keys[i] = *k;
            self.vals[i * n..(i + 1) * n].copy_from_slice(&vals[j * n..(j + 1) * n]);
        }
    }
}

/// Prices of the ops one kind of load sizes, by token count (a row per count, a column per op).
#[derive(Debug, Clone, Default)]
pub(super) struct PriceTable {
    /// The ops of this table (indices into the routed-op list), one column each.
    pub ops: Vec<usize>,
    /// The prices: a row per token count.
    pub rows: RowTable<f64, Memo>,
}

impl PriceTable {
    /// A table over `ops` (indices into the routed-op list); no memory when empty.
    pub fn new(ops: Vec<usize>) -> PriceTable {
        let rows = RowTable::new(ops.len(), MEMO_MAX_PRICES);
        PriceTable { ops, rows }
    }

    /// Start of the row for `tokens` in `rows.vals`, after `fill(ops, row)` prices it if no row
    /// holds that count.
    #[inline]
    pub fn row(&mut self, tokens: f64, fill: impl FnOnce(&[usize], &mut [Memo])) -> usize {
        let ops = &self.ops;
        self.rows.row(tokens, |row| fill(ops, row))
    }

    /// The remembered price at `row + col`.
    #[inline]
    pub fn at(&self, i: usize) -> Memo {
        self.rows.vals[i]
    }
}

/// Largest expert-parallel group whose energy is summed op by op in rank order (bit for bit the
/// op-by-op method). Above it each rank adds its row's sums (one add per rank instead of one per
/// compute op): the same terms reassociated, a change at the 10⁻¹⁵–10⁻¹³ relative level
/// (`tests_exact`), bought for groups where that per-op chain was most of a step's cost; every
/// shipped scenario (8 ranks) stays bit-identical.
pub(super) const ROW_SUM_RANKS: usize = 64;

/// What one rank's routed ops add up to when no op is sized per local expert, by the rank's
/// (load, largest local expert) pair: a row holds the rank's forward and backward time, its
/// summed dynamic energy and busy time, then the (dynamic energy, busy time) of each compute op
/// in list order — the numbers the per-op loop adds, so rank-order sums over them come out bit for
/// bit the same.
#[derive(Debug, Clone, Default)]
pub(super) struct RankTable {
    /// Whether the rows apply: every routed op is sized by the rank load or its largest expert.
    pub on: bool,
    /// Whether some op is sized by the rank load (else that key part is 0).
    pub by_load: bool,
    /// Whether some op is sized by the largest local expert (else that key part is 0).
    pub by_max: bool,
    /// The rows: `4 + 2 × compute ops` values each (4 above [`ROW_SUM_RANKS`] ranks).
    pub rows: RowTable<[f64; 2], f64>,
}

impl RankTable {
    /// The table for the routed ops `priced` (off when an op is sized per local expert) of an
    /// expert-parallel group of `ranks` ranks: above [`ROW_SUM_RANKS`] a row holds only its sums.
    pub fn new(priced: &[RoutedOp], ranks: usize) -> RankTable {
        let on = !priced.is_empty()
            && priced
                .iter()
                .all(|p| !matches!(p.by, RoutedBy::LocalExpert(_)));
        let busy = match ranks > ROW_SUM_RANKS {
            true => 0,
            false => priced.iter().filter(|p| p.busy).count(),
        };
        RankTable {
            on,
            by_load: priced.iter().any(|p| p.by == RoutedBy::RankReceived),
            by_max: priced.iter().any(|p| p.by == RoutedBy::MaxLocalExpert),
            rows: RowTable::new(if on { 4 + 2 * busy } else { 0 }, MEMO_MAX_PRICES),
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    /// A price that names its count: time = tokens, energy = tokens × (column + 1).
    fn fill(tokens: f64) -> impl FnOnce(&[usize], &mut [Memo]) {
        move |ops, row| {
            for (c, m) in row.iter_mut().enumerate() {
                *m = Memo {
                    time_s: tokens,
                    dyn_j: tokens * (ops[c] + 1) as f64,
                };
            }
        }
    }

    #[test]
    fn a_table_grows_to_hold_every_count_and_reads_back_what_it_priced() {
        let mut t = PriceTable::new(vec![3, 7]);
        let counts: Vec<f64> = (0..5000u32).map(|i| f64::from(i * 1024 + i % 3)).collect();
        let mut misses = 0;
        for pass in 0..2 {
            for &c in &counts {
                let row = t.row(c, |ops, row| {
                    misses += 1;
                    fill(c)(ops, row)
                });
                assert_eq!(t.at(row).time_s, c, "pass {pass}");
                assert_eq!(t.at(row + 1).dyn_j, c * 8.0, "pass {pass}");
            }
        }
        // Every count priced once: the second pass found them all after the doublings.
        assert_eq!(misses, counts.len());
        assert!(t.rows.rows() >= 2 * counts.len(), "{} rows", t.rows.rows());
    }

    #[test]
    fn a_full_table_evicts_and_still_reads_back_the_right_price() {
        // Room for 2,048 rows of one value: 5,000 keys overflow it.
        let mut t: RowTable<[f64; 2], f64> = RowTable::new(1, 2048);
        for pass in 0..3 {
            for i in 0..5000u32 {
                let key = [f64::from(i), f64::from(i % 7)];
                let row = t.row(key, |v| v[0] = key[0] * 10.0 + key[1]);
                assert_eq!(
                    t.vals[row],
                    key[0] * 10.0 + key[1],
                    "pass {pass} key {key:?}"
                );
            }
        }
        assert_eq!(t.rows(), 2048);
    }

    #[test]
    fn a_nan_count_is_priced_afresh_every_time() {
        let mut t = PriceTable::new(vec![0]);
        let mut misses = 0;
        for _ in 0..3 {
            t.row(f64::NAN, |ops, row| {
                misses += 1;
                fill(f64::NAN)(ops, row)
            });
        }
        assert_eq!(misses, 3);
        // The row it used is still free for a real count.
        let row = t.row(5.0, fill(5.0));
        assert_eq!(t.at(row).time_s, 5.0);
    }
}
