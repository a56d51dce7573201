//! The distributed optimizer's parameter all-gather overlapped with the next step's forward
//! (`training.overlap_param_gather`): how much of it the first forward pass leaves exposed.
//!
//! Megatron-LM's distributed optimizer with `--overlap-param-gather`
//! (`megatron/core/optimizer/distrib_optimizer.py`, 2023-24: `_dispatch_gather_model_params`,
//! `_make_forward_pre_hook`, `_finish_param_sync_helper`) dispatches only the first bucket's
//! all-gather after the optimizer step; each module's forward pre-hook waits for its own
//! bucket's all-gather and then dispatches the next bucket's, buckets in forward order across
//! the model chunks. apex `DistributedFusedAdam(overlap_param_sync=True)`, which the MLPerf
//! GPT-3 runs used through NeMo, likewise syncs each bucket's parameters ahead of the forward
//! that needs them. So the gathers run in lockstep with the first micro-batch's forward: bucket
//! `k + 1` gathers while layer `k` computes, and only what is longer than that forward shows.

/// One model chunk of a stage as the parameter gathers see it.
#[derive(Clone, Copy, Debug)]
pub(super) struct ChunkGather<'a> {
    /// The chunk's parameter all-gather, all its buckets [s].
    pub gather_s: f64,
    /// Forward and backward time of one micro-batch through each of the chunk's layers, in
    /// order (only the forward is read) [s].
    pub layer_fb: &'a [(f64, f64)],
    /// Time between the first micro-batch's forward through this chunk's last layer and its
    /// forward through the next chunk's first layer: the forwards of the other warm-up
    /// micro-batches of this chunk (interleaved 1F1B runs `min(pp, m)` micro-batches of a chunk
    /// before the next chunk) [s].
    pub to_next_s: f64,
}

/// How long the gathers delay the first forward of a stage whose chunks are `chunks` (in
/// forward order), with one bucket per layer (as `chunk_sync`'s gradient buckets): the first
/// bucket's gather before any forward, then each later bucket's gather beyond the compute it
/// runs under (the previous layer's forward; across chunks, also `to_next_s`) [s].
pub(super) fn exposed_gather_s<'a>(chunks: impl IntoIterator<Item = ChunkGather<'a>>) -> f64 {
    let mut exposed = 0.0;
    // Compute the next bucket's gather runs under (None before the first bucket).
    let mut under: Option<f64> = None;
    for c in chunks {
        let n = c.layer_fb.len().max(1);
        let g = c.gather_s / n as f64;
        for k in 0..n {
            exposed += match under {
                None => g,
                Some(u) => (g - u).max(0.0),
            };
            let f = c.layer_fb.get(k).map_or(0.0, |x| x.0);
            under = Some(if k + 1 == n { f + c.to_next_s } else { f });
        }
    }
    exposed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gathers shorter than the forward beside them hide; only the first bucket shows.
    #[test]
    fn gathers_shorter_than_the_forward_hide_but_the_first_bucket() {
        let f = [(2.0, 0.0); 3];
        let c = ChunkGather {
            gather_s: 3.0,
            layer_fb: &f,
            to_next_s: 0.0,
        };
        assert!((exposed_gather_s([c]) - 1.0).abs() < 1e-12);
    }

    /// A gather longer than the layer it runs under shows by the difference, bucket by bucket.
    #[test]
    fn gathers_longer_than_the_forward_show_by_the_difference() {
        let f = [(1.0, 0.0); 4];
        let c = ChunkGather {
            gather_s: 12.0,
            layer_fb: &f,
            to_next_s: 0.0,
        };
        // 3 + 3 x (3 - 1): never more than the whole gather, never less than one bucket.
        let e = exposed_gather_s([c]);
        assert!((e - 9.0).abs() < 1e-12);
        assert!(e < 12.0 && e > 3.0);
    }

    /// Across interleaved chunks the warm-up forwards of the other micro-batches hide the next
    /// chunk's gathers.
    #[test]
    fn the_warm_up_between_chunks_hides_the_next_chunks_gather() {
        let f = [(1.0, 0.0)];
        let chunk = |to_next_s| ChunkGather {
            gather_s: 5.0,
            layer_fb: &f,
            to_next_s,
        };
        assert!((exposed_gather_s([chunk(7.0), chunk(7.0)]) - 5.0).abs() < 1e-12);
        // Without that warm-up the second chunk's gather shows beyond the 1 s layer.
        assert!((exposed_gather_s([chunk(0.0), chunk(0.0)]) - 9.0).abs() < 1e-12);
    }
}
