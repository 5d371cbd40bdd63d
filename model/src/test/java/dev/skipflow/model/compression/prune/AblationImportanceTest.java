package dev.skipflow.model.compression.prune;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import dev.skipflow.model.TestModels;
import dev.skipflow.model.compression.Calibration;
import dev.skipflow.model.compression.NextTokenLoss;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.spec.BlockSpec;
import dev.skipflow.model.weights.ModelWeights;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Ablation importance on stories260K: each score is the loss change of cutting that one group out physically. */
class AblationImportanceTest {

    static double meanLoss(ModelWeights w, List<int[]> samples) {
        double sum = 0;
        try (LlamaModel model = new LlamaModel(w, Device.cpu()); NDManager m = model.newStepManager()) {
            for (int[] s : samples) {
                try (KvCache cache = new KvCache(model, 1, s.length)) {
                    sum += NextTokenLoss.of(model, cache, m, s).getFloat();
                }
            }
        }
        return sum / samples.size();
    }

    /** {@code w} with block {@code layer} cut to the given KV groups and channels (as the pruner cuts). */
    static ModelWeights cut(ModelWeights w, int layer, int[] kvHeads, int[] channels) {
        return w.withBlock(layer, GroupRemoval.keep(w.blocks().get(layer), w.spec().block(layer), w.spec().headSize(),
                kvHeads, channels));
    }

    static int[] allBut(int n, int skip) {
        int[] r = new int[n - 1];
        for (int i = 0, k = 0; i < n; i++) {
            if (i != skip) {
                r[k++] = i;
            }
        }
        return r;
    }

    @Test
    void eachScoreIsTheLossChangeOfRemovingThatGroupAlone() {
        ModelWeights w = ModelWeights.of(TestModels.weights());
        List<int[]> docs = Documents.read(TestModels.shared().resolve("data/tinystories-train-sample.txt"),
                TestModels.tokenizer(), 32, 20);
        List<int[]> samples = Calibration.samples(docs, 3, 32, 7);
        AtomicInteger progress = new AtomicInteger();
        List<GroupImportance.BlockScores> scores = GroupImportance.estimate(w, List.of(2), Importance.ABLATION,
                Aggregation.SUM, samples, Device.cpu(), 1, progress::set);
        BlockSpec b = w.spec().block(2);
        assertEquals(b.kvHeads() + b.mlpHidden(), progress.get(), "one unit of progress per group");
        assertEquals(GroupImportance.work(w.spec(), List.of(2), Importance.ABLATION, samples.size()), progress.get());
        double[] groups = scores.get(0).groups();
        double[] channels = scores.get(0).channels();
        double base = meanLoss(w, samples);
        int[] allKv = allBut(b.kvHeads() + 1, b.kvHeads());
        int[] allChannels = allBut(b.mlpHidden() + 1, b.mlpHidden());
        for (int g = 0; g < b.kvHeads(); g++) {
            double removed = meanLoss(cut(w, 2, allBut(b.kvHeads(), g), allChannels), samples) - base;
            assertEquals(removed, groups[g], 1e-4 + 1e-3 * Math.abs(removed), "KV group " + g);
        }
        for (int c : new int[] {0, 57, b.mlpHidden() - 1}) {
            double removed = meanLoss(cut(w, 2, allKv, allBut(b.mlpHidden(), c)), samples) - base;
            assertEquals(removed, channels[c], 1e-4 + 1e-3 * Math.abs(removed), "channel " + c);
        }
        assertTrue(java.util.Arrays.stream(channels).max().orElseThrow() > 0, "some channel matters");
    }
}
