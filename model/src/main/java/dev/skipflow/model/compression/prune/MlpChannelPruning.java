package dev.skipflow.model.compression.prune;

import ai.djl.Device;
import dev.skipflow.model.spec.BlockSpec;
import dev.skipflow.model.spec.ModelSpec;
import dev.skipflow.model.weights.BlockWeights;
import dev.skipflow.model.weights.ModelWeights;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * Static MLP channel pruning, the baseline ToMoE is compared with: in every block, the MLP channels with the highest
 * LLM-Pruner element1 importance ({@code sum |W * dL/dW|} over the channel's gate and up rows and down column, from
 * the next-token loss of the calibration samples) are kept, {@code keep[l]} of them; attention stays whole and
 * nothing is recovered.
 */
public final class MlpChannelPruning {

    /** The pruned model and, per block, the channels kept (increasing, into the input's). */
    public record Result(ModelWeights weights, int[][] kept, double[][] scores) {}

    private MlpChannelPruning() {}

    public static Result run(ModelWeights w, int[] keep, List<int[]> samples, Device device, long seed,
            IntConsumer progress) {
        ModelSpec spec = w.spec();
        double[][] scores = channelScores(w, samples, device, seed, progress);
        List<BlockWeights> blocks = new ArrayList<>();
        int[][] kept = new int[spec.nLayers()][];
        double[][] channelScores = new double[spec.nLayers()][];
        for (int l = 0; l < spec.nLayers(); l++) {
            BlockSpec b = spec.block(l);
            int[] allKv = new int[b.kvHeads()];
            for (int g = 0; g < allKv.length; g++) {
                allKv[g] = g;
            }
            channelScores[l] = scores[l];
            kept[l] = GroupRemoval.top(channelScores[l], Math.min(keep[l], b.mlpHidden()));
            BlockWeights pruned = GroupRemoval.keep(w.blocks().get(l), b, spec.headSize(), allKv, kept[l]);
            blocks.add(pruned);
        }
        return new Result(w.withBlocks(blocks), kept, channelScores);
    }

    /** Per block, every MLP channel's element1 importance on the next-token loss of {@code samples}. */
    public static double[][] channelScores(ModelWeights w, List<int[]> samples, Device device, long seed,
            IntConsumer progress) {
        List<Integer> layers = new ArrayList<>();
        for (int l = 0; l < w.spec().nLayers(); l++) {
            layers.add(l);
        }
        List<GroupImportance.BlockScores> scores = GroupImportance.estimate(w, layers, Importance.ELEMENT1,
                Aggregation.SUM, samples, device, seed, progress);
        double[][] out = new double[layers.size()][];
        for (int l = 0; l < out.length; l++) {
            out[l] = scores.get(l).channels();
        }
        return out;
    }
}
