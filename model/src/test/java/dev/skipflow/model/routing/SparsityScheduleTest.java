package dev.skipflow.model.routing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** Decode schedules: a prefill schedule's shape at another mean, and the random baseline skipping by it. */
class SparsityScheduleTest {

    @Test
    void scalingKeepsTheShapeAndReachesTheMean() {
        SparsitySchedule s = new SparsitySchedule(new double[] {0, 0.2, 0.4, 0.2});
        assertArrayEquals(new double[] {0, 0.05, 0.1, 0.05}, s.scaledTo(0.05).perLayer(), 1e-12);
        assertArrayEquals(new double[] {0, 0, 0, 0}, s.scaledTo(0).perLayer(), 1e-12);
        // a share over 1 is capped and its excess spread over the blocks below the cap
        SparsitySchedule high = s.scaledTo(0.6);
        assertEquals(0.6, high.mean(), 1e-12);
        assertEquals(1.0, high.at(2), 1e-12);
        assertEquals(high.at(1), high.at(3), 1e-12);
        assertEquals(0, high.at(0), 1e-12, "a block that never skips still never does");
        assertArrayEquals(new double[] {0.1, 0.1}, SparsitySchedule.uniform(0, 2).scaledTo(0.1).perLayer(), 1e-12,
                "a schedule that skips nothing has no shape to keep");
        assertThrows(IllegalArgumentException.class, () -> s.scaledTo(1));
        assertThrows(IllegalArgumentException.class, () -> s.scaledTo(-0.1));
    }

    @Test
    void proportionalSharesReachTheMean() {
        SparsitySchedule s = SparsitySchedule.proportionalTo(new double[] {1, 2, 0, 1}, 0.1);
        assertArrayEquals(new double[] {0.1, 0.2, 0, 0.1}, s.perLayer(), 1e-12);
        SparsitySchedule capped = SparsitySchedule.proportionalTo(new double[] {1, 8, 1}, 0.5);
        assertEquals(0.5, capped.mean(), 1e-12);
        assertEquals(1.0, capped.at(1), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> SparsitySchedule.proportionalTo(new double[] {0, 0}, 0.1));
        assertThrows(IllegalArgumentException.class, () -> SparsitySchedule.proportionalTo(new double[] {1, -1}, 0.1));
    }

    @Test
    void theRandomBaselineSkipsItsDecodeShareEvenForOneSequence() {
        RandomRouter r = new RandomRouter(SparsitySchedule.uniform(0.4, 2), SparsitySchedule.uniform(0.1, 2), 5L);
        int skipped = 0;
        int n = 20_000;
        for (int i = 0; i < n; i++) {
            skipped += r.keepDecode(0, new int[] {30})[0] ? 0 : 1;
        }
        assertEquals(0.1, skipped / (double) n, 0.01, "one decoding token skips with the block's share as a chance");
        boolean[] batch = r.keepDecode(1, new int[64]);
        int kept = 0;
        for (boolean k : batch) {
            kept += k ? 1 : 0;
        }
        assertEquals(64 - 6.4, kept, 1.0, "a batch skips the share's whole part, the fraction by chance");
        assertEquals(12, r.keepPrefill(0, TokenRouter.all(20)).length, "a prompt follows the prefill schedule");
    }
}
