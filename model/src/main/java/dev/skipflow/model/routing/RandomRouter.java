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
    private final SplittableRandom random;

    public RandomRouter(SparsitySchedule schedule, long seed) {
        this.schedule = schedule;
        this.random = new SplittableRandom(seed);
    }

    @Override
    public int[] keepPrefill(int layer, int[] positions) {
        int n = positions.length;
        int keep = schedule.keep(layer, n);
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
    public boolean[] keepDecode(int layer, int[] positions) {
        boolean[] keep = new boolean[positions.length];
        for (int r : keepPrefill(layer, positions)) {
            keep[r] = true;
        }
        return keep;
    }

    @Override
    public String describe() {
        return "random " + schedule;
    }
}
