package dev.skipflow.model.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skipflow.model.TestModels;
import java.util.List;
import dev.skipflow.model.data.Documents;
import org.junit.jupiter.api.Test;

class SkipOracleTest {

    @Test
    void cheapestTakesFewestFlipsFirstThenLeastDamage() {
        float[][] damage = {{0.5f, 0.1f, 0.9f}, {0.2f, 0.3f, 0.0f}};
        int[][] flips = {{0, 2, 0}, {1, 0, 3}};
        boolean[][] byDamage = SkipOracle.cheapest(damage, null, 0.5);
        assertArrayEquals(new boolean[] {false, true, false}, byDamage[0]);
        assertArrayEquals(new boolean[] {true, false, true}, byDamage[1]);
        boolean[][] byFlips = SkipOracle.cheapest(damage, flips, 0.5);
        assertArrayEquals(new boolean[] {true, false, true}, byFlips[0]);
        assertArrayEquals(new boolean[] {false, true, false}, byFlips[1]);
    }

    @Test
    void oracleRoutingSkipsTheShareAskedAndCostsQuality() {
        List<int[]> docs = Documents.read(TestModels.shared().resolve("data/tinystories-valid-sample.txt"),
                TestModels.tokenizer(), 24, 2);
        var r = SkipOracle.routeByFlips(TestModels.model(), docs, 0.2, i -> { });
        assertEquals(0.2, r.skippedFraction(), 0.01);
        assertTrue(r.agreement() < 1 && r.agreement() > 0.3, r.toString());
        assertTrue(r.perplexity() > r.densePerplexity(), r.toString());
    }
}
