package dev.skipflow.model.flops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skipflow.model.TestModels;
import dev.skipflow.model.engine.BatchEngine;
import dev.skipflow.model.engine.Sequence;
import dev.skipflow.model.sampling.SamplingParams;
import dev.skipflow.model.spec.LlamaConfig;
import dev.skipflow.model.spec.ModelSpec;
import java.util.Set;
import org.junit.jupiter.api.Test;

class FlopCounterTest {

    @Test
    void blockCostIsDominatedByItsMatricesAndGrowsWithContext() {
        LlamaConfig c = TestModels.weights().config();
        FlopCounter f = TestModels.model().flops();
        long d = c.dim();
        long kv = c.kvDim();
        long matrices = 2 * (d * d + 2 * kv * d + d * d + 3 * d * c.hiddenDim());
        long attention = 4 * d; // q.k and p.v per attended position, over all heads
        for (int l = 0; l < c.nLayers(); l++) {
            long small = f.denseBlock(l, 0) - matrices - attention;
            assertTrue(small > 0 && small < matrices / 10, "norms, rope, softmax, residuals: " + small);
            assertEquals(attention + 5L * c.nHeads(), f.denseBlock(l, 10) - f.denseBlock(l, 9), "one more attended position");
        }
        assertEquals(2 * d * c.vocabSize() + 4 * d, f.head());
    }

    @Test
    void aDenseModelsOwnLayersCostWhatTheAnalyticDenseFormulaSays() {
        // executed (from the model's Linear/Mlp objects) and reference (from the spec) must agree, or a dense
        // model would report savings it did not make
        FlopCounter built = TestModels.model().flops();
        FlopCounter analytic = FlopCounter.of(ModelSpec.uniform(TestModels.weights().config()));
        for (int l = 0; l < built.layers(); l++) {
            assertEquals(analytic.cost(l), built.cost(l), "block " + l);
            for (int p : new int[] {0, 7, 100}) {
                assertEquals(built.denseBlock(l, p), built.blockAttending(l, p + 1));
            }
        }
        assertEquals(built.denseHead(), built.head());
        assertEquals(built.denseAllBlocks(42), built.allBlocks(42));
        assertEquals(built.blocksThrough(1, 5), built.blockAttending(0, 6) + built.blockAttending(1, 6));
    }

    @Test
    void aGenerationIsChargedForEveryPromptAndFedTokenWithNothingSaved() {
        int[] prompt = TestModels.tokenizer().encode("Once upon a time", true);
        FlopCounter f = TestModels.model().flops();
        try (BatchEngine engine = BatchEngine.builder(TestModels.model()).maxBatch(1).context(128).stopTokens(Set.of())
                .build()) {
            Sequence s = new Sequence("x", prompt, SamplingParams.greedy(20));
            TestModels.runAlone(engine, s);
            long expected = f.head(); // prefill computes logits for its last position only
            for (int p = 0; p < prompt.length; p++) {
                expected += f.allBlocks(p);
            }
            for (int p = prompt.length; p < prompt.length + 19; p++) { // 19 generated tokens were fed back
                expected += f.allBlocks(p) + f.head();
            }
            Savings sv = s.account().savings();
            assertEquals(expected, sv.denseFlops());
            assertEquals(expected, sv.executedFlops());
            assertEquals(0.0, sv.savedFraction());
            assertEquals((prompt.length + 19L) * 5, sv.tokenBlocksTotal());
        }
    }
}
