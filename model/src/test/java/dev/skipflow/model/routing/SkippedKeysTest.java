package dev.skipflow.model.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import dev.skipflow.model.TestModels;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.decoder.AttentionStats;
import dev.skipflow.model.decoder.BlockHook;
import dev.skipflow.model.decoder.Forward;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.flops.FlopAccount;
import dev.skipflow.model.flops.FlopCounter;
import dev.skipflow.model.flops.Savings;
import org.junit.jupiter.api.Test;

/**
 * A router whose skipped tokens still write each block's key and value ({@link TokenRouter#propagatingKeys()}): the
 * same as the dense block run on every token (its keys and values are projections of the block's input) with the
 * skipped tokens' hidden states then carried on unchanged; charged the k|v projection per skipped token-block.
 */
class SkippedKeysTest {

    static final int LAYERS = 5;

    /** Teacher-forced prefill of {@code doc} under {@code plan}: every position's logits. */
    static float[] prefill(LlamaModel model, int[] doc, Forward.Plan plan, FlopAccount account) {
        int[] written = new int[LAYERS];
        try (KvCache cache = new KvCache(model, 1, doc.length, true); NDManager step = model.newStepManager()) {
            return Forward.run(model, cache, step, true, Forward.prompt(0, 0, doc, account, written, true, doc.length, 0),
                    plan).allLogits();
        }
    }

    @Test
    void skippedTokensWriteTheKeysTheDenseBlockWouldAndAreChargedTheirProjection() {
        LlamaModel model = TestModels.model();
        int[] doc = Documents.read(TestModels.shared().resolve("data/tinystories-valid-sample.txt"),
                TestModels.tokenizer(), 48, 1).get(0);
        int n = doc.length;
        StaticRouter router = new StaticRouter(SparsitySchedule.uniform(0.5, LAYERS));
        int[] positions = TokenRouter.all(n);

        // reference: every block dense on every token, then the rows the router skips keep their input
        BlockHook carryOnSkipped = new BlockHook() {
            @Override
            public NDArray after(int layer, NDArray input, NDArray output, AttentionStats attention) {
                boolean[] kept = new boolean[n];
                for (int r : router.keepPrefill(layer, positions)) {
                    kept[r] = true;
                }
                NDArray out = output.duplicate();
                for (int r = 0; r < n; r++) {
                    if (!kept[r]) {
                        out.set(new NDIndex(r), input.get(r));
                    }
                }
                return out;
            }
        };
        float[] reference = prefill(model, doc, Forward.Plan.hooked(carryOnSkipped), null);

        FlopAccount propagatedFlops = new FlopAccount();
        float[] propagated = prefill(model, doc, Forward.Plan.routed(router.propagatingKeys()), propagatedFlops);
        FlopAccount plainFlops = new FlopAccount();
        float[] plain = prefill(model, doc, Forward.Plan.routed(router), plainFlops);

        assertTrue(TestModels.maxDifference(reference, propagated) < 1e-3, "propagated: " + TestModels.maxDifference(reference, propagated));
        assertTrue(TestModels.maxDifference(reference, plain) > 1e-2, "without propagation later tokens miss those keys: "
                + TestModels.maxDifference(reference, plain));

        // every earlier token left a key in every block, so a row that runs a block attends all of them
        FlopCounter c = model.flops();
        long executed = 0;
        long skipped = 0;
        for (int l = 0; l < LAYERS; l++) {
            boolean[] kept = new boolean[n];
            for (int r : router.keepPrefill(l, positions)) {
                kept[r] = true;
            }
            for (int p = 0; p < n; p++) {
                executed += kept[p] ? c.blockAttending(l, p + 1) : c.kvProjection(l);
                skipped += kept[p] ? 0 : 1;
            }
        }
        executed += n * c.head();
        Savings s = propagatedFlops.savings();
        assertEquals(executed, s.executedFlops());
        assertEquals(skipped, s.tokenBlocksSkipped());
        assertEquals(plainFlops.savings().tokenBlocksSkipped(), skipped, "the same decisions");
        assertTrue(s.executedFlops() > plainFlops.savings().executedFlops(), "the projections and the extra keys cost");
        assertEquals(s.savedFraction(), s.byMethod().routing(), 1e-9, "what propagation costs comes off routing's share");
    }

    @Test
    void theWrapperKeepsTheRoutersDecisionsAndSaysItPropagates() {
        StaticRouter router = new StaticRouter(SparsitySchedule.uniform(0.3, LAYERS));
        TokenRouter p = router.propagatingKeys();
        assertTrue(p.propagatesKeys());
        assertEquals(p, p.propagatingKeys(), "idempotent");
        int[] positions = TokenRouter.all(20);
        for (int l = 0; l < LAYERS; l++) {
            org.junit.jupiter.api.Assertions.assertArrayEquals(router.keepPrefill(l, positions), p.keepPrefill(l, positions));
        }
        assertTrue(p.describe().contains("skipped keys propagated"), p.describe());
    }
}
