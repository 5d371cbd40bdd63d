package dev.skipflow.model.flops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skipflow.model.LlamaConfig;
import dev.skipflow.model.TestModels;
import dev.skipflow.model.decoder.BatchEngine;
import dev.skipflow.model.decoder.Sequence;
import dev.skipflow.model.sampling.SamplingParams;
import org.junit.jupiter.api.Test;

class FlopCounterTest {

    @Test
    void blockCostIsDominatedByItsMatricesAndGrowsWithContext() {
        LlamaConfig c = TestModels.weights().config();
        FlopCounter f = new FlopCounter(c);
        long d = c.dim();
        long kv = c.kvDim();
        long matrices = 2 * (d * d + 2 * kv * d + d * d + 3 * d * c.hiddenDim());
        long attention = 4 * d; // q.k and p.v per attended position, over all heads
        long small = f.block(0) - matrices - attention;
        assertTrue(small > 0 && small < matrices / 10, "norms, rope, softmax, residuals: " + small);
        assertEquals(attention + 5L * c.nHeads(), f.block(10) - f.block(9), "one more attended position");
        assertEquals(2 * d * c.vocabSize() + 4 * d, f.head());
    }

    @Test
    void aGenerationIsChargedForEveryPromptAndFedTokenWithNothingSaved() {
        int[] prompt = TestModels.tokenizer().encode("Once upon a time", true);
        FlopCounter f = new FlopCounter(TestModels.weights().config());
        try (BatchEngine engine = new BatchEngine(TestModels.model(), 1, 128)) {
            engine.stopOnEos(false);
            Sequence s = new Sequence("x", prompt, SamplingParams.greedy(20));
            engine.submit(s);
            while (!s.isFinished()) {
                engine.step();
            }
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
