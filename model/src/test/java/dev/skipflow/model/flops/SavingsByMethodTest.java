package dev.skipflow.model.flops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.skipflow.model.TestModels;
import dev.skipflow.model.compression.prune.GroupRemoval;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.engine.BatchEngine;
import dev.skipflow.model.engine.Sequence;
import dev.skipflow.model.exit.ExitClassifier;
import dev.skipflow.model.routing.SparsitySchedule;
import dev.skipflow.model.routing.StaticRouter;
import dev.skipflow.model.sampling.SamplingParams;
import dev.skipflow.model.spec.BlockSpec;
import dev.skipflow.model.spec.ModelSpec;
import dev.skipflow.model.weights.BlockWeights;
import dev.skipflow.model.weights.ModelWeights;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** {@code savings.byMethod}: each method's share, computed apart from the others, and their sum. */
class SavingsByMethodTest {

    static final int GENERATED = 20;

    /** stories260K with blocks 1-3 cut to 3 of 4 KV groups and 120 of 172 channels. */
    static ModelWeights pruned() {
        ModelWeights w = ModelWeights.of(TestModels.weights());
        ModelSpec spec = w.spec();
        List<BlockWeights> blocks = new ArrayList<>(w.blocks());
        List<BlockSpec> specs = new ArrayList<>(spec.blocks());
        int[] channels = new int[120];
        for (int i = 0; i < channels.length; i++) {
            channels[i] = i;
        }
        for (int l = 1; l <= 3; l++) {
            blocks.set(l, GroupRemoval.keep(w.blocks().get(l), spec.block(l), spec.headSize(), new int[] {0, 2, 3}, channels));
            specs.set(l, blocks.get(l).spec(spec.dim(), spec.headSize()));
        }
        ModelSpec p = new ModelSpec(spec.dim(), spec.headSize(), spec.vocabSize(), spec.seqLen(), spec.sharedClassifier(),
                spec.ropeTheta(), spec.normEps(), spec.qkvBias(), specs, spec);
        return new ModelWeights(p, w.tokenEmbedding(), blocks, w.rmsFinal(), w.classifier(), w.source());
    }

    static Savings generate(LlamaModel model, StaticRouter router, ExitClassifier exit) {
        return generate(model, router, true, exit);
    }

    static Savings generate(LlamaModel model, StaticRouter router, boolean routeDecode, ExitClassifier exit) {
        int[] prompt = TestModels.tokenizer().encode("Once upon a time, there was a little girl named Lily. She", true);
        try (BatchEngine engine = BatchEngine.builder(model).maxBatch(1).context(128).router(router)
                .routeDecode(routeDecode).exit(exit).stopTokens(Set.of()).build()) {
            Sequence s = new Sequence("x", prompt, SamplingParams.greedy(GENERATED));
            TestModels.runAlone(engine, s);
            return s.account().savings();
        }
    }

    @Test
    void aCompressedModelAloneSavesByCompressionWhatItsSmallerBlocksCostLess() {
        try (LlamaModel model = new LlamaModel(pruned(), Device.cpu())) {
            Savings s = generate(model, null, null);
            int promptLength = TestModels.tokenizer().encode("Once upon a time, there was a little girl named Lily. She",
                    true).length;
            // the same request on both models, from their specs alone
            FlopCounter original = FlopCounter.of(model.spec().original());
            FlopCounter compressed = FlopCounter.of(model.spec());
            long dense = original.head();
            long ran = compressed.head();
            for (int p = 0; p < promptLength + GENERATED - 1; p++) {
                dense += original.allBlocks(p) + (p >= promptLength ? original.head() : 0);
                ran += compressed.allBlocks(p) + (p >= promptLength ? compressed.head() : 0);
            }
            assertEquals(dense, s.denseFlops());
            assertEquals(ran, s.executedFlops());
            assertEquals(1.0 - (double) ran / dense, s.byMethod().compression(), 1e-12);
            assertTrue(s.byMethod().compression() > 0.1, "blocks 1-3 lost a quarter of heads, 30% of channels");
            assertEquals(0.0, s.byMethod().routing());
            assertEquals(0.0, s.byMethod().exit());
        }
    }

    @Test
    void aRouterOnTheDenseModelSavesOnlyByRouting() {
        Savings s = generate(TestModels.model(), new StaticRouter(SparsitySchedule.uniform(0.3, 5)), null);
        assertTrue(s.tokenBlocksSkipped() > 0);
        assertEquals(0.0, s.byMethod().compression());
        assertEquals(0.0, s.byMethod().exit());
        assertEquals(s.savedFraction(), s.byMethod().routing(), 1e-12);
        assertTrue(s.byMethod().routing() > 0.05, "30% of prefill token-blocks skipped: " + s.byMethod());
    }

    @Test
    void promptRoutingSavesByRoutingAlsoWhereDecodingTokensAttendTheKeysItLeftOut() {
        // decode runs no router here, yet attends fewer keys because of the prompt's skips: that is routing's,
        // not exit's (an exit classifier that never exits must not change the split either)
        StaticRouter router = new StaticRouter(SparsitySchedule.uniform(0.3, 5));
        Savings s = generate(TestModels.model(), router, false, null);
        Savings withExit = generate(TestModels.model(), router, false, ExitClassifier.never(5));
        assertTrue(s.tokenBlocksSkipped() > 0);
        assertEquals(0.0, s.byMethod().exit(), "no exit classifier: " + s.byMethod());
        assertEquals(s.savedFraction(), s.byMethod().routing(), 1e-12);
        assertEquals(s.byMethod().routing(), withExit.byMethod().routing(), 1e-12, "probes are exit's cost, not routing's");
        assertTrue(withExit.byMethod().exit() <= 0, "an exit that never exits only pays for its probes: " + withExit.byMethod());
    }

    @Test
    void earlyExitAloneSavesOnlyByExitItsPropagatedKeysCountedWhereAttentionReadsThem() {
        // the prompt's last row exits and propagates its keys; the prompt's earlier rows never attend them
        Savings s = generate(TestModels.model(), null, ExitClassifier.always(5, 2));
        assertTrue(s.earlyExitTokens() > 0);
        assertEquals(0.0, s.byMethod().compression());
        assertEquals(0.0, s.byMethod().routing(), "no router: " + s.byMethod());
        assertEquals(s.savedFraction(), s.byMethod().exit(), 1e-12);
    }

    @Test
    void everyMethodStackedOnAPrunedModelSavesItsOwnShareAndTheSharesSumToTheWhole() {
        try (LlamaModel model = new LlamaModel(pruned(), Device.cpu())) {
            Savings alone = generate(model, null, null);
            Savings all = generate(model, new StaticRouter(SparsitySchedule.uniform(0.3, 5)), ExitClassifier.always(5, 3));
            Savings.ByMethod m = all.byMethod();
            assertTrue(all.earlyExitTokens() > 0 && all.tokenBlocksSkipped() > 0);
            assertTrue(m.compression() > 0 && m.routing() > 0 && m.exit() > 0, "each method saves: " + m);
            assertEquals(all.savedFraction(), m.sum(), 1e-12);
            assertEquals(1.0 - (double) all.executedFlops() / all.denseFlops(), m.sum(), 1e-12);
            // compression's share is the compressed shapes' whatever else ran: blocks a router or an exit
            // removed are counted at their compressed cost, so the split does not depend on the order
            assertEquals(alone.byMethod().compression(), m.compression(), 1e-12);
        }
    }
}
