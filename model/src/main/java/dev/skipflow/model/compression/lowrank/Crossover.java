package dev.skipflow.model.compression.lowrank;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Up to which rank a layer stored as two factors is no slower than its dense matrix. {@link #params()} is the
 * parameter break-even alone ({@code r (in + out) < in out}); {@link #measured} times, on this machine and device,
 * the dense matmul {@code [rows, in] x [in, out]} against the two thin ones {@code [rows, in] x [in, r] x [r, out]} for
 * each row count given (a prefill chunk, a decode batch) and keeps the largest rank at which the factored pair is no
 * slower for all of them (a binary search, factored time rising with rank), capped by the break-even.
 */
public abstract class Crossover {

    /** One measured shape: the dense time per row count and the crossover rank found. */
    public record Shape2(int in, int out, int breakEven, int crossover, Map<Integer, Double> denseMicros,
            Map<Integer, Double> factoredMicrosAtCrossover) {}

    /** The largest rank stored factored for an {@code [out, in]} map (0: never). */
    public abstract int maxFactoredRank(int in, int out);

    /** What was measured or assumed, for the manifest and the summary. */
    public abstract Map<String, Object> describe();

    /** Largest r with {@code r (in + out) < in out}. */
    public static int breakEven(int in, int out) {
        long io = (long) in * out;
        return (int) ((io - 1) / (in + out));
    }

    public static Crossover params() {
        return new Crossover() {
            @Override
            public int maxFactoredRank(int in, int out) {
                return breakEven(in, out);
            }

            @Override
            public Map<String, Object> describe() {
                return Map.of("mode", "params", "rule", "factored when r (in + out) < in out");
            }
        };
    }

    /** Measures each shape the first time it is asked about. */
    public static Crossover measured(Device device, int[] rows) {
        return new Measured(device, rows);
    }

    private static final class Measured extends Crossover {
        private final Device device;
        private final int[] rows;
        private final Map<String, Shape2> shapes = new LinkedHashMap<>();

        Measured(Device device, int[] rows) {
            if (rows.length == 0) {
                throw new IllegalArgumentException("the crossover needs at least one row count to measure");
            }
            this.device = device;
            this.rows = rows.clone();
        }

        @Override
        public int maxFactoredRank(int in, int out) {
            return shapes.computeIfAbsent(in + "x" + out, key -> measure(in, out)).crossover();
        }

        private Shape2 measure(int in, int out) {
            int be = breakEven(in, out);
            Map<Integer, Double> dense = new LinkedHashMap<>();
            Map<Integer, Double> factored = new LinkedHashMap<>();
            try (NDManager m = NDManager.newBaseManager(device)) {
                m.getEngine().setRandomSeed(7);
                NDArray w = m.randomNormal(new Shape(in, out));
                List<NDArray> xs = new ArrayList<>();
                for (int r : rows) {
                    xs.add(m.randomNormal(new Shape(r, in)));
                }
                double[] denseTime = new double[rows.length];
                for (int i = 0; i < rows.length; i++) {
                    NDArray x = xs.get(i);
                    denseTime[i] = time(() -> x.matMul(w));
                    dense.put(rows[i], denseTime[i]);
                }
                int lo = 0; // largest rank known no slower
                int hi = be; // ranks above hi are not considered
                while (lo < hi) {
                    int r = (lo + hi + 1) / 2;
                    if (noSlower(m, in, out, r, xs, denseTime, null)) {
                        lo = r;
                    } else {
                        hi = r - 1;
                    }
                }
                if (lo > 0) {
                    noSlower(m, in, out, lo, xs, denseTime, factored);
                }
                return new Shape2(in, out, be, lo, dense, factored);
            }
        }

        private boolean noSlower(NDManager m, int in, int out, int r, List<NDArray> xs, double[] dense,
                Map<Integer, Double> record) {
            NDArray a = m.randomNormal(new Shape(in, r));
            NDArray b = m.randomNormal(new Shape(r, out));
            try {
                boolean ok = true;
                for (int i = 0; i < xs.size(); i++) {
                    NDArray x = xs.get(i);
                    double t = time(() -> {
                        NDArray h = x.matMul(a);
                        NDArray y = h.matMul(b);
                        h.close();
                        return y;
                    });
                    if (record != null) {
                        record.put(rows[i], t);
                    }
                    ok &= t <= dense[i];
                }
                return ok;
            } finally {
                a.close();
                b.close();
            }
        }

        /** Microseconds per call: the fastest of 5 rounds, each as many calls as fill about 15 ms (after warm-up). */
        private static double time(java.util.function.Supplier<NDArray> op) {
            for (int i = 0; i < 3; i++) {
                op.get().close();
            }
            long one = System.nanoTime();
            op.get().close();
            one = Math.max(1, System.nanoTime() - one);
            int calls = (int) Math.max(1, Math.min(2000, 15_000_000L / one));
            double best = Double.MAX_VALUE;
            for (int round = 0; round < 5; round++) {
                long start = System.nanoTime();
                for (int c = 0; c < calls; c++) {
                    op.get().close();
                }
                best = Math.min(best, (System.nanoTime() - start) / 1e3 / calls);
            }
            return best;
        }

        @Override
        public Map<String, Object> describe() {
            Map<String, Object> d = new LinkedHashMap<>();
            d.put("mode", "measured");
            d.put("rows", rows);
            d.put("device", device.toString());
            List<Map<String, Object>> list = new ArrayList<>();
            for (Shape2 s : shapes.values()) {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("in", s.in());
                o.put("out", s.out());
                o.put("breakEvenRank", s.breakEven());
                o.put("crossoverRank", s.crossover());
                o.put("denseMicros", s.denseMicros());
                o.put("factoredMicrosAtCrossover", s.factoredMicrosAtCrossover());
                list.add(o);
            }
            d.put("shapes", list);
            return d;
        }
    }
}
