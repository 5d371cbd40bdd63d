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
 *       the last block's (AdaInfer's positive example), else -1;</li>
 *   <li>a linear SVM (liblinear, L2-regularized L2-loss, dual) on the training documents, classes weighted
 *       (balanced by default: positives are rare in early blocks);</li>
 *   <li>on held-out documents, for every probe policy (first probed block, every k), the lowest decision
 *       threshold whose simulated agreement (exit at the first accepted probe; the top-1 there against the
 *       last block's) meets the target, and the FLOPs that saves net of probes and key/value propagation;
 *       the policy saving most is kept, unless one is forced.</li>
 * </ol>
 * The simulation uses dense hidden states; the real pass (exited tokens' keys/values propagated from their exit
 * state) is what {@code eval --exit} measures.
 */
public final class ExitTrainer {

    /**
     * @param positiveWeight liblinear class weight of positives relative to negatives; 0 = balanced
     * @param minLayer forced first probed block, -1 = choose by measurement
     * @param every forced probe stride, 0 = choose by measurement (1 or 2)
     */
    public record Options(double targetAgreement, double heldOutFraction, double c, double positiveWeight, int minLayer,
            int every) {
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
        }

        /** train-exit's defaults: 99% agreement on a quarter held out, C = 1, balanced, policy by measurement. */
        public static Options defaults() {
            return new Options(0.99, 0.25, 1, 0, -1, 0);
        }
    }

    /** One policy's simulated result on held-out data at its chosen threshold. */
    public record PolicyResult(int minLayer, int every, double threshold, double agreement, double meanLayersRun,
            double layersSaved, double flopsSaved) {}

    public record Result(ExitArtifact artifact, List<PolicyResult> policies, long trainExamples, long positives,
            double trainAccuracy) {}

    /** Per position of the calibration documents: features after each probe-able block, and the labels. */
    static final class Calibration {
        final int layers;
        final List<float[]> topProb = new ArrayList<>(); // per token [layers - 1]
        final List<float[]> gap = new ArrayList<>();
        final List<boolean[]> settled = new ArrayList<>(); // top-1 equals the last block's
        final List<Integer> position = new ArrayList<>();

        Calibration(int layers) {
            this.layers = layers;
        }

        int size() {
            return topProb.size();
        }
    }

    private ExitTrainer() {}

    static Calibration collect(LlamaModel model, List<int[]> docs, IntConsumer progress) {
        int layers = model.spec().nLayers();
        int v = model.spec().vocabSize();
        Calibration cal = new Calibration(layers);
        int maxLen = docs.stream().mapToInt(d -> d.length).max().orElse(1);
        try (KvCache cache = new KvCache(model, 1, Math.min(maxLen, model.spec().seqLen()))) {
            int done = 0;
            for (int[] doc : docs) {
                int n = doc.length;
                float[][] logits = new float[layers][];
                try (NDManager step = model.newStepManager()) {
                    Forward.run(model, cache, step, true, Forward.prompt(0, 0, doc, null, null, false, n, n),
                            Forward.Plan.hooked(new BlockHook() {
                                @Override
                                public NDArray after(int l, NDArray x, NDArray y, AttentionStats attention) {
                                    logits[l] = model.logits(y).toFloatArray(); // a probe after every block
                                    return y;
                                }
                            }));
                }
                for (int p = 0; p < n; p++) {
                    int last = ExitFeatures.of(logits[layers - 1], p * v, v).top1();
                    float[] tp = new float[layers - 1];
                    float[] g = new float[layers - 1];
                    boolean[] s = new boolean[layers - 1];
                    for (int l = 0; l + 1 < layers; l++) {
                        ExitFeatures f = ExitFeatures.of(logits[l], p * v, v);
                        tp[l] = f.topProb();
                        g[l] = f.gap();
                        s[l] = f.top1() == last;
                    }
                    cal.topProb.add(tp);
                    cal.gap.add(g);
                    cal.settled.add(s);
                    cal.position.add(p);
                }
                progress.accept(++done);
            }
        }
        return cal;
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
        Calibration train = collect(model, trainDocs, progress);
        Calibration held = collect(model, heldDocs, i -> progress.accept(trainDocs.size() + i));

        int features = ExitClassifier.featureCount(layers);
        int examples = train.size() * (layers - 1);
        Problem problem = new Problem();
        problem.l = examples;
        problem.n = features + 1;
        problem.bias = 1;
        problem.x = new Feature[examples][];
        problem.y = new double[examples];
        long positives = 0;
        int at = 0;
        for (int t = 0; t < train.size(); t++) {
            for (int l = 0; l + 1 < layers; l++) {
                problem.x[at] = new Feature[] {new FeatureNode(1, train.topProb.get(t)[l]),
                        new FeatureNode(2, train.gap.get(t)[l]), new FeatureNode(3 + l, 1.0),
                        new FeatureNode(features + 1, 1.0)};
                boolean pos = train.settled.get(t)[l];
                problem.y[at] = pos ? 1 : -1;
                positives += pos ? 1 : 0;
                at++;
            }
        }
        if (positives == 0 || positives == examples) {
            throw new IllegalArgumentException("calibration text gives only one class (" + positives + " positives of "
                    + examples + "); use more documents");
        }
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
        ExitClassifier base = new ExitClassifier(layers, weights, bias, 0, 0, 1);
        long correct = 0;
        for (int i = 0; i < examples; i++) {
            int l = problem.x[i][2].getIndex() - 3;
            double s = base.score(new ExitFeatures((float) problem.x[i][0].getValue(), (float) problem.x[i][1].getValue(), 0), l);
            correct += (s > 0) == (problem.y[i] > 0) ? 1 : 0;
        }
        double trainAccuracy = correct / (double) examples;
        log.accept(String.format(Locale.ROOT, "svm on %d token-blocks (%.1f%% positive, positive weight %.2f): "
                + "training accuracy %.3f", examples, 100.0 * positives / examples, wPos, trainAccuracy));

        FlopCounter flops = model.flops();
        List<PolicyResult> results = new ArrayList<>();
        for (int first = 0; first + 1 < layers; first++) {
            for (int every = 1; every <= 2; every++) {
                if ((options.minLayer() >= 0 && first != options.minLayer())
                        || (options.every() > 0 && every != options.every())
                        || (options.every() <= 0 && every == 2 && first + 2 >= layers - 1)) {
                    continue;
                }
                PolicyResult r = choose(base.withPolicy(first, every), held, options.targetAgreement(), flops);
                results.add(r);
                log.accept(String.format(Locale.ROOT, "probe from block %d every %d: threshold %.4f, held-out agreement "
                                + "%.4f, %.2f blocks run, %.1f%% layer computations saved, %.1f%% FLOPs saved net of "
                                + "probes and k/v propagation", r.minLayer(), r.every(), r.threshold(), r.agreement(),
                        r.meanLayersRun(), 100 * r.layersSaved(), 100 * r.flopsSaved()));
            }
        }
        if (results.isEmpty()) {
            throw new IllegalArgumentException("no probe policy left: --min-layer must be in 0.." + (layers - 2));
        }
        PolicyResult best = results.stream().max((a, b) -> Double.compare(a.flopsSaved(), b.flopsSaved())).orElseThrow();
        ExitClassifier chosen = base.withPolicy(best.minLayer(), best.every()).withThreshold(best.threshold());
        String training = String.format(Locale.ROOT, "liblinear L2R_L2LOSS_SVC_DUAL C=%.3g, positive weight %.3g, on %d "
                        + "positions of %d documents (%d held out); target agreement %.4f; chose probing from block %d "
                        + "every %d (held-out: agreement %.4f, %.1f%% layers saved, %.1f%% FLOPs saved net)",
                options.c(), wPos, train.size(), trainDocs.size(), heldDocs.size(), options.targetAgreement(),
                best.minLayer(), best.every(), best.agreement(), 100 * best.layersSaved(), 100 * best.flopsSaved());
        return new Result(new ExitArtifact(model.fingerprint(), modelDescription, chosen, options.targetAgreement(),
                training), results, examples, positives, trainAccuracy);
    }

    /**
     * The lowest threshold (most exits) such that it and every higher candidate reach the target agreement in
     * simulation on {@code cal}; +infinity (never exit) when none does.
     */
    static PolicyResult choose(ExitClassifier policy, Calibration cal, double target, FlopCounter flops) {
        int layers = cal.layers;
        double[] scores = new double[cal.size() * (layers - 1)];
        int k = 0;
        for (int t = 0; t < cal.size(); t++) {
            for (int l = 0; l + 1 < layers; l++) {
                if (policy.probes(l)) {
                    scores[k++] = policy.score(new ExitFeatures(cal.topProb.get(t)[l], cal.gap.get(t)[l], 0), l);
                }
            }
        }
        double[] sorted = Arrays.copyOf(scores, k);
        Arrays.sort(sorted);
        // candidate thresholds: up to 400 quantiles of the probe scores, scanned from high (few exits) to low
        int candidates = Math.min(400, sorted.length);
        double[][] perToken = scores(policy, cal);
        double bestT = Double.POSITIVE_INFINITY;
        double[] bestSim = simulate(policy.withThreshold(bestT), perToken, cal, flops);
        for (int i = candidates - 1; i >= 0; i--) {
            double t = sorted[(int) ((long) i * (sorted.length - 1) / Math.max(1, candidates - 1))];
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

    /** {agreement, mean blocks run, FLOPs saved net of probes and key/value propagation}, token by token. */
    static double[] simulate(ExitClassifier c, Calibration cal, FlopCounter flops) {
        return simulate(c, scores(c, cal), cal, flops);
    }

    /** Decision values per token and block (NaN where not probed): they do not depend on the threshold. */
    static double[][] scores(ExitClassifier c, Calibration cal) {
        int layers = cal.layers;
        double[][] s = new double[cal.size()][layers - 1];
        for (int t = 0; t < cal.size(); t++) {
            for (int l = 0; l + 1 < layers; l++) {
                s[t][l] = c.probes(l) ? c.score(new ExitFeatures(cal.topProb.get(t)[l], cal.gap.get(t)[l], 0), l) : Double.NaN;
            }
        }
        return s;
    }

    static double[] simulate(ExitClassifier c, double[][] scores, Calibration cal, FlopCounter flops) {
        int layers = cal.layers;
        long agree = 0;
        double blocks = 0;
        double dense = 0;
        double spent = 0;
        double threshold = c.threshold();
        long probe = flops.head() + c.decisionFlops(flops.vocabSize());
        double[] kvAfter = new double[layers];
        for (int l = 0; l < layers; l++) {
            kvAfter[l] = c.propagateKv() ? flops.kvProjectionsAfter(l) : 0;
        }
        for (int t = 0; t < cal.size(); t++) {
            int p = cal.position.get(t);
            int exit = layers - 1;
            int probes = 0;
            double[] st = scores[t];
            for (int l = 0; l + 1 < layers; l++) {
                if (!Double.isNaN(st[l])) {
                    probes++;
                    if (st[l] > threshold) {
                        exit = l;
                        break;
                    }
                }
            }
            boolean exited = exit < layers - 1;
            agree += !exited || cal.settled.get(t)[exit] ? 1 : 0;
            blocks += exit + 1;
            dense += flops.denseAllBlocks(p) + (double) flops.denseHead();
            spent += flops.blocksThrough(exit, p) + kvAfter[exit] + probes * (double) probe + (exited ? 0 : flops.head());
        }
        int n = Math.max(1, cal.size());
        return new double[] {agree / (double) n, blocks / n, 1 - spent / dense};
    }
}
