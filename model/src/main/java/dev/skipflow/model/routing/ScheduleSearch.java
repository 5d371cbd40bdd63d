package dev.skipflow.model.routing;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.IntConsumer;
import java.util.function.ToDoubleFunction;

/**
 * FTP's search-based sparsity scheduler: a genetic search over per-block sparsity vectors whose mean stays
 * the target, each candidate scored by a cost (calibration NLL under a router using it). Mutation moves
 * sparsity from one block to another and crossover mixes two parents convexly, so every candidate keeps the
 * mean exactly and stays within [0, 1] per block. Elitist: the best candidate never gets lost, so the result
 * is never worse than the start on the cost.
 */
public final class ScheduleSearch {

    /**
     * @param population candidates per generation
     * @param generations generations after the first
     * @param maxStep the most sparsity one mutation moves between two blocks
     */
    public record Options(int population, int generations, double maxStep, long seed) {
        public Options {
            if (population < 2 || generations < 0 || !(maxStep > 0)) {
                throw new IllegalArgumentException("search needs population >= 2, generations >= 0, maxStep > 0");
            }
        }

        /** Cost evaluations the search makes at most (cached repeats are free). */
        public int evaluations() {
            return population * (generations + 1);
        }
    }

    /** The best schedule found and its cost, with the start's cost for comparison. */
    public record Result(SparsitySchedule best, double cost, double startCost, int evaluated) {}

    private ScheduleSearch() {}

    /**
     * @param seeds starting schedules, all with the same mean (the first is "the start"); the rest of the first
     *     generation are mutants of them
     * @param progress called with the number of evaluations so far
     */
    public static Result search(List<SparsitySchedule> seeds, ToDoubleFunction<SparsitySchedule> cost, Options o,
            IntConsumer progress) {
        SplittableRandom rnd = new SplittableRandom(o.seed());
        Map<String, Double> cache = new HashMap<>();
        int[] calls = {0};
        ToDoubleFunction<double[]> score = s -> {
            String key = key(s);
            Double c = cache.get(key);
            if (c == null) {
                c = cost.applyAsDouble(new SparsitySchedule(s));
                cache.put(key, c);
            }
            progress.accept(++calls[0]);
            return c;
        };
        List<Scored> pop = new ArrayList<>();
        for (SparsitySchedule seed : seeds) {
            pop.add(new Scored(seed.perLayer(), score.applyAsDouble(seed.perLayer())));
        }
        double startCost = pop.get(0).cost;
        while (pop.size() < o.population()) {
            double[] s = seeds.get(rnd.nextInt(seeds.size())).perLayer().clone();
            int mutations = 1 + rnd.nextInt(3);
            for (int i = 0; i < mutations; i++) {
                mutate(s, rnd, o.maxStep());
            }
            pop.add(new Scored(s, score.applyAsDouble(s)));
        }
        int elites = Math.max(1, o.population() / 4);
        for (int g = 0; g < o.generations(); g++) {
            pop.sort(Comparator.comparingDouble(Scored::cost));
            List<Scored> next = new ArrayList<>(pop.subList(0, elites));
            while (next.size() < o.population()) {
                double[] a = tournament(pop, rnd).schedule;
                double[] child;
                if (rnd.nextDouble() < 0.5) {
                    double[] b = tournament(pop, rnd).schedule;
                    double alpha = rnd.nextDouble();
                    child = new double[a.length];
                    for (int i = 0; i < a.length; i++) {
                        child[i] = alpha * a[i] + (1 - alpha) * b[i];
                    }
                } else {
                    child = a.clone();
                }
                if (rnd.nextDouble() < 0.8) {
                    mutate(child, rnd, o.maxStep());
                }
                next.add(new Scored(child, score.applyAsDouble(child)));
            }
            pop = next;
        }
        pop.sort(Comparator.comparingDouble(Scored::cost));
        return new Result(new SparsitySchedule(pop.get(0).schedule), pop.get(0).cost, startCost, cache.size());
    }

    /**
     * Diverse starting points for a search at sparsity {@code mean}: for each block, the schedule that puts as
     * much of the sparsity as fits into that block and spreads the rest evenly over the others.
     */
    public static List<SparsitySchedule> corners(double mean, int layers) {
        List<SparsitySchedule> out = new ArrayList<>();
        double total = mean * layers;
        for (int b = 0; b < layers; b++) {
            double[] s = new double[layers];
            s[b] = Math.min(1, total);
            double rest = (total - s[b]) / Math.max(1, layers - 1);
            for (int i = 0; i < layers; i++) {
                if (i != b) {
                    s[i] = rest;
                }
            }
            out.add(new SparsitySchedule(s));
        }
        return out;
    }

    /** Moves up to {@code maxStep} sparsity from one block to another, within [0, 1]; the mean is unchanged. */
    static void mutate(double[] s, SplittableRandom rnd, double maxStep) {
        int from = rnd.nextInt(s.length);
        int to = rnd.nextInt(s.length);
        if (from == to) {
            return;
        }
        double room = Math.min(maxStep, Math.min(s[from], 1 - s[to]));
        double delta = rnd.nextDouble() * room;
        s[from] -= delta;
        s[to] += delta;
        s[from] = Math.max(0, s[from]); // rounding
        s[to] = Math.min(1, s[to]);
    }

    private static Scored tournament(List<Scored> pop, SplittableRandom rnd) {
        Scored best = null;
        for (int i = 0; i < 3; i++) {
            Scored c = pop.get(rnd.nextInt(pop.size()));
            best = best == null || c.cost < best.cost ? c : best;
        }
        return best;
    }

    /** Candidates closer than 1e-4 per block cost the same; rounding them avoids re-evaluating near-duplicates. */
    private static String key(double[] s) {
        StringBuilder b = new StringBuilder();
        for (double v : s) {
            b.append(Math.round(v * 1e4)).append(',');
        }
        return b.toString();
    }

    private record Scored(double[] schedule, double cost) {}
}
