//! Wide-area links between sites: checkpoint transfer and all-reduce time and energy over the WAN.

/// Electricity intensity of internet data transmission, 0.06 kWh/GB for 2015 (core and fixed-line
/// access networks): Aslan, Mayers, Koomey, France, "Electricity Intensity of Internet Data
/// Transmission: Untangling the Estimates", J. Industrial Ecology 22(4) 785–798, 2018 (abstract;
/// the same paper finds it halving about every 2 years since 2000, so a later year's figure is
/// lower: give `energy_j_per_byte` for it). 0.06 kWh/GB = 0.06 × 3.6e6 J / 1e9 B = 2.16e-4 J/B.
pub const ASLAN_2015_J_PER_BYTE: f64 = 0.06 * 3.6e6 / 1e9;

/// One WAN link between two sites (full duplex: it serves both directions).
#[derive(Debug, Clone, PartialEq)]
pub struct WanLink {
    /// Index of one end in the scenario's site list.
    pub a: usize,
    /// Index of the other end.
    pub b: usize,
    /// Bandwidth available to the job [bit/s].
    pub bandwidth_bps: f64,
    /// One-way latency [s].
    pub latency_s: f64,
    /// Network electricity per byte carried [J/B].
    pub j_per_byte: f64,
}

impl WanLink {
    /// Whether the link joins sites `x` and `y` (either way round).
    pub fn joins(&self, x: usize, y: usize) -> bool {
        (self.a == x && self.b == y) || (self.a == y && self.b == x)
    }

    /// Time to move `bytes` over the link in one transfer: bytes × 8 / bandwidth + latency [s].
    pub fn transfer_s(&self, bytes: f64) -> f64 {
        bytes * 8.0 / self.bandwidth_bps + self.latency_s
    }

    /// Network energy of carrying `bytes` over the link: bytes × J/B [J].
    pub fn transfer_j(&self, bytes: f64) -> f64 {
        bytes * self.j_per_byte
    }
}

/// A ring all-reduce of `bytes` per participant among `k` sites whose ring hops are the links
/// `hops` (k of them; the slowest sets the pace): 2(k−1) phases, each moving bytes/k over every
/// hop at once, so time = 2(k−1) × (bytes/k × 8 / slowest bandwidth + largest latency) and the WAN
/// carries 2(k−1)/k × bytes per hop, 2(k−1) × bytes in all (the bandwidth-optimal ring of Patarasuk
/// & Yuan, JPDC 2009). Returns (time [s], energy [J]); (0, 0) for fewer than two sites.
pub fn ring_all_reduce(hops: &[&WanLink], bytes: f64) -> (f64, f64) {
    let k = hops.len();
    if k < 2 {
        return (0.0, 0.0);
    }
    let kf = k as f64;
    let bw = hops
        .iter()
        .map(|l| l.bandwidth_bps)
        .fold(f64::INFINITY, f64::min);
    let lat = hops.iter().map(|l| l.latency_s).fold(0.0, f64::max);
    let phases = 2.0 * (kf - 1.0);
    let time = phases * (bytes / kf * 8.0 / bw + lat);
    let energy: f64 = hops.iter().map(|l| l.transfer_j(phases / kf * bytes)).sum();
    (time, energy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(bw_gbps: f64, lat_ms: f64) -> WanLink {
        WanLink {
            a: 0,
            b: 1,
            bandwidth_bps: bw_gbps * 1e9,
            latency_s: lat_ms / 1e3,
            j_per_byte: ASLAN_2015_J_PER_BYTE,
        }
    }

    #[test]
    fn transfer_time_is_bytes_over_bandwidth_plus_latency() {
        let l = link(100.0, 30.0);
        // 1 TB at 100 Gb/s = 80 s, + 30 ms.
        assert!((l.transfer_s(1e12) - 80.03).abs() < 1e-9);
        assert!((l.transfer_s(0.0) - 0.03).abs() < 1e-12);
    }

    #[test]
    fn transfer_energy_is_bytes_times_joules_per_byte() {
        let l = link(100.0, 30.0);
        // 1 GB at 0.06 kWh/GB = 0.06 kWh = 216 kJ.
        assert!((l.transfer_j(1e9) - 216_000.0).abs() < 1e-6);
        assert!((ASLAN_2015_J_PER_BYTE - 2.16e-4).abs() < 1e-15);
    }

    #[test]
    fn ring_all_reduce_of_two_sites_moves_each_byte_once_each_way() {
        let l = link(10.0, 50.0);
        let (t, e) = ring_all_reduce(&[&l, &l], 1e9);
        // k = 2: 2 phases of 0.5 GB at 10 Gb/s (0.4 s) + 50 ms each.
        assert!((t - 2.0 * (0.4 + 0.05)).abs() < 1e-12);
        // 2 hops × (2·1/2) × 1 GB = 2 GB carried.
        assert!((e - 2.0 * 216_000.0).abs() < 1e-6);
        assert_eq!(ring_all_reduce(&[&l], 1e9), (0.0, 0.0));
    }

    #[test]
    fn joins_is_symmetric() {
        let l = link(1.0, 1.0);
        assert!(l.joins(0, 1) && l.joins(1, 0) && !l.joins(0, 2));
    }
}
