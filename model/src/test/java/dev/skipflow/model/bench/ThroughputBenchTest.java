package dev.skipflow.model.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skipflow.model.TestModels;
import dev.skipflow.model.routing.RandomRouter;
import dev.skipflow.model.routing.SparsitySchedule;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The side-by-side decode's accounting on the real stories260K: what it measures, not how fast (that is the bench's). */
class ThroughputBenchTest {

    private final ThroughputBench bench = new ThroughputBench(TestModels.model(),
            new ThroughputBench.Options(new int[] {8}, 4, 4, 16, 1, 1L, 0));
    private final List<int[]> prompts = List.of(TestModels.tokenizer().encode("Once upon a time", true),
            TestModels.tokenizer().encode("The little dog", true));

    @Test
    void routedDecodeReportsItsSkippedShareAndTheMatrixProductsBound() {
        var router = new RandomRouter(SparsitySchedule.uniform(0.4, TestModels.model().spec().nLayers()), 7L);
        var d = bench.decodeSideBySide(router, null, prompts, 8, true, msg -> { });
        assertTrue(d.skippedShare() > 0.2 && d.skippedShare() < 0.6, "skipped share " + d.skippedShare());
        assertTrue(d.savedFraction() > 0 && d.savedFraction() < d.skippedShare(),
                "the unrouted LM head keeps FLOPs saved below the token-blocks skipped: " + d);
        assertNotNull(d.matmulBound(), "a routed decode without exit gets the products' bound");
        assertTrue(d.matmulBound() > 0 && Double.isFinite(d.matmulBound()), d.toString());
    }

    @Test
    void promptOnlyRoutingHasNoDecodeBound() {
        var router = new RandomRouter(SparsitySchedule.uniform(0.4, TestModels.model().spec().nLayers()), 7L);
        var d = bench.decodeSideBySide(router, null, prompts, 8, false, msg -> { });
        assertEquals(0, d.skippedShare(), "decode runs every block when only prompts are routed");
        assertNull(d.matmulBound());
    }

    @Test
    void theBoundTimesKeptRowsAgainstFullRows() {
        var b = bench.matmulBound(16, 0.25);
        assertEquals(16, b.rows());
        assertEquals(12, b.keptRows());
        assertTrue(b.denseMs() > 0 && b.routedMs() > 0 && Double.isFinite(b.speedup()), b.toString());
    }
}
