package dev.skipflow.model.routing;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.decoder.AttentionStats;
import dev.skipflow.model.decoder.BlockHook;
import dev.skipflow.model.decoder.Forward;
import java.util.List;

/** ShortGPT's block influence: mean over tokens of 1 - cos(block input, block output), on calibration text. */
public final class BlockInfluence {

    private BlockInfluence() {}

    public static double[] measure(LlamaModel model, List<int[]> docs) {
        int layers = model.spec().nLayers();
        double[] sum = new double[layers];
        long tokens = 0;
        int maxLen = docs.stream().mapToInt(d -> d.length).max().orElse(1);
        try (KvCache cache = new KvCache(model, 1, maxLen)) {
            for (int[] doc : docs) {
                try (NDManager step = model.newStepManager()) {
                    Forward.run(model, cache, step, true, Forward.prompt(0, 0, doc, null, null, false, doc.length,
                            doc.length), Forward.Plan.hooked(new BlockHook() {
                                @Override
                                public NDArray after(int l, NDArray x, NDArray y, AttentionStats attention) {
                                    NDArray cos = x.mul(y).sum(new int[] {-1})
                                            .div(x.norm(new int[] {-1}).mul(y.norm(new int[] {-1})));
                                    sum[l] += doc.length - cos.sum().getFloat();
                                    return y;
                                }
                            }));
                }
                tokens += doc.length;
            }
        }
        for (int l = 0; l < layers; l++) {
            sum[l] /= tokens;
        }
        return sum;
    }
}
