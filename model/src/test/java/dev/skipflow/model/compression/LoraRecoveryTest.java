package dev.skipflow.model.compression;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.skipflow.model.TestModels;
import dev.skipflow.model.compression.prune.Importance;
import dev.skipflow.model.compression.prune.Pruner;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.eval.PerplexityEvaluator;
import dev.skipflow.model.weights.BlockWeights;
import dev.skipflow.model.weights.LinearWeights;
import dev.skipflow.model.weights.MlpWeights;
import dev.skipflow.model.weights.ModelWeights;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * LoRA recovery on stories260K: the adapters read back from the device are the ones trained (norms and scales
 * unfolded exactly), the merged dense model computes the unmerged LoRA model's outputs, and a pruned model's
 * loss goes down.
 */
class LoraRecoveryTest {

    @Test
    void theMergedModelComputesWhatTheTrainedAdaptersDid() {
        ModelWeights w = PruneTest.dense();
        List<int[]> docs = PruneTest.calibration();
        LoraRecovery.Options o = new LoraRecovery.Options(6, 4, 8, 0.05f, 1e-2f, 2, 3);
        LoraRecovery.Result r = LoraRecovery.recover(w, docs, o, Device.cpu(), i -> { });
        float[] unmerged = PruneTest.logits(r.adapters(), r.probe());
        float[] merged = PruneTest.logits(r.merged(), r.probe());
        float[] before = PruneTest.logits(w, r.probe());
        float trained = TestModels.maxDifference(r.probeLogits(), unmerged);
        assertTrue(trained < TestModels.LOGIT_TOLERANCE, "adapters read back vs as trained: " + trained);
        float merge = TestModels.maxDifference(unmerged, merged);
        assertTrue(merge < TestModels.LOGIT_TOLERANCE, "merged vs unmerged: " + merge);
        assertTrue(TestModels.maxDifference(before, merged) > 0.05, "six steps at 1e-2 change the model");
        for (int l = 0; l < w.blocks().size(); l++) {
            BlockWeights b = r.merged().blocks().get(l);
            MlpWeights.Gated g = (MlpWeights.Gated) b.mlp();
            for (LinearWeights x : new LinearWeights[] {b.wq(), b.wk(), b.wv(), b.wo(), g.gate(), g.up(), g.down()}) {
                assertTrue(x instanceof LinearWeights.Dense, "merged: served as dense maps");
            }
            LinearWeights.Lora q = (LinearWeights.Lora) r.adapters().blocks().get(l).wq();
            assertArrayEquals(w.blocks().get(l).wq().toDense(), q.base().weight(), "the frozen weights did not move");
            assertEquals(2f, q.scale());
        }
    }

    @Test
    void recoveryLowersAPrunedModelsLossOnHeldOutText() {
        Pruner.Result pruned = PruneTest.prune(PruneTest.dense(), PruneTest.options(0.3, Importance.L2));
        List<int[]> docs = PruneTest.calibration();
        List<int[]> train = docs.subList(0, 60);
        List<int[]> heldOut = docs.subList(60, 80);
        LoraRecovery.Result r = LoraRecovery.recover(pruned.weights(), train,
                new LoraRecovery.Options(20, 8, 16, 0f, 3e-3f, 2, 5), Device.cpu(), i -> { });
        double before;
        double after;
        try (LlamaModel m = new LlamaModel(pruned.weights(), Device.cpu())) {
            before = new PerplexityEvaluator(m).evaluate(heldOut, i -> { }).perplexity();
        }
        try (LlamaModel m = new LlamaModel(r.merged(), Device.cpu())) {
            after = new PerplexityEvaluator(m).evaluate(heldOut, i -> { }).perplexity();
        }
        assertTrue(after < before * 0.9, "held-out perplexity " + before + " -> " + after);
        assertTrue(r.lastLoss() < r.firstLoss(), r.firstLoss() + " -> " + r.lastLoss());
    }

    /** With the dense original as teacher, recovery pulls the pruned model's distributions back toward it. */
    @Test
    void distillationRecoveryMovesThePrunedModelTowardItsOriginal() {
        ModelWeights dense = PruneTest.dense();
        Pruner.Result pruned = PruneTest.prune(dense, PruneTest.options(0.3, Importance.L2));
        List<int[]> docs = PruneTest.calibration();
        List<int[]> heldOut = docs.subList(60, 80);
        LoraRecovery.Result r = LoraRecovery.recover(pruned.weights(), docs.subList(0, 60),
                new LoraRecovery.Options(20, 8, 16, 0f, 3e-3f, 2, 5), Device.cpu(), i -> { }, dense);
        double before = klToTeacher(dense, pruned.weights(), heldOut);
        double after = klToTeacher(dense, r.merged(), heldOut);
        assertTrue(after < before * 0.9, "held-out KL(original || pruned) " + before + " -> " + after);
        assertTrue(r.lastLoss() < r.firstLoss(), r.firstLoss() + " -> " + r.lastLoss());
    }

    /** The mixed objective is the two losses of the same forward pass, weighted; a weight with no teacher is refused. */
    @Test
    void theMixedObjectiveWeighsTheKlAgainstTheNextTokenLoss() {
        ModelWeights dense = PruneTest.dense();
        ModelWeights pruned = PruneTest.prune(dense, PruneTest.options(0.3, Importance.L2)).weights();
        int[] doc = PruneTest.calibration().get(0);
        try (LlamaModel t = new LlamaModel(dense, Device.cpu()); LlamaModel s = new LlamaModel(pruned, Device.cpu());
                ai.djl.ndarray.NDManager m = s.newStepManager()) {
            ai.djl.ndarray.NDArray teacher = DistillationLoss.teacher(t, m, doc);
            double[] loss = new double[4];
            double[] weights = {1, 0, 0.3, -1};
            for (int i = 0; i < 4; i++) {
                try (dev.skipflow.model.decoder.KvCache cache = new dev.skipflow.model.decoder.KvCache(s, 1, doc.length)) {
                    loss[i] = (i < 3 ? DistillationLoss.of(s, cache, m, doc, teacher, weights[i])
                            : NextTokenLoss.of(s, cache, m, doc)).getFloat();
                }
            }
            assertEquals(loss[3], loss[1], 1e-5 * loss[3], "weight 0 is the next-token loss");
            assertTrue(loss[0] > 0 && Math.abs(loss[0] - loss[3]) > 0.01, "the two losses differ");
            assertEquals(0.3 * loss[0] + 0.7 * loss[3], loss[2], 1e-5 * loss[3]);
        }
        assertThrows(IllegalArgumentException.class, () -> LoraRecovery.recover(pruned, PruneTest.calibration(),
                new LoraRecovery.Options(1, 8, 16, 0f, 3e-3f, 2, 5), Device.cpu(), i -> { }, null, 0.5));
    }

    private static double klToTeacher(ModelWeights teacher, ModelWeights student, List<int[]> docs) {
        try (LlamaModel t = new LlamaModel(teacher, Device.cpu()); LlamaModel s = new LlamaModel(student, Device.cpu());
                ai.djl.ndarray.NDManager m = s.newStepManager()) {
            double sum = 0;
            for (int[] doc : docs) {
                try (dev.skipflow.model.decoder.KvCache cache = new dev.skipflow.model.decoder.KvCache(s, 1, doc.length)) {
                    sum += DistillationLoss.of(s, cache, m, doc, DistillationLoss.teacher(t, m, doc)).getFloat();
                }
            }
            return sum / docs.size();
        }
    }

    @Test
    void badSettingsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new LoraRecovery.Options(-1, 8, 16, 0.05f, 1e-3f, 2, 1));
        assertThrows(IllegalArgumentException.class, () -> new LoraRecovery.Options(10, 0, 16, 0.05f, 1e-3f, 2, 1));
        assertThrows(IllegalArgumentException.class, () -> new LoraRecovery.Options(10, 8, 16, 1f, 1e-3f, 2, 1));
    }
}
