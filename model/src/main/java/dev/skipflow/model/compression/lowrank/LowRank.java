package dev.skipflow.model.compression.lowrank;

import ai.djl.Device;
import dev.skipflow.model.compression.Calibration;
import dev.skipflow.model.io.CompressedCheckpoint;
import dev.skipflow.model.training.RouterRecipe;
import dev.skipflow.model.weights.BlockWeights;
import dev.skipflow.model.weights.LinearWeights;
import dev.skipflow.model.weights.MlpWeights;
import dev.skipflow.model.weights.ModelWeights;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * SoftLMs (arXiv 2411.10543) and its uniform-rank baseline on one model: every block's seven linear maps are
 * decomposed by SVD ({@link SvdCache}); ranks are chosen so that the maps keep {@code paramsRatio} of their
 * parameters -- one per kind of map (uniform), or per layer from a learned soft threshold ({@link SoftThresholds});
 * then each map keeps rank {@code r} and is stored as two factors {@code (U_r S'_r, V_r^T)} when that is both smaller
 * than its matrix and, by the {@link Crossover}, no slower, else as the dense reconstruction. A map whose rank
 * reaches the break-even {@code r (in + out) >= in out} keeps its original matrix (it costs the same as any dense
 * reconstruction). The spec keeps the original's, so FLOPs saved count against it.
 */
public final class LowRank {

    /** The seven maps of a block, in this order everywhere (llama2.c names: w1 gate, w3 up, w2 down). */
    public static final String[] NAMES = {"wq", "wk", "wv", "wo", "w1", "w3", "w2"};

    /** How a map is stored. */
    public enum Stored { FACTORED, DENSE_RECONSTRUCTION, ORIGINAL }

    /** One map's outcome. */
    public record Layer(int block, String name, int in, int out, int rank, int fullRank, Stored stored,
            float threshold) {
        /** Parameters the rank costs: {@code r (in + out)}, or {@code in out} when that is not smaller. */
        public long rankedParameters() {
            return cost(rank, in, out);
        }

        public long storedParameters() {
            return stored == Stored.FACTORED ? (long) rank * (in + out) : (long) in * out;
        }
    }

    /**
     * The layers of a low-rank checkpoint as its manifest records them (the last {@code lowrank} step's
     * {@code perBlock}: rank, full rank and how each map is stored; widths and thresholds are not recorded, so
     * they read 0), or null when {@code provenance} has no low-rank step.
     */
    @SuppressWarnings("unchecked")
    public static List<Layer> layersOf(dev.skipflow.model.io.CompressedCheckpoint.Provenance provenance) {
        Map<String, Object> settings = null;
        for (var step : provenance.steps()) {
            if (step.method().equals("lowrank")) {
                settings = step.settings();
            }
        }
        if (settings == null || !(settings.get("perBlock") instanceof List<?> blocks)) {
            return null;
        }
        List<Layer> out = new ArrayList<>();
        for (Object o : blocks) {
            Map<String, Object> b = (Map<String, Object>) o;
            int block = ((Number) b.get("block")).intValue();
            Map<String, Object> rank = (Map<String, Object>) b.get("rank");
            Map<String, Object> full = (Map<String, Object>) b.get("fullRank");
            Map<String, Object> stored = (Map<String, Object>) b.get("stored");
            for (var e : rank.entrySet()) {
                String kind = String.valueOf(stored.get(e.getKey())).toUpperCase(java.util.Locale.ROOT).replace('-', '_');
                out.add(new Layer(block, e.getKey(), 0, 0, ((Number) e.getValue()).intValue(),
                        ((Number) full.get(e.getKey())).intValue(), Stored.valueOf(kind), 0f));
            }
        }
        return out;
    }

    /**
     * @param linearParameters the dense maps' weights (biases aside)
     * @param budget {@code paramsRatio * linearParameters}
     * @param rankedParameters what the chosen ranks cost ({@link Layer#rankedParameters}), at most the budget
     * @param storedParameters what the stored maps hold (dense reconstructions count whole)
     */
    public record Result(ModelWeights weights, List<Layer> layers, long linearParameters, long budget,
            long rankedParameters, long storedParameters, SoftThresholds.Trained training,
            CompressedCheckpoint.Step step) {}

    private LowRank() {}

    static long cost(int rank, int in, int out) {
        return Math.min((long) rank * (in + out), (long) in * out);
    }

    /** A block's seven maps, dense; refuses other kinds. */
    static LinearWeights.Dense[] maps(BlockWeights b, int layer) {
        if (!(b.mlp() instanceof MlpWeights.Gated g)) {
            throw new IllegalArgumentException("low rank needs gated MLPs; block " + layer + " is a mixture of experts");
        }
        LinearWeights[] maps = {b.wq(), b.wk(), b.wv(), b.wo(), g.gate(), g.up(), g.down()};
        LinearWeights.Dense[] out = new LinearWeights.Dense[maps.length];
        for (int i = 0; i < maps.length; i++) {
            if (!(maps[i] instanceof LinearWeights.Dense d)) {
                throw new IllegalArgumentException("low rank needs dense maps; block " + layer + "'s " + NAMES[i] + " is "
                        + maps[i].getClass().getSimpleName() + " (already compressed that way?)");
            }
            out[i] = d;
        }
        return out;
    }

    /**
     * @param calibration tokenized documents to draw distillation samples from (learned only)
     * @param svdCache folder of the SVD cache; null for none
     * @param refreshSvd recompute a cache made for other weights instead of refusing it
     * @param extraSettings recorded in the manifest beside the options (e.g. the calibration text's path)
     */
    public static Result run(ModelWeights input, List<int[]> calibration, LowRankOptions o, Crossover crossover,
            Path svdCache, boolean refreshSvd, Map<String, Object> extraSettings, Device device,
            RouterRecipe.Phases phases) {
        int layers = input.blocks().size();
        long total = 0;
        long rankOne = 0;
        for (int l = 0; l < layers; l++) {
            for (LinearWeights.Dense d : maps(input.blocks().get(l), l)) {
                total += (long) d.in() * d.out();
                rankOne += cost(1, d.in(), d.out());
            }
        }
        long budget = (long) Math.floor(o.paramsRatio() * total);
        if (rankOne > budget) {
            throw new IllegalArgumentException(String.format("--params-ratio %s cannot be met: even rank 1 in every "
                    + "linear map keeps %,d of their %,d parameters (%.2f%%); ask for at least that share", o.paramsRatio(),
                    rankOne, total, 100.0 * rankOne / total));
        }
        int[][] ranks = uniformRanks(input, o.paramsRatio());
        if (o.method() == LowRankOptions.Method.UNIFORM && ranked(input, ranks) > budget) {
            throw new IllegalArgumentException("--params-ratio " + o.paramsRatio() + " cannot be met with one rank per "
                    + "kind of map (rank 1 is the least); ask for more, or use --method learned");
        }
        List<Svd[]> svds;
        try (RouterRecipe.Phase phase = phases.open("SVD", layers * NAMES.length)) {
            svds = SvdCache.load(input, svdCache, refreshSvd, phase);
        }
        float[][] thresholds = new float[layers][NAMES.length];
        boolean shrink = false;
        SoftThresholds.Trained trained = null;
        List<Svd[]> factors = svds;
        if (o.method() == LowRankOptions.Method.LEARNED) {
            float[][] start = new float[layers][];
            for (int l = 0; l < layers; l++) {
                start[l] = new float[NAMES.length];
                for (int i = 0; i < NAMES.length; i++) {
                    start[l][i] = thresholdFor(svds.get(l)[i], ranks[l][i]);
                }
            }
            List<int[]> samples = Calibration.samples(calibration, o.samples(), o.sampleLength(), o.seed());
            try (RouterRecipe.Phase phase = phases.open("soft thresholds", o.steps())) {
                trained = SoftThresholds.train(input, svds, start, samples, o, budget, device, phase);
            }
            factors = trained.factors();
            thresholds = project(factors, trained.thresholds(), budget, ranks);
            shrink = o.shrink();
        } else {
            for (int l = 0; l < layers; l++) {
                for (int i = 0; i < NAMES.length; i++) {
                    thresholds[l][i] = Float.NaN;
                }
            }
        }
        List<Layer> out = new ArrayList<>();
        List<BlockWeights> blocks = new ArrayList<>();
        long ranked = 0;
        long stored = 0;
        for (int l = 0; l < layers; l++) {
            BlockWeights b = input.blocks().get(l);
            LinearWeights.Dense[] dense = maps(b, l);
            LinearWeights[] now = new LinearWeights[NAMES.length];
            for (int i = 0; i < NAMES.length; i++) {
                LinearWeights.Dense d = dense[i];
                Svd s = factors.get(l)[i];
                int r = ranks[l][i];
                Stored kind;
                if ((long) r * (d.in() + d.out()) >= (long) d.in() * d.out()) {
                    kind = Stored.ORIGINAL;
                    r = s.k();
                    now[i] = trained != null && o.tuneFactors()
                            ? new LinearWeights.Dense(d.out(), d.in(), s.reconstruct(s.k(), s.s()), d.bias()) : d;
                } else {
                    float[] values = values(s, r, thresholds[l][i], shrink);
                    if (r <= crossover.maxFactoredRank(d.in(), d.out())) {
                        kind = Stored.FACTORED;
                        now[i] = new LinearWeights.LowRank(d.out(), d.in(), r, s.vtRows(r), s.scaledU(r, values), d.bias());
                    } else {
                        kind = Stored.DENSE_RECONSTRUCTION;
                        now[i] = new LinearWeights.Dense(d.out(), d.in(), s.reconstruct(r, values), d.bias());
                    }
                }
                Layer layer = new Layer(l, NAMES[i], d.in(), d.out(), r, s.k(), kind, thresholds[l][i]);
                out.add(layer);
                ranked += layer.rankedParameters();
                stored += layer.storedParameters();
            }
            blocks.add(new BlockWeights(b.rmsAtt(), now[0], now[1], now[2], now[3], b.rmsFfn(),
                    new MlpWeights.Gated(now[4], now[5], now[6])));
        }
        ModelWeights result = new ModelWeights(input.spec(), input.tokenEmbedding(), blocks, input.rmsFinal(),
                input.classifier(), input.source());
        return new Result(result, out, total, budget, ranked, stored, trained,
                step(o, crossover, input, result, out, total, budget, ranked, stored, trained, extraSettings));
    }

    /** The kept singular values: {@code s_i}, or {@code s_i - tau} with the learned threshold. */
    private static float[] values(Svd s, int r, float threshold, boolean shrink) {
        float[] v = java.util.Arrays.copyOf(s.s(), r);
        if (shrink && !Float.isNaN(threshold)) {
            float next = r < s.k() ? s.s()[r] : 0f;
            float tau = Math.max(0f, Math.min(threshold * s.s()[0], next)); // a rank held up by the minimum keeps > 0
            for (int i = 0; i < r; i++) {
                v[i] -= tau;
            }
        }
        return v;
    }

    /** Per kind, the largest rank with {@code r (in + out) <= ratio in out} (at least 1; full when ratio is 1). */
    static int[][] uniformRanks(ModelWeights w, double ratio) {
        int[][] r = new int[w.blocks().size()][];
        for (int l = 0; l < r.length; l++) {
            LinearWeights.Dense[] maps = maps(w.blocks().get(l), l);
            r[l] = new int[maps.length];
            for (int i = 0; i < maps.length; i++) {
                int in = maps[i].in();
                int out = maps[i].out();
                int k = Math.min(in, out);
                r[l][i] = ratio >= 1 ? k : Math.max(1, Math.min(k, (int) Math.floor(ratio * in * out / (in + out))));
            }
        }
        return r;
    }

    private static long ranked(ModelWeights w, int[][] ranks) {
        long c = 0;
        for (int l = 0; l < ranks.length; l++) {
            LinearWeights.Dense[] maps = maps(w.blocks().get(l), l);
            for (int i = 0; i < maps.length; i++) {
                c += cost(ranks[l][i], maps[i].in(), maps[i].out());
            }
        }
        return c;
    }

    /** The threshold halfway between the last kept and the first dropped singular value, in units of the largest. */
    static float thresholdFor(Svd s, int rank) {
        float top = s.s()[0];
        if (top == 0f) {
            return 0f;
        }
        float kept = s.s()[Math.min(rank, s.k()) - 1];
        float dropped = rank < s.k() ? s.s()[rank] : 0f;
        return (kept + dropped) / 2 / top;
    }

    /** Rank at threshold {@code t}: singular values above {@code t s_0}, at least 1. */
    static int rankAt(Svd s, float t) {
        float tau = t * s.s()[0];
        int r = 0;
        while (r < s.k() && s.s()[r] > tau) {
            r++;
        }
        return Math.max(1, r);
    }

    /**
     * The learned thresholds moved together by the smallest shift {@code delta} (in units of each layer's largest
     * singular value) at which the hard ranks {@code #{s_i > (t + delta) s_0}} cost no more than the budget: the
     * learned allocation, made to meet the budget exactly. Writes the ranks into {@code ranks}; returns the shifted
     * thresholds.
     */
    static float[][] project(List<Svd[]> svds, float[][] t, long budget, int[][] ranks) {
        double lo = -1;
        double hi = 1;
        for (int it = 0; it < 60; it++) {
            double mid = (lo + hi) / 2;
            if (costAt(svds, t, mid) <= budget) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        float[][] shifted = new float[t.length][];
        for (int l = 0; l < t.length; l++) {
            shifted[l] = new float[t[l].length];
            for (int i = 0; i < t[l].length; i++) {
                shifted[l][i] = (float) Math.max(0, t[l][i] + hi);
                ranks[l][i] = rankAt(svds.get(l)[i], (float) (t[l][i] + hi));
            }
        }
        return shifted;
    }

    private static long costAt(List<Svd[]> svds, float[][] t, double delta) {
        long c = 0;
        for (int l = 0; l < t.length; l++) {
            for (int i = 0; i < t[l].length; i++) {
                Svd s = svds.get(l)[i];
                c += cost(rankAt(s, (float) (t[l][i] + delta)), s.in(), s.out());
            }
        }
        return c;
    }

    private static CompressedCheckpoint.Step step(LowRankOptions o, Crossover crossover, ModelWeights before,
            ModelWeights after, List<Layer> layers, long total, long budget, long ranked, long stored,
            SoftThresholds.Trained trained, Map<String, Object> extra) {
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("paramsRatio", o.paramsRatio());
        s.put("method", o.method().label());
        s.put("svd", "EJML 0.46.1 (ejml-fdense, float thin SVD)");
        if (o.method() == LowRankOptions.Method.LEARNED) {
            s.put("samples", o.samples());
            s.put("sampleLength", o.sampleLength());
            s.put("steps", o.steps());
            s.put("docsPerStep", o.docsPerStep());
            s.put("budgetWeight", o.budgetWeight());
            s.put("learningRate", o.learningRate());
            s.put("temperature", o.temperature());
            s.put("tuneFactors", o.tuneFactors());
            if (o.tuneFactors()) {
                s.put("factorLearningRate", o.factorLearningRate());
            }
            s.put("operator", o.gate() ? "gate: s sigmoid((s / s_0 - t) / temperature)" : "soft threshold: relu(s - t s_0)");
            s.put("values", o.shrink() ? "soft-thresholded (s - tau)" : "original (s)");
            s.put("seed", o.seed());
            s.put("firstLoss", trained.firstLoss());
            s.put("lastLoss", trained.lastLoss());
            s.put("skippedSteps", trained.skippedSteps());
        }
        s.putAll(extra);
        s.put("crossover", crossover.describe());
        s.put("linearParameters", total);
        s.put("budget", budget);
        s.put("rankedParameters", ranked);
        s.put("storedLinearParameters", stored);
        s.put("parametersBefore", before.parameterCount());
        s.put("parametersAfter", after.parameterCount());
        List<Map<String, Object>> blocks = new ArrayList<>();
        for (int l = 0; l < before.blocks().size(); l++) {
            Map<String, Object> b = new LinkedHashMap<>();
            Map<String, Object> rank = new LinkedHashMap<>();
            Map<String, Object> kind = new LinkedHashMap<>();
            Map<String, Object> full = new LinkedHashMap<>();
            for (Layer x : layers) {
                if (x.block() == l) {
                    rank.put(x.name(), x.rank());
                    full.put(x.name(), x.fullRank());
                    kind.put(x.name(), x.stored().name().toLowerCase(java.util.Locale.ROOT).replace('_', '-'));
                }
            }
            b.put("block", l);
            b.put("rank", rank);
            b.put("fullRank", full);
            b.put("stored", kind);
            blocks.add(b);
        }
        s.put("perBlock", blocks);
        return new CompressedCheckpoint.Step("lowrank", s);
    }
}
