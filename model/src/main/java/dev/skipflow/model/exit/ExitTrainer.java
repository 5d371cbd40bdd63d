package dev.skipflow.model.exit;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import de.bwaldvogel.liblinear.Feature;
import de.bwaldvogel.liblinear.FeatureNode;
import de.bwaldvogel.liblinear.Linear;
import de.bwaldvogel.liblinear.Model;
import de.bwaldvogel.liblinear.Parameter;
import de.bwaldvogel.liblinear.Problem;
import de.bwaldvogel.liblinear.SolverType;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.decoder.AttentionStats;
import dev.skipflow.model.decoder.BlockHook;
import dev.skipflow.model.decoder.Forward;
import dev.skipflow.model.flops.FlopCounter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;
import java.util.function.IntConsumer;

/**
 * Trains AdaInfer's exit classifier on calibration text with the dense model:
 * <ol>
 *   <li>features: after every block but the last, the final norm and LM head on each position's hidden state
 *       give top prob and gap (plus the block's indicator); label +1 when that block's top-1 already equals
 *       the last block's (AdaInfer's positive example), else -1. {@link Features#EXTENDED} adds the top-1's
 *       streak over the policy's probes and the block's saturation; with candidates, a token's later probes
 *       compute top prob and gap over its first probe's K best tokens only, as the forward pass will;</li>
 *   <li>a linear SVM (liblinear, L2-regularized L2-loss, dual) on the training documents, classes weighted
 *       (balanced by default: positives are rare in early blocks); one per probe policy when the features
 *       depend on the policy (streaks, candidates), else one for all;</li>
 *   <li>on held-out documents, for every probe policy (first probed block, every k), the lowest decision
 *       threshold whose simulated agreement (exit at the first accepted probe; the top-1 there against the
 *       last block's) meets the target, and the FLOPs that saves net of probes and key/value propagation;
 *       the policy saving most is kept, unless one is forced.</li>
 * </ol>
 * The simulation uses dense hidden states; the real pass (exited tokens' keys/values propagated from their exit
 * state) is what {@code eval --exit} measures.
 */
public final class ExitTrainer {

    /** Which probe features the classifier weighs. */
    public enum Features {
        /** AdaInfer's: top prob and gap (and the block). */
        ADAINFER,
        /** Those, the top-1's streak over the probes and the block's saturation. */
        EXTENDED
    }

    /**
     * @param positiveWeight liblinear class weight of positives relative to negatives; 0 = balanced
     * @param minLayer forced first probed block, -1 = choose by measurement
     * @param every forced probe stride, 0 = choose by measurement (1 or 2)
     * @param candidates 0 = every probe runs the whole head; K = later probes score the first probe's K best tokens
     * @param perBlockThresholds after the policy scan, give each probed block its own threshold (greedy, held-out)
     */
    public record Options(double targetAgreement, double heldOutFraction, double c, double positiveWeight, int minLayer,
            int every, Features features, int candidates, boolean perBlockThresholds) {
        public Options {
            if (!(targetAgreement > 0 && targetAgreement <= 1)) {
                throw new IllegalArgumentException("--target-agreement must be in (0, 1], got " + targetAgreement);
            }
            if (!(heldOutFraction > 0 && heldOutFraction < 1)) {
                throw new IllegalArgumentException("--held-out must be in (0, 1), got " + heldOutFraction);
            }
            if (!(c > 0) || positiveWeight < 0) {
                throw new IllegalArgumentException("--c must be positive and --positive-weight non-negative");
            }
            if (candidates < 0) {
                throw new IllegalArgumentException("--candidates must be >= 0, got " + candidates);
            }
        }

        public Options(double targetAgreement, double heldOutFraction, double c, double positiveWeight, int minLayer,
                int every) {
            this(targetAgreement, heldOutFraction, c, positiveWeight, minLayer, every, Features.ADAINFER, 0, false);
        }

        /** train-exit's defaults: 99% agreement on a quarter held out, C = 1, balanced, policy by measurement. */
        public static Options defaults() {
            return new Options(0.99, 0.25, 1, 0, -1, 0);
        }

        boolean perPolicy() {
            return features == Features.EXTENDED || candidates > 0;
        }
    }

    /** One policy's simulated result on held-out data at its chosen threshold. */
    public record PolicyResult(int minLayer, int every, double threshold, double agreement, double meanLayersRun,
            double layersSaved, double flopsSaved) {}

    public record Result(ExitArtifact artifact, List<PolicyResult> policies, long trainExamples, long positives,
            double trainAccuracy) {}

    /** Per position of the calibration documents: what probes after each probe-able block would measure, and labels. */
    static final class Calibration {
        final int layers;
        final int candidates;
        final List<float[]> topProb = new ArrayList<>(); // per token [layers - 1]
        final List<float[]> gap = new ArrayList<>();
        final List<int[]> top1 = new ArrayList<>();
        final List<float[]> saturation = new ArrayList<>();
        final List<boolean[]> settled = new ArrayList<>(); // top-1 equals the last block's
        final List<Integer> position = new ArrayList<>();
        // with candidates from a first probe after block m, a probe after block l > m: [m * (layers - 1) + l]
        final List<float[]> candTopProb = new ArrayList<>();
        final List<float[]> candGap = new ArrayList<>();
        final List<int[]> candTop1 = new ArrayList<>();

        Calibration(int layers, int candidates) {
            this.layers = layers;
            this.candidates = candidates;
        }

        int size() {
            return topProb.size();
        }

        /** What a probe after block l measures for token t when the policy's first probe was after block first. */
        ExitFeatures probe(int t, int first, int l, int streak) {
            float sat = saturation.get(t)[l];
            if (candidates == 0 || l == first) {
                return new ExitFeatures(topProb.get(t)[l], gap.get(t)[l], top1.get(t)[l], streak, sat);
            }
            int at = first * (layers - 1) + l;
            return new ExitFeatures(candTopProb.get(t)[at], candGap.get(t)[at], candTop1.get(t)[at], streak, sat);
        }

        int probeTop1(int t, int first, int l) {
            return candidates == 0 || l == first ? top1.get(t)[l] : candTop1.get(t)[first * (layers - 1) + l];
        }
    }

    private ExitTrainer() {}

    static Calibration collect(LlamaModel model, List<int[]> docs, IntConsumer progress) {
        return collect(model, docs, 0, progress);
    }

    static Calibration collect(LlamaModel model, List<int[]> docs, int candidates, IntConsumer progress) {
        int layers = model.spec().nLayers();
        int v = model.spec().vocabSize();
        int k = Math.min(candidates, v);
        Calibration cal = new Calibration(layers, k);
        int maxLen = docs.stream().mapToInt(d -> d.length).max().orElse(1);
        try (KvCache cache = new KvCache(model, 1, Math.min(maxLen, model.spec().seqLen()))) {
            int done = 0;
            for (int[] doc : docs) {
                int n = doc.length;
                float[][] logits = new float[layers][];
                float[][] sat = new float[layers][];
                try (NDManager step = model.newStepManager()) {
                    Forward.run(model, cache, step, true, Forward.prompt(0, 0, doc, null, null, false, n, n),
                            Forward.Plan.hooked(new BlockHook() {
                                @Override
                                public NDArray after(int l, NDArray x, NDArray y, AttentionStats attention) {
                                    logits[l] = model.logits(y).toFloatArray(); // a probe after every block
                                    sat[l] = x.mul(y).sum(new int[] {1}).div(x.square().sum(new int[] {1})
                                            .mul(y.square().sum(new int[] {1})).sqrt().add(1e-12f)).toFloatArray();
                                    return y;
                                }
                            }));
                }
                for (int p = 0; p < n; p++) {
                    int last = ExitFeatures.of(logits[layers - 1], p * v, v).top1();
                    float[] tp = new float[layers - 1];
                    float[] g = new float[layers - 1];
                    int[] top = new int[layers - 1];
                    float[] sa = new float[layers - 1];
                    boolean[] s = new boolean[layers - 1];
                    for (int l = 0; l + 1 < layers; l++) {
                        ExitFeatures f = ExitFeatures.of(logits[l], p * v, v);
                        tp[l] = f.topProb();
                        g[l] = f.gap();
                        top[l] = f.top1();
                        sa[l] = sat[l][p];
                        s[l] = f.top1() == last;
                    }
                    cal.topProb.add(tp);
                    cal.gap.add(g);
                    cal.top1.add(top);
                    cal.saturation.add(sa);
                    cal.settled.add(s);
                    cal.position.add(p);
                    if (k > 0) {
                        int w = layers - 1;
                        float[] ctp = new float[w * w];
                        float[] cg = new float[w * w];
                        int[] ct = new int[w * w];
                        float[] scores = new float[k];
                        for (int m = 0; m + 1 < layers; m++) {
                            int[] ids = topK(logits[m], p * v, v, k);
                            for (int l = m + 1; l + 1 < layers; l++) {
                                for (int j = 0; j < k; j++) {
                                    scores[j] = logits[l][p * v + ids[j]];
                                }
                                ExitFeatures f = ExitFeatures.of(scores, 0, k);
                                ctp[m * w + l] = f.topProb();
                                cg[m * w + l] = f.gap();
                                ct[m * w + l] = ids[f.top1()];
                            }
                        }
                        cal.candTopProb.add(ctp);
                        cal.candGap.add(cg);
                        cal.candTop1.add(ct);
                    }
                }
                progress.accept(++done);
            }
        }
        return cal;
    }

    /** The {@code k} best of {@code a[offset, offset + count)}, as indices in that range, best first. */
    static int[] topK(float[] a, int offset, int count, int k) {
        Integer[] order = new Integer[count];
        for (int i = 0; i < count; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (p, q) -> Float.compare(a[offset + q], a[offset + p]));
        int[] top = new int[k];
        for (int i = 0; i < k; i++) {
            top[i] = order[i];
        }
        return top;
    }

    /** A policy's probes of token t: the blocks probed, in order, and each probe's features. */
    private static void probes(ExitClassifier policy, Calibration cal, int t, java.util.function.BiConsumer<Integer, ExitFeatures> each) {
        int streak = 0;
        int last = -1;
        for (int l = 0; l + 1 < cal.layers; l++) {
            if (!policy.probes(l)) {
                continue;
            }
            int top = cal.probeTop1(t, policy.minLayer(), l);
            streak = top == last ? streak + 1 : 1;
            last = top;
            each.accept(l, cal.probe(t, policy.minLayer(), l, streak));
        }
    }

    /** The SVM's feature vector of one probe; features it does not weigh stay out. */
    private static Feature[] vector(ExitFeatures f, int l, Features kind, int features) {
        List<Feature> x = new ArrayList<>();
        x.add(new FeatureNode(1, f.topProb()));
        x.add(new FeatureNode(2, f.gap()));
        if (kind == Features.EXTENDED) {
            x.add(new FeatureNode(3, f.streak() >= 2 ? 1 : 0));
            x.add(new FeatureNode(4, f.streak() >= 3 ? 1 : 0));
            x.add(new FeatureNode(5, f.saturation()));
        }
        x.add(new FeatureNode(ExitClassifier.BLOCKS + 1 + l, 1.0));
        x.add(new FeatureNode(features + 1, 1.0));
        return x.toArray(new Feature[0]);
    }

    /** A fitted SVM as classifier weights, with the share of training examples it classifies right. */
    private record Fit(float[] weights, float bias, double accuracy, long examples, long positives, double positiveWeight) {}

    /** Trains the SVM on the probes {@code policy} makes of the training tokens (every block when null). */
    private static Fit fit(ExitClassifier policy, Calibration train, Options options) {
        int layers = train.layers;
        int features = ExitClassifier.featureCount(layers);
        List<Feature[]> xs = new ArrayList<>();
        List<Double> ys = new ArrayList<>();
        List<ExitFeatures> fs = new ArrayList<>();
        List<Integer> ls = new ArrayList<>();
        ExitClassifier every = policy == null ? ExitClassifier.never(layers) : policy;
        for (int t = 0; t < train.size(); t++) {
            boolean[] settled = train.settled.get(t);
            probes(every, train, t, (l, f) -> {
                xs.add(vector(f, l, options.features(), features));
                ys.add(settled[l] ? 1.0 : -1.0);
                fs.add(f);
                ls.add(l);
            });
        }
        int examples = xs.size();
        long positives = ys.stream().filter(y -> y > 0).count();
        if (positives == 0 || positives == examples) {
            throw new IllegalArgumentException("calibration text gives only one class (" + positives + " positives of "
                    + examples + "); use more documents");
        }
        Problem problem = new Problem();
        problem.l = examples;
        problem.n = features + 1;
        problem.bias = 1;
        problem.x = xs.toArray(new Feature[0][]);
        problem.y = ys.stream().mapToDouble(Double::doubleValue).toArray();
        double wPos = options.positiveWeight() > 0 ? options.positiveWeight()
                : (examples - positives) / (double) positives; // balanced
        Parameter param = new Parameter(SolverType.L2R_L2LOSS_SVC_DUAL, options.c(), 0.01);
        param.setWeights(new double[] {wPos, 1.0}, new int[] {1, -1});
        param.setRandom(new java.util.Random(7));
        Linear.disableDebugOutput();
        Model svm = Linear.train(problem, param);
        double[] w = svm.getFeatureWeights();
        double sign = svm.getLabels()[0] == 1 ? 1 : -1; // liblinear's decision value is for its first label
        float[] weights = new float[features];
        for (int i = 0; i < features; i++) {
            weights[i] = (float) (sign * w[i]);
        }
        float bias = (float) (sign * w[features]);
        long correct = 0;
        for (int i = 0; i < examples; i++) {
            double s = ExitClassifier.score(weights, bias, fs.get(i), ls.get(i));
            correct += (s > 0) == (problem.y[i] > 0) ? 1 : 0;
        }
        return new Fit(weights, bias, correct / (double) examples, examples, positives, wPos);
    }

    public static Result train(LlamaModel model, String modelDescription, List<int[]> docs, Options options,
            IntConsumer progress, Consumer<String> log) {
        int layers = model.spec().nLayers();
        if (layers < 2) {
            throw new IllegalArgumentException("early exit needs a model of at least 2 blocks");
        }
        if (docs.size() < 2) {
            throw new IllegalArgumentException("train-exit needs at least 2 calibration documents (training and held-out)");
        }
        int heldOutDocs = Math.max(1, (int) Math.round(docs.size() * options.heldOutFraction()));
        List<int[]> trainDocs = docs.subList(0, docs.size() - heldOutDocs);
        List<int[]> heldDocs = docs.subList(docs.size() - heldOutDocs, docs.size());
        Calibration train = collect(model, trainDocs, options.candidates(), progress);
        Calibration held = collect(model, heldDocs, options.candidates(), i -> progress.accept(trainDocs.size() + i));

        Fit shared = options.perPolicy() ? null : fit(null, train, options);
        if (shared != null) {
            log.accept(String.format(Locale.ROOT, "svm on %d token-blocks (%.1f%% positive, positive weight %.2f): "
                    + "training accuracy %.3f", shared.examples(), 100.0 * shared.positives() / shared.examples(),
                    shared.positiveWeight(), shared.accuracy()));
        }
        ExitClassifier base = new ExitClassifier(layers, new float[ExitClassifier.featureCount(layers)], 0, 0, 0, 1, true,
                options.candidates());
        FlopCounter flops = model.flops();
        List<PolicyResult> results = new ArrayList<>();
        List<ExitClassifier> fitted = new ArrayList<>();
        Fit last = shared;
        for (int first = 0; first + 1 < layers; first++) {
            for (int every = 1; every <= 2; every++) {
                if ((options.minLayer() >= 0 && first != options.minLayer())
                        || (options.every() > 0 && every != options.every())
                        || (options.every() <= 0 && every == 2 && first + 2 >= layers - 1)) {
                    continue;
                }
                // one SVM per policy costs a fit each: unless forced, only every block, from a quarter of the depth
                if (shared == null && ((options.every() <= 0 && every == 2)
                        || (options.minLayer() < 0 && first < (layers - 1) / 4))) {
                    continue;
                }
                ExitClassifier policy = base.withPolicy(first, every);
                Fit fit = shared != null ? shared : fit(policy, train, options);
                last = fit;
                ExitClassifier c = policy.withWeights(fit.weights(), fit.bias());
                PolicyResult r = choose(c, held, options.targetAgreement(), flops);
                results.add(r);
                fitted.add(c);
                log.accept(String.format(Locale.ROOT, "probe from block %d every %d: threshold %.4f, held-out agreement "
                                + "%.4f, %.2f blocks run, %.1f%% layer computations saved, %.1f%% FLOPs saved net of "
                                + "probes and k/v propagation%s", r.minLayer(), r.every(), r.threshold(), r.agreement(),
                        r.meanLayersRun(), 100 * r.layersSaved(), 100 * r.flopsSaved(),
                        shared == null ? String.format(Locale.ROOT, " (svm training accuracy %.3f)", fit.accuracy()) : ""));
            }
        }
        if (results.isEmpty()) {
            throw new IllegalArgumentException("no probe policy left: --min-layer must be in 0.." + (layers - 2));
        }
        // the three best policies by FLOPs get per-block thresholds, chosen greedily on the held-out documents
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < results.size(); i++) {
            order.add(i);
        }
        order.sort((a, b) -> Double.compare(results.get(b).flopsSaved(), results.get(a).flopsSaved()));
        int bestAt = order.get(0);
        PolicyResult best = results.get(bestAt);
        ExitClassifier chosen = fitted.get(bestAt).withThreshold(best.threshold());
        if (options.perBlockThresholds()) {
            for (int i : order.subList(0, Math.min(3, order.size()))) {
                ExitClassifier c = fitted.get(i).withThreshold(results.get(i).threshold());
                Refined r = perBlockThresholds(c, held, options.targetAgreement(), flops);
                log.accept(String.format(Locale.ROOT, "per-block thresholds, probing from block %d every %d: held-out "
                                + "agreement %.4f, %.1f%% layer computations saved, %.1f%% FLOPs saved net (one threshold: "
                                + "%.1f%%, %.1f%%)", c.minLayer(), c.every(), r.result().agreement(),
                        100 * r.result().layersSaved(), 100 * r.result().flopsSaved(), 100 * results.get(i).layersSaved(),
                        100 * results.get(i).flopsSaved()));
                if (r.result().flopsSaved() > best.flopsSaved()) {
                    best = r.result();
                    chosen = r.classifier();
                }
            }
        }
        String training = String.format(Locale.ROOT, "liblinear L2R_L2LOSS_SVC_DUAL C=%.3g, %s features%s, on %d "
                        + "positions of %d documents (%d held out); target agreement %.4f; chose probing from block %d "
                        + "every %d (held-out: agreement %.4f, %.1f%% layers saved, %.1f%% FLOPs saved net)",
                options.c(), options.features().name().toLowerCase(Locale.ROOT),
                options.candidates() > 0 ? ", later probes over " + options.candidates() + " candidates" : "",
                train.size(), trainDocs.size(), heldDocs.size(), options.targetAgreement(),
                best.minLayer(), best.every(), best.agreement(), 100 * best.layersSaved(), 100 * best.flopsSaved());
        return new Result(new ExitArtifact(model.fingerprint(), modelDescription, chosen, options.targetAgreement(),
                training), results, last.examples(), last.positives(), last.accuracy());
    }

    /**
     * The lowest threshold (most exits) such that it and every higher candidate reach the target agreement in
     * simulation on {@code cal}; +infinity (never exit) when none does.
     */
    static PolicyResult choose(ExitClassifier policy, Calibration cal, double target, FlopCounter flops) {
        int layers = cal.layers;
        double[][] perToken = scores(policy, cal);
        double[] all = Arrays.stream(perToken).flatMapToDouble(Arrays::stream).filter(d -> !Double.isNaN(d)).toArray();
        Arrays.sort(all);
        // candidate thresholds: up to 400 quantiles of the probe scores, scanned from high (few exits) to low
        int candidates = Math.min(400, all.length);
        double bestT = Double.POSITIVE_INFINITY;
        double[] bestSim = simulate(policy.withThreshold(bestT), perToken, cal, flops);
        for (int i = candidates - 1; i >= 0; i--) {
            double t = all[(int) ((long) i * (all.length - 1) / Math.max(1, candidates - 1))];
            double[] sim = simulate(policy.withThreshold(t), perToken, cal, flops);
            if (sim[0] < target) {
                break;
            }
            bestT = t;
            bestSim = sim;
        }
        return new PolicyResult(policy.minLayer(), policy.every(), bestT, bestSim[0], bestSim[1],
                1 - bestSim[1] / layers, bestSim[2]);
    }

    record Refined(ExitClassifier classifier, PolicyResult result) {}

    /**
     * Per-block thresholds for {@code c}'s policy, greedily: starting from no exits, repeatedly lowers the threshold
     * of the block whose next step (one of 24 quantiles of its probe scores) gains the most FLOPs per unit of
     * agreement lost, while the held-out agreement stays at the target. The offsets are folded into the block
     * indicator weights, so the artifact keeps one threshold.
     */
    static Refined perBlockThresholds(ExitClassifier c, Calibration cal, double target, FlopCounter flops) {
        int layers = cal.layers;
        double[][] scores = scores(c, cal);
        int levels = 24;
        double[][] grid = new double[layers - 1][];
        for (int l = 0; l + 1 < layers; l++) {
            int col = l;
            double[] v = Arrays.stream(scores).mapToDouble(r -> r[col]).filter(d -> !Double.isNaN(d)).sorted().toArray();
            grid[l] = new double[levels + 1];
            grid[l][0] = Double.POSITIVE_INFINITY;
            for (int q = 1; q <= levels; q++) {
                grid[l][q] = v.length == 0 ? Double.POSITIVE_INFINITY : v[(int) ((long) (v.length - 1) * (levels - q) / levels)];
            }
        }
        int[] at = new int[layers - 1];
        double[] t = new double[layers - 1];
        Arrays.fill(t, Double.POSITIVE_INFINITY);
        double[] now = simulate(c, scores, cal, flops, t);
        while (true) {
            int pick = -1;
            double bestRatio = Double.NEGATIVE_INFINITY;
            double[] bestSim = null;
            for (int l = 0; l + 1 < layers; l++) {
                if (!c.probes(l) || at[l] >= levels) {
                    continue;
                }
                double keep = t[l];
                t[l] = grid[l][at[l] + 1];
                double[] sim = simulate(c, scores, cal, flops, t);
                t[l] = keep;
                if (sim[0] < target) {
                    continue;
                }
                double gain = sim[2] - now[2];
                double loss = Math.max(1e-9, now[0] - sim[0]);
                double ratio = gain / loss;
                if (ratio > bestRatio) {
                    bestRatio = ratio;
                    pick = l;
                    bestSim = sim;
                }
            }
            if (pick < 0 || bestRatio <= 0) {
                break;
            }
            at[pick]++;
            t[pick] = grid[pick][at[pick]];
            now = bestSim;
        }
        // fold: score + w_l > T_l  <=>  score + (w_l - T_l + T) > T, with T the classifier's own threshold
        double base = Double.isInfinite(c.threshold()) ? 0 : c.threshold();
        float[] w = c.weights().clone();
        double threshold = base;
        for (int l = 0; l + 1 < layers; l++) {
            if (c.probes(l)) {
                double tl = Double.isInfinite(t[l]) ? 1e30 : t[l];
                w[ExitClassifier.BLOCKS + l] = (float) (w[ExitClassifier.BLOCKS + l] - tl + base);
            }
        }
        ExitClassifier out = c.withWeights(w, c.bias()).withThreshold(threshold);
        double[] check = simulate(out, cal, flops);
        return new Refined(out, new PolicyResult(c.minLayer(), c.every(), threshold, check[0], check[1],
                1 - check[1] / layers, check[2]));
    }

    /** {agreement, mean blocks run, FLOPs saved net of probes and key/value propagation}, token by token. */
    static double[] simulate(ExitClassifier c, Calibration cal, FlopCounter flops) {
        return simulate(c, scores(c, cal), cal, flops);
    }

    /** Decision values per token and block (NaN where not probed): they do not depend on the threshold. */
    static double[][] scores(ExitClassifier c, Calibration cal) {
        int layers = cal.layers;
        double[][] s = new double[cal.size()][layers - 1];
        for (int t = 0; t < cal.size(); t++) {
            double[] st = s[t];
            Arrays.fill(st, Double.NaN);
            probes(c, cal, t, (l, f) -> st[l] = c.score(f, l));
        }
        return s;
    }

    static double[] simulate(ExitClassifier c, double[][] scores, Calibration cal, FlopCounter flops) {
        double[] t = new double[cal.layers - 1];
        Arrays.fill(t, c.threshold());
        return simulate(c, scores, cal, flops, t);
    }

    /** The same with a threshold per block ({@code thresholds[l]}). */
    static double[] simulate(ExitClassifier c, double[][] scores, Calibration cal, FlopCounter flops, double[] thresholds) {
        int layers = cal.layers;
        long agree = 0;
        double blocks = 0;
        double dense = 0;
        double spent = 0;
        int vocab = flops.vocabSize();
        long sat = c.wantsSaturation() ? flops.saturation() : 0;
        long fullProbe = flops.head() + c.decisionFlops(vocab) + sat;
        int k = Math.min(c.candidates(), vocab);
        long cheapProbe = k > 0 ? flops.candidateHead(k) + c.decisionFlops(k) + sat : fullProbe;
        double[] kvAfter = new double[layers];
        for (int l = 0; l < layers; l++) {
            kvAfter[l] = c.propagateKv() ? flops.kvProjectionsAfter(l) : 0;
        }
        for (int t = 0; t < cal.size(); t++) {
            int p = cal.position.get(t);
            int exit = layers - 1;
            int probes = 0;
            double probeFlops = 0;
            double[] st = scores[t];
            for (int l = 0; l + 1 < layers; l++) {
                if (!Double.isNaN(st[l])) {
                    probeFlops += probes == 0 ? fullProbe : cheapProbe;
                    probes++;
                    if (st[l] > thresholds[l]) {
                        exit = l;
                        break;
                    }
                }
            }
            boolean exited = exit < layers - 1;
            boolean byCandidates = exited && k > 0 && probes > 1;
            agree += !exited || cal.settled.get(t)[exit] ? 1 : 0;
            blocks += exit + 1;
            dense += flops.denseAllBlocks(p) + (double) flops.denseHead();
            spent += flops.blocksThrough(exit, p) + kvAfter[exit] + probeFlops
                    + (exited && !byCandidates ? 0 : flops.head());
        }
        int n = Math.max(1, cal.size());
        return new double[] {agree / (double) n, blocks / n, 1 - spent / dense};
    }
}
