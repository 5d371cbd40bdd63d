package dev.skipflow.model.routing;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Baseline: each block keeps a uniformly random subset of its schedule's size (seeded), in a prefill among the
 * prompt's tokens and in a decode step among the step's new tokens (with {@code --route all}), so it also gives
 * the static per-block decode schedule the speed benchmarks need.
 */
public final class RandomRouter implements TokenRouter {

    private final SparsitySchedule schedule;
    private final SparsitySchedule decodeSchedule;
    private final SplittableRandom random;

    public RandomRouter(SparsitySchedule schedule, long seed) {
        this(schedule, schedule, seed);
    }

    /** With its own share of decoding tokens skipped per block. */
    public RandomRouter(SparsitySchedule schedule, SparsitySchedule decodeSchedule, long seed) {
        this.schedule = schedule;
        this.decodeSchedule = decodeSchedule;
        this.random = new SplittableRandom(seed);
    }

    @Override
    public int[] keepPrefill(int layer, int[] positions) {
        return randomRows(positions.length, schedule.keep(layer, positions.length));
    }

    /**
     * A decode step's rows skip the block's share in expectation: its whole part exactly, the fraction left by a
     * coin, so that one sequence decoding alone (n = 1) skips too.
     */
    @Override
    public boolean[] keepDecode(int layer, int[] positions) {
        int n = positions.length;
        double expected = decodeSchedule.at(layer) * n;
        int skip = (int) Math.floor(expected);
        if (random.nextDouble() < expected - skip) {
            skip++;
        }
        boolean[] keep = new boolean[n];
        for (int r : randomRows(n, n - Math.min(n, skip))) {
            keep[r] = true;
        }
        return keep;
    }

    private int[] randomRows(int n, int keep) {
        int[] order = TokenRouter.all(n);
        for (int i = n - 1; i > 0; i--) { // Fisher-Yates
            int j = random.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        int[] rows = Arrays.copyOf(order, keep);
        Arrays.sort(rows);
        return rows;
    }

    @Override
    public String describe() {
        return "random " + schedule + (Arrays.equals(schedule.perLayer(), decodeSchedule.perLayer()) ? ""
                : ", decode " + decodeSchedule);
    }
}
