package dev.skipflow.model.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skipflow.model.TestModels;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.engine.BatchEngine;
import dev.skipflow.model.routing.SparsitySchedule;
import dev.skipflow.model.routing.StaticRouter;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Greedy generations dense and adaptive side by side, and the repetition measure that judges them. */
class FluencyTest {

    @Test
    void repeatedShareCountsFourGramsSeenBefore() {
        assertEquals(0.0, Fluency.repeatedShare(new int[] {1, 2, 3, 4, 5, 6}, 4));
        // 1 2 3 4 1 2 3 4 1 2: seven 4-grams, the last three repeat the first three
        assertEquals(3 / 7.0, Fluency.repeatedShare(new int[] {1, 2, 3, 4, 1, 2, 3, 4, 1, 2}, 4), 1e-12);
        // one token over and over: every 4-gram but the first repeats
        assertEquals(9 / 10.0, Fluency.repeatedShare(new int[13], 4), 1e-12);
        assertEquals(0.0, Fluency.repeatedShare(new int[] {7, 7, 7}, 4), "too short to repeat");
    }

    @Test
    void denseSideIsTheEnginesGreedyGenerationAndTheRoutedSideSaves() {
        LlamaModel model = TestModels.model();
        List<String> prompts = List.of("Once upon a time", "The little dog");
        var r = Fluency.compare(model, TestModels.tokenizer(), prompts, 24,
                new StaticRouter(SparsitySchedule.uniform(0.3, model.spec().nLayers())), true, null);
        assertEquals(2, r.pairs().size());
        // an engine built as Fluency builds its own, without the router: the same cache shape and kernels
        try (BatchEngine plain = BatchEngine.builder(model).maxBatch(1).stopTokens(TestModels.tokenizer()).build()) {
            for (Fluency.Pair p : r.pairs()) {
                int[] prompt = TestModels.tokenizer().encode(p.prompt(), true);
                // the same engine path, batch of one, no router: the same greedy tokens
                assertArrayEquals(TestModels.generate(plain, prompt, 24, false), p.dense().tokens(), p.prompt());
                assertEquals(0.0, p.dense().savedFraction(), 1e-12);
                assertTrue(p.adaptive().savedFraction() > 0.01, "the router skips prompt tokens: " + p.adaptive().savedFraction());
                assertTrue(p.commonPrefix() <= Math.min(p.dense().tokens().length, p.adaptive().tokens().length));
                assertTrue(p.dense().repeated() >= 0 && p.dense().repeated() <= 1);
                assertTrue(!p.dense().text().isEmpty());
            }
        }
        assertEquals((r.pairs().get(0).adaptive().repeated() + r.pairs().get(1).adaptive().repeated()) / 2,
                r.adaptiveRepeated(), 1e-12);
    }
}
