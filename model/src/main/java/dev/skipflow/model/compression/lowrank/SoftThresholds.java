package dev.skipflow.model.compression.lowrank;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import dev.skipflow.model.compression.Gradients;
import dev.skipflow.model.decoder.Block;
import dev.skipflow.model.decoder.Forward;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.nn.GatedMlp;
import dev.skipflow.model.nn.Linear;
import dev.skipflow.model.nn.SoftThresholdLinear;
import dev.skipflow.model.nn.StackedLinear;
import dev.skipflow.model.weights.BlockWeights;
import dev.skipflow.model.weights.LinearWeights;
import dev.skipflow.model.weights.MlpWeights;
import dev.skipflow.model.weights.ModelWeights;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.IntConsumer;

/**
 * SoftLMs' training: every map runs as {@code U diag(relu(s - t s_0)) V^T} ({@link SoftThresholdLinear}) through the
 * decoder's one forward pass, and the thresholds {@code t} (one per map; optionally U and V too) are trained with
 * Adam on {@code KL(dense || soft)} over every position of calibration samples, plus
 * {@code budgetWeight (P_soft / budget - 1)^2}, where {@code P_soft = sum min(soft rank (in + out), in out)} (a map
 * at or above its break-even is stored whole: it costs {@code in out}, as {@link LowRank#cost}) and the soft rank is
 * {@code sum_i sigmoid((s_i / s_0 - t) / temperature)}. Thresholds start at the uniform ranks (the budget met) and
 * stay in [0, 1]. The dense model's log-probabilities are computed once per sample.
 */
public final class SoftThresholds {

    /**
     * @param thresholds per block and map ({@link LowRank#NAMES}), in units of the map's largest singular value
     * @param factors the SVDs, with U and V as trained (the input's when they were not)
     * @param firstLoss KL + budget term of the first step
     * @param lastLoss mean over the last 10 steps
     * @param firstKl KL of the first step (at the uniform ranks' thresholds)
     * @param lastKl mean KL over the last 10 steps
     */
    public record Trained(float[][] thresholds, List<Svd[]> factors, double firstLoss, double lastLoss, double firstKl,
            double lastKl, int skippedSteps) {}

    private SoftThresholds() {}

    public static Trained train(ModelWeights dense, List<Svd[]> svds, float[][] start, List<int[]> samples,
            LowRankOptions o, long budget, Device device, IntConsumer progress) {
        List<int[]> usable = samples.stream().filter(d -> d.length >= 2).toList();
        if (usable.isEmpty()) {
            throw new IllegalArgumentException("learned thresholds need calibration samples of at least 2 tokens");
        }
        int vocab = dense.spec().vocabSize();
        List<float[]> teacher = new ArrayList<>();
        try (LlamaModel t = new LlamaModel(dense, device)) {
            for (int[] doc : usable) {
                try (KvCache cache = new KvCache(t, 1, doc.length); NDManager m = t.newStepManager()) {
                    NDArray logits = Forward.run(t, cache, m, true, Forward.prompt(0, 0, doc, null, null, false, doc.length,
                            0), Forward.Plan.DENSE).logits();
                    teacher.add(logits.logSoftmax(-1).toFloatArray());
                }
            }
        }
        ModelWeights student = soft(dense, svds, start);
        SplittableRandom rnd = new SplittableRandom(o.seed());
        try (LlamaModel model = new LlamaModel(student, device)) {
            List<SoftThresholdLinear[]> layers = deviceLayers(model);
            List<NDArray> thresholds = new ArrayList<>();
            List<NDArray> factors = new ArrayList<>();
            for (SoftThresholdLinear[] block : layers) {
                for (SoftThresholdLinear s : block) {
                    thresholds.add(s.threshold());
                    if (o.gate()) {
                        s.gate(o.temperature());
                    }
                    if (o.tuneFactors()) {
                        factors.add(s.v());
                        factors.add(s.uT());
                    }
                }
            }
            thresholds.forEach(p -> p.setRequiresGradient(true));
            factors.forEach(p -> p.setRequiresGradient(true));
            Optimizer adamT = Optimizer.adam().optLearningRateTracker(Tracker.fixed(o.learningRate())).build();
            Optimizer adamF = Optimizer.adam().optLearningRateTracker(Tracker.fixed(o.factorLearningRate())).build();
            double firstLoss = Double.NaN;
            double firstKl = Double.NaN;
            int window = Math.min(10, Math.max(1, o.steps()));
            double[] recentLoss = new double[window];
            double[] recentKl = new double[window];
            int skipped = 0;
            for (int step = 1; step <= o.steps(); step++) {
                double loss;
                double klValue;
                List<KvCache> caches = new ArrayList<>();
                try (NDManager m = model.newStepManager(); GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    NDArray kl = m.zeros(new Shape());
                    for (int d = 0; d < o.docsPerStep(); d++) {
                        int idx = rnd.nextInt(usable.size());
                        int[] doc = usable.get(idx);
                        KvCache cache = new KvCache(model, 1, doc.length);
                        caches.add(cache);
                        NDArray logits = Forward.run(model, cache, m, true, Forward.prompt(0, 0, doc, null, null, false,
                                doc.length, 0), Forward.Plan.DENSE).logits();
                        NDArray logP = logits.logSoftmax(-1);
                        NDArray logQ = m.create(teacher.get(idx), new Shape(doc.length, vocab));
                        kl = kl.add(logQ.exp().mul(logQ.sub(logP)).sum().div(doc.length));
                    }
                    kl = kl.div(o.docsPerStep());
                    NDArray soft = m.zeros(new Shape());
                    for (SoftThresholdLinear[] block : layers) {
                        for (SoftThresholdLinear s : block) {
                            // what the map will cost: r (in + out) up to the break-even, then the original
                            // in out (LowRank.cost), so a map kept whole is not counted twice its size
                            soft = soft.add(s.softRank(o.temperature()).mul(s.in() + s.out())
                                    .minimum((float) s.in() * s.out()));
                        }
                    }
                    NDArray penalty = soft.div((float) budget).sub(1f).square().mul((float) o.budgetWeight());
                    NDArray total = kl.add(penalty);
                    loss = total.getFloat();
                    klValue = kl.getFloat();
                    gc.backward(total);
                } finally {
                    caches.forEach(KvCache::close);
                }
                boolean ok = Gradients.clippedStep(adamT, "threshold", thresholds, 1e9);
                if (o.tuneFactors()) {
                    ok &= Gradients.clippedStep(adamF, "factor", factors, 1.0);
                }
                if (!ok) {
                    skipped++;
                }
                for (NDArray t : thresholds) { // t in [0, 1]: below 0 would grow every singular value
                    float v = t.getFloat();
                    if (v < 0f || v > 1f) {
                        t.set(new float[] {Math.max(0f, Math.min(1f, v))});
                    }
                }
                if (step == 1) {
                    firstLoss = loss;
                    firstKl = klValue;
                }
                recentLoss[(step - 1) % window] = loss;
                recentKl[(step - 1) % window] = klValue;
                progress.accept(step);
            }
            int counted = Math.min(o.steps(), window);
            double lastLoss = mean(recentLoss, counted);
            double lastKl = mean(recentKl, counted);
            float[][] t = new float[layers.size()][];
            List<Svd[]> trained = new ArrayList<>();
            float attentionScale = (float) (1.0 / Math.sqrt(dense.spec().headSize()));
            for (int l = 0; l < layers.size(); l++) {
                SoftThresholdLinear[] block = layers.get(l);
                t[l] = new float[block.length];
                BlockWeights b = dense.blocks().get(l);
                float[][] norms = {b.rmsAtt(), b.rmsAtt(), b.rmsAtt(), null, b.rmsFfn(), b.rmsFfn(), null};
                Svd[] out = new Svd[block.length];
                for (int i = 0; i < block.length; i++) {
                    t[l][i] = block[i].threshold().getFloat();
                    out[i] = o.tuneFactors() ? unfold(svds.get(l)[i], block[i], norms[i], i == 0 ? attentionScale : 1f)
                            : svds.get(l)[i];
                }
                trained.add(out);
            }
            return new Trained(t, trained, firstLoss, lastLoss, firstKl, lastKl, skipped);
        }
    }

    private static double mean(double[] a, int n) {
        double s = 0;
        for (int i = 0; i < n; i++) {
            s += a[i];
        }
        return n == 0 ? Double.NaN : s / n;
    }

    /**
     * The trained device factors back in the host layout: on the device {@code V [in, k]} holds
     * {@code diag(norm) V} (the norm folded into the input columns) and {@code U^T} holds {@code c U^T} (c the
     * attention scale for q); both are undone. A column whose norm weight is 0 is 0.
     */
    private static Svd unfold(Svd host, SoftThresholdLinear dev, float[] norm, float scale) {
        int in = host.in();
        int out = host.out();
        int k = host.k();
        float[] v = dev.v().toFloatArray(); // [in, k]
        float[] uT = dev.uT().toFloatArray(); // [k, out]
        float[] vt = new float[k * in];
        for (int j = 0; j < in; j++) {
            float s = norm == null ? 1f : norm[j];
            for (int i = 0; i < k; i++) {
                vt[i * in + j] = s == 0f ? 0f : v[j * k + i] / s;
            }
        }
        float[] u = new float[out * k];
        for (int i = 0; i < k; i++) {
            for (int j = 0; j < out; j++) {
                u[j * k + i] = uT[i * out + j] / scale;
            }
        }
        return new Svd(out, in, k, u, host.s(), vt);
    }

    /** The dense model with every map in SVD form at the given thresholds. */
    static ModelWeights soft(ModelWeights w, List<Svd[]> svds, float[][] t) {
        List<BlockWeights> blocks = new ArrayList<>();
        for (int l = 0; l < w.blocks().size(); l++) {
            BlockWeights b = w.blocks().get(l);
            LinearWeights.Dense[] maps = LowRank.maps(b, l);
            LinearWeights[] s = new LinearWeights[maps.length];
            for (int i = 0; i < maps.length; i++) {
                Svd f = svds.get(l)[i];
                s[i] = new LinearWeights.Svd(f.out(), f.in(), f.k(), f.u(), f.s(), f.vt(), maps[i].bias(), t[l][i]);
            }
            blocks.add(new BlockWeights(b.rmsAtt(), s[0], s[1], s[2], s[3], b.rmsFfn(), new MlpWeights.Gated(s[4], s[5], s[6])));
        }
        return new ModelWeights(w.spec(), w.tokenEmbedding(), blocks, w.rmsFinal(), w.classifier(), w.source());
    }

    /** Per block, its device layers in {@link LowRank#NAMES} order (q, k, v from the q|k|v stack). */
    static List<SoftThresholdLinear[]> deviceLayers(LlamaModel model) {
        List<SoftThresholdLinear[]> out = new ArrayList<>();
        for (int l = 0; l < model.spec().nLayers(); l++) {
            Block b = model.block(l);
            List<Linear> qkv = ((StackedLinear) b.qkv()).parts();
            List<Linear> gateUp = ((StackedLinear) ((GatedMlp) b.mlp()).gateUp()).parts();
            out.add(new SoftThresholdLinear[] {(SoftThresholdLinear) qkv.get(0), (SoftThresholdLinear) qkv.get(1),
                (SoftThresholdLinear) qkv.get(2), (SoftThresholdLinear) b.wo(), (SoftThresholdLinear) gateUp.get(0),
                (SoftThresholdLinear) gateUp.get(1), (SoftThresholdLinear) ((GatedMlp) b.mlp()).down()});
        }
        return out;
    }
}
