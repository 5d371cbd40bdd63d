package dev.skipflow.model.compression.prune;

import dev.skipflow.model.compression.LoraRecovery;

/**
 * What {@code prune} does (LLM-Pruner's settings; defaults as its code and paper).
 *
 * @param ratio share of the pruned blocks' parameters to remove, in (0, 1)
 * @param firstBlock first pruned block; null for the default range ({@link #defaultRange})
 * @param lastBlock last pruned block, inclusive; null for the default range
 * @param samples calibration samples for gradient importance (LLM-Pruner: 10)
 * @param sampleLength tokens per sample (LLM-Pruner: 64)
 * @param roundTo kept MLP widths (and query widths) are multiples of this
 * @param iterativeSteps prune in this many steps, importance re-estimated before each (1 = one shot)
 * @param recovery LoRA recovery after pruning; {@code steps() == 0} for none
 * @param global rank KV groups, and MLP channels, across all pruned blocks instead of within each
 *     ({@link PrunePlan#global}); the pruned blocks together lose {@code ratio}, each block what its scores say
 * @param distillWeight what LoRA recovery learns: 0 = the text's next tokens (LLM-Pruner), 1 = the unpruned model's
 *     next-token distributions (KL), between = that weight on the KL and the rest on the next-token loss
 */
public record PruneOptions(double ratio, Importance importance, Aggregation aggregation, Integer firstBlock,
        Integer lastBlock, int samples, int sampleLength, int roundTo, int iterativeSteps, long seed,
        LoraRecovery.Options recovery, boolean global, double distillWeight) {

    public PruneOptions {
        PrunePlan.requireRatio(ratio);
        if (samples < 1 || sampleLength < 2) {
            throw new IllegalArgumentException("--samples must be >= 1 and --sample-length >= 2, got " + samples + " and "
                    + sampleLength);
        }
        if (iterativeSteps < 1) {
            throw new IllegalArgumentException("--iterative-steps must be >= 1, got " + iterativeSteps);
        }
        if (!(distillWeight >= 0 && distillWeight <= 1)) {
            throw new IllegalArgumentException("the distillation weight must be in [0, 1], got " + distillWeight);
        }
        if ((firstBlock == null) != (lastBlock == null)) {
            throw new IllegalArgumentException("give both ends of the block range or neither");
        }
    }

    /**
     * The default pruned range: LLaMA-7B's 4-29 of 32 scaled to the model (its first 1/8 and last 1/16 of blocks
     * stay dense, at least one at each end); every block when there are fewer than 3.
     */
    public static int[] defaultRange(int layers) {
        if (layers < 3) {
            return new int[] {0, layers - 1};
        }
        int head = Math.max(1, (int) Math.round(layers * 4 / 32.0));
        int tail = Math.max(1, (int) Math.round(layers * 2 / 32.0));
        return new int[] {head, layers - 1 - tail};
    }

    /** {@code A-B} (inclusive), {@code A} alone, or {@code all}; checked against the model's blocks. */
    public static int[] parseRange(String s, int layers) {
        int[] r;
        try {
            if (s.equals("all")) {
                r = new int[] {0, layers - 1};
            } else if (s.contains("-")) {
                String[] p = s.split("-", 2);
                r = new int[] {Integer.parseInt(p[0].trim()), Integer.parseInt(p[1].trim())};
            } else {
                int b = Integer.parseInt(s.trim());
                r = new int[] {b, b};
            }
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--blocks must be A-B (inclusive, 0-based), A or all, got " + s);
        }
        requireRange(r[0], r[1], layers);
        return r;
    }

    static void requireRange(int first, int last, int layers) {
        if (first < 0 || last >= layers || first > last) {
            throw new IllegalArgumentException("--blocks " + first + "-" + last + " is outside the model's blocks 0-"
                    + (layers - 1) + " (or empty)");
        }
    }
}
