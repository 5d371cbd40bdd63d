package dev.skipflow.model.compression.prune;

import dev.skipflow.model.spec.BlockSpec;
import dev.skipflow.model.spec.ModelSpec;
import java.util.ArrayList;
import java.util.List;

/**
 * How many KV groups and MLP channels each pruned block keeps so that it loses {@code ratio} of its parameters,
 * with widths that stay fast:
 * <ul>
 *   <li>heads go by whole KV groups (a KV head with its {@code n_rep} query heads): {@code round((1 - ratio) x kv
 *       heads)}, to the nearest, and further to a multiple that keeps the query width {@code kv x n_rep x head size}
 *       a multiple of {@code roundTo} (a no-op whenever the head size is a multiple of it, as in every real
 *       model);</li>
 *   <li>the MLP makes up the rest: its kept width is what brings the block's removed parameters closest to
 *       {@code ratio}, rounded to the nearest multiple of {@code roundTo} (a block narrower than that is not
 *       rounded).</li>
 * </ul>
 * So with 4 KV heads at ratio 0.2 a block keeps 3 groups (25% of attention removed) and its MLP loses a little less
 * than 20% to compensate. A ratio that leaves a block no KV group or no channel is refused.
 */
public record PrunePlan(double ratio, int roundTo, List<Block> blocks) {

    /** One pruned block's kept KV groups and MLP channels, and its parameters before and after. */
    public record Block(int layer, int kvHeads, int keptKvHeads, int heads, int keptHeads, int channels,
            int keptChannels, long parameters, long keptParameters) {
        public double removedShare() {
            return 1 - keptParameters / (double) parameters;
        }
    }

    public PrunePlan {
        blocks = List.copyOf(blocks);
    }

    /** The plan for {@code layers} of {@code spec} (blocks as they are in spec, ratio of their parameters). */
    public static PrunePlan of(ModelSpec spec, List<Integer> layers, double ratio, int roundTo) {
        requireRatio(ratio);
        if (roundTo < 1) {
            throw new IllegalArgumentException("--round-to must be at least 1, got " + roundTo);
        }
        List<Block> out = new ArrayList<>();
        int hd = spec.headSize();
        long dim = spec.dim();
        for (int l : layers) {
            BlockSpec b = spec.block(l);
            int rep = b.heads() / b.kvHeads();
            long perGroup = 2L * rep * hd * dim + 2L * hd * dim + (spec.qkvBias() ? (long) rep * hd + 2L * hd : 0);
            long perChannel = 3 * dim;
            long total = blockParameters(spec, b);
            long fixed = total - perGroup * b.kvHeads() - perChannel * b.mlpHidden(); // the two norms
            int step = stepOfGroups(rep * hd, roundTo);
            int kv = (int) Math.round((1 - ratio) * b.kvHeads() / step) * step;
            if (step > b.kvHeads()) {
                kv = b.kvHeads(); // no multiple of the rounding fits: attention stays whole
            }
            if (kv < 1) {
                throw new IllegalArgumentException(String.format("--ratio %s would leave block %d with no attention head: "
                        + "%d kv heads x (1 - %s) = %.2f rounds to 0; use a lower ratio or prune fewer blocks", ratio, l,
                        b.kvHeads(), ratio, (1 - ratio) * b.kvHeads()));
            }
            double keepTarget = (1 - ratio) * total - fixed - (double) perGroup * kv;
            double channels = keepTarget / perChannel;
            int kept = b.mlpHidden() <= roundTo ? (int) Math.round(channels)
                    : (int) Math.round(channels / roundTo) * roundTo;
            kept = Math.min(kept, b.mlpHidden());
            if (kept < 1) {
                throw new IllegalArgumentException(String.format("--ratio %s would leave block %d's MLP with no channel "
                        + "(%.1f of %d kept, rounded to a multiple of %d is 0); use a lower ratio or --round-to", ratio, l,
                        Math.max(0, channels), b.mlpHidden(), roundTo));
            }
            long keptParams = fixed + perGroup * kv + perChannel * kept;
            out.add(new Block(l, b.kvHeads(), kv, b.heads(), kv * rep, b.mlpHidden(), kept, total, keptParams));
        }
        return new PrunePlan(ratio, roundTo, out);
    }

    /**
     * LLM-Pruner's global threshold (its {@code --global_pruning}), per kind: the pruned blocks together keep as many
     * KV groups and as many MLP channels as {@link #of} would, but which block keeps how many follows the scores,
     * ranked across blocks. Widths stay multiples of the same rounding: each block's groups and channels, best
     * first, are cut into chunks of that multiple, and the chunks with the highest mean score are kept, at least one
     * per block, so no block is left without a head or a channel. Scores are compared as they are, unnormalized,
     * as in the paper.
     *
     * @param groupScores per pruned block (in {@code layers} order), a score per KV group, higher = more important
     * @param channelScores per pruned block, a score per MLP channel
     */
    public static PrunePlan global(ModelSpec spec, List<Integer> layers, double ratio, int roundTo,
            List<double[]> groupScores, List<double[]> channelScores) {
        PrunePlan uniform = of(spec, layers, ratio, roundTo);
        int hd = spec.headSize();
        int n = layers.size();
        int[] groupStep = new int[n];
        int[] channelStep = new int[n];
        int keptGroups = 0;
        int keptChannels = 0;
        for (int i = 0; i < n; i++) {
            BlockSpec b = spec.block(layers.get(i));
            int step = stepOfGroups(b.heads() / b.kvHeads() * hd, roundTo);
            groupStep[i] = step > b.kvHeads() ? b.kvHeads() : step;
            channelStep[i] = b.mlpHidden() <= roundTo ? 1 : roundTo;
            keptGroups += uniform.blocks().get(i).keptKvHeads();
            keptChannels += uniform.blocks().get(i).keptChannels();
        }
        int[] kv = keepByChunks(groupScores, groupStep, keptGroups);
        int[] ch = keepByChunks(channelScores, channelStep, keptChannels);
        return ofWidths(spec, layers, ratio, roundTo, kv, ch);
    }

    /** The plan that keeps {@code kv[i]} KV groups and {@code channels[i]} MLP channels of block {@code layers[i]}. */
    static PrunePlan ofWidths(ModelSpec spec, List<Integer> layers, double ratio, int roundTo, int[] kv, int[] channels) {
        int hd = spec.headSize();
        long dim = spec.dim();
        List<Block> out = new ArrayList<>();
        for (int i = 0; i < layers.size(); i++) {
            int l = layers.get(i);
            BlockSpec b = spec.block(l);
            int rep = b.heads() / b.kvHeads();
            long perGroup = 2L * rep * hd * dim + 2L * hd * dim + (spec.qkvBias() ? (long) rep * hd + 2L * hd : 0);
            long total = blockParameters(spec, b);
            long fixed = total - perGroup * b.kvHeads() - 3 * dim * b.mlpHidden();
            out.add(new Block(l, b.kvHeads(), kv[i], b.heads(), kv[i] * rep, b.mlpHidden(), channels[i], total,
                    fixed + perGroup * kv[i] + 3 * dim * channels[i]));
        }
        return new PrunePlan(ratio, roundTo, out);
    }

    /**
     * Per block, how many units to keep: every block's units sorted best first and cut into chunks of its step (the
     * last chunk may be shorter), the first chunk of each block always kept, then the remaining chunks by mean score,
     * best first, while the total stays within {@code target} (a chunk that would overshoot is kept only if that
     * lands closer to it).
     */
    static int[] keepByChunks(List<double[]> scores, int[] step, int target) {
        int n = scores.size();
        int[] kept = new int[n];
        List<double[]> chunks = new ArrayList<>(); // {block, size, mean score}
        int total = 0;
        for (int i = 0; i < n; i++) {
            double[] s = scores.get(i).clone();
            java.util.Arrays.sort(s);
            int units = s.length;
            for (int start = 0; start < units; start += step[i]) {
                int size = Math.min(step[i], units - start);
                double sum = 0;
                for (int k = 0; k < size; k++) {
                    sum += s[units - 1 - start - k];
                }
                if (start == 0) {
                    kept[i] = size;
                    total += size;
                } else {
                    chunks.add(new double[] {i, size, sum / size, start});
                }
            }
        }
        // best mean first; within a block chunks come in order (their means never rise), ties by position
        chunks.sort((a, b) -> a[2] != b[2] ? Double.compare(b[2], a[2]) : Double.compare(a[3], b[3]));
        boolean[] closed = new boolean[n]; // a block whose chunk was passed over keeps no later (worse) one
        for (double[] c : chunks) {
            int size = (int) c[1];
            int block = (int) c[0];
            if (total >= target) {
                break;
            }
            if (closed[block] || (total + size > target && total + size - target > target - total)) {
                closed[block] = true;
                continue;
            }
            kept[block] += size;
            total += size;
        }
        return kept;
    }

    static void requireRatio(double ratio) {
        if (!(ratio > 0 && ratio < 1)) {
            throw new IllegalArgumentException("--ratio must be in (0, 1) (the share of the pruned blocks' parameters to "
                    + "remove), got " + ratio);
        }
    }

    /** KV groups come in multiples of this, so that the kept query width is a multiple of {@code roundTo}. */
    private static int stepOfGroups(int groupWidth, int roundTo) {
        int g = gcd(groupWidth, roundTo);
        return roundTo / g;
    }

    private static int gcd(int a, int b) {
        return b == 0 ? a : gcd(b, a % b);
    }

    /** A block's weights: norms, q/k/v/o (biases included) and the gated MLP. */
    static long blockParameters(ModelSpec spec, BlockSpec b) {
        long d = spec.dim();
        long q = b.queryDim(spec.headSize());
        long kv = b.kvDim(spec.headSize());
        return 2 * d + 2 * q * d + 2 * kv * d + 3 * d * b.mlpHidden() + (spec.qkvBias() ? q + 2 * kv : 0);
    }

    public long parameters() {
        return blocks.stream().mapToLong(Block::parameters).sum();
    }

    public long keptParameters() {
        return blocks.stream().mapToLong(Block::keptParameters).sum();
    }

    /** Share of the pruned blocks' parameters removed, after rounding. */
    public double removedShare() {
        return 1 - keptParameters() / (double) parameters();
    }
}
