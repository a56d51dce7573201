//! Closed-form makespans of the pipeline schedules the fast step model knows: 1F1B and
//! interleaved 1F1B (virtual stages), over per-stage forward/backward times of one micro-batch.

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
