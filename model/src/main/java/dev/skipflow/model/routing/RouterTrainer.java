package dev.skipflow.model.routing;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import dev.skipflow.model.decoder.AttentionStats;
import dev.skipflow.model.decoder.BlockHook;
import dev.skipflow.model.decoder.Forward;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.IntConsumer;

/**
 * Trains FTP's router with DJL autograd through the frozen model. Per block, the router scores each token
 * from {@link RouterFeatures}. The forward pass uses the same hard decisions as inference (each block keeps its
 * schedule's share of highest-scoring tokens, skipped tokens leave no key/value there); gradients reach the
 * scores through a relaxation of that top-k, sigmoid((score - threshold) / temperature), straight-through.
 * The threshold sits between the last kept and the first skipped score and the temperature is the scores'
 * spread, both constants of the step, so the gradient says which tokens should swap sides. Three losses, as
 * published: a guide loss (weight decaying to 0 over a chosen share of training) toward the static router's
 * choices or, because under DESIGN §6 every position's own prediction counts, toward the token-blocks a skip
 * oracle measured as cheapest; a one-sided sparsity loss sum_l max(target_l - actual_l, 0) on the router's own
 * decisions (score below 0 = skip; it keeps the score's sign meaningful); and distillation (KL) against the
 * dense model's output. Terms with weight 0 stay out of the graph. Both passes are the decoder's one
 * {@link Forward}; the router rides in it as a {@link BlockHook}; the weights step with DJL's Adam.
 *
 * <p>Each step perturbs the schedule (moving sparsity between blocks, mean unchanged) so the shared MLP sees
 * each block at several sparsities, as the schedule search that follows will ask of it.
 */
public final class RouterTrainer {

    /**
     * Training settings.
     *
     * @param docsPerStep documents whose losses are summed per optimizer step
     * @param scheduleJitter the most sparsity moved between blocks when perturbing the schedule per step (0 = none)
     * @param promptOnly train for prompt routing (FTP's own setting, {@code --route prompt}): each document's first
     *     half is the prompt, routed; the rest runs every block, as decoding tokens would, and the distillation loss
     *     counts only the predictions served (the last prompt position's and the continuation's)
     */
    public record Options(SparsitySchedule schedule, int steps, float learningRate, float sparsityWeight,
            float distillationWeight, int docsPerStep, double scheduleJitter, double guideFraction, long seed,
            boolean promptOnly, boolean perToken, double mixedGuide) {
        public Options(SparsitySchedule schedule, int steps, float learningRate, float sparsityWeight,
                float distillationWeight, int docsPerStep, double scheduleJitter, double guideFraction, long seed) {
            this(schedule, steps, learningRate, sparsityWeight, distillationWeight, docsPerStep, scheduleJitter,
                    guideFraction, seed, false, false, Double.NaN);
        }

        public Options(SparsitySchedule schedule, int steps, float learningRate, float sparsityWeight,
                float distillationWeight, int docsPerStep, double scheduleJitter, double guideFraction, long seed,
                boolean promptOnly, boolean perToken) {
            this(schedule, steps, learningRate, sparsityWeight, distillationWeight, docsPerStep, scheduleJitter,
                    guideFraction, seed, promptOnly, perToken, Double.NaN);
        }

        public Options(SparsitySchedule schedule, int steps, float learningRate, float sparsityWeight,
                float distillationWeight, int docsPerStep, double scheduleJitter, double guideFraction, long seed,
                boolean promptOnly) {
            this(schedule, steps, learningRate, sparsityWeight, distillationWeight, docsPerStep, scheduleJitter,
                    guideFraction, seed, promptOnly, false, Double.NaN);
        }

        /** Where the prompt of a training document of {@code n} tokens ends: the serving protocol's split. */
        int promptLength(int n) {
            return promptOnly ? Math.min(n, Math.max(16, n / 2)) : n;
        }
    }

    private RouterTrainer() {}

    /**
     * @param damage per document, {@link dev.skipflow.model.eval.SkipOracle#damage}: the guide loss then leads
     *     toward the token-blocks whose skipping costs least instead of toward the static router; null = static
     */
    public static RouterArtifact train(LlamaModel model, String modelDescription, List<int[]> docs, List<float[][]> damage,
            Options o, IntConsumer progress) {
        int layers = model.spec().nLayers();
        int hidden = RouterArtifact.HIDDEN;
        try (NDManager params = model.newStepManager()) {
            SplittableRandom rnd = new SplittableRandom(o.seed());
            NDArray[] p = {
                params.create(normal(rnd, RouterFeatures.COUNT * hidden, 0.5f), new Shape(RouterFeatures.COUNT, hidden)),
                params.zeros(new Shape(hidden)),
                params.create(normal(rnd, hidden, 0.1f), new Shape(hidden, 1)),
                params.zeros(new Shape(1))};
            for (NDArray a : p) {
                a.setRequiresGradient(true);
            }
            Optimizer adam = Optimizer.adam().optLearningRateTracker(Tracker.fixed(o.learningRate())).build();
            double lastDistill = 0;
            int skippedSteps = 0;
            for (int step = 1; step <= o.steps(); step++) {
                float guideWeight = o.guideFraction() <= 0 ? 0f
                        : (float) Math.max(0, 1 - step / (o.guideFraction() * o.steps()));
                double[] s = o.schedule().perLayer().clone();
                if (o.scheduleJitter() > 0) {
                    for (int k = 0; k < layers; k++) {
                        ScheduleSearch.mutate(s, rnd, o.scheduleJitter());
                    }
                }
                SparsitySchedule schedule = o.perToken() ? new SparsitySchedule(s).firstBlockDense()
                        : new SparsitySchedule(s);
                double distillSum = 0;
                // one backward per document, gradients accumulating on the router's weights, each document's
                // graph freed before the next is built. (One backward over the sum of several documents' losses
                // gave NaN gradients on stories-deep16 where each document's own backward was finite.)
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    for (int d = 0; d < o.docsPerStep(); d++) {
                        int pick = rnd.nextInt(docs.size());
                        int[] doc = docs.get(pick);
                        try (NDManager docManager = model.newStepManager();
                                KvCache cache = new KvCache(model, 1, doc.length)) {
                            Losses l = documentLosses(model, docManager, p, doc, o.promptLength(doc.length), schedule,
                                    damage == null ? null : damage.get(pick), cache, o.perToken(), o.mixedGuide());
                            distillSum += l.distill.getFloat();
                            // a term with weight 0 stays out of the graph: 0 x a non-finite gradient would still be NaN
                            NDArray docLoss = l.sparsity.mul(o.sparsityWeight());
                            if (o.distillationWeight() > 0) {
                                docLoss = docLoss.add(l.distill.mul(o.distillationWeight()));
                            }
                            if (guideWeight > 0) {
                                docLoss = docLoss.add(l.guide.mul(guideWeight / layers));
                            }
                            gc.backward(docLoss.div(o.docsPerStep()));
                        }
                    }
                }
                if (!step(adam, p)) {
                    skippedSteps++;
                }
                lastDistill = distillSum / o.docsPerStep();
                progress.accept(step);
            }
            float[] w1 = p[0].toFloatArray();
            float[] b1 = p[1].toFloatArray();
            float[] w2 = p[2].toFloatArray();
            float b2 = p[3].toFloatArray()[0];
            String info = String.format("%d steps x %d documents from %d, lr %s, sparsity weight %s, schedule jitter %s, "
                            + "last distillation loss %.4f, %d non-finite steps dropped; guide (%s, over %.0f%% of steps), "
                            + "sparsity and distillation (weight %s) losses; hard top-k gates, straight-through sigmoid relaxation", o.steps(), o.docsPerStep(), docs.size(),
                    o.learningRate(), o.sparsityWeight(), o.scheduleJitter(), lastDistill, skippedSteps,
                    damage != null ? "skip oracle" : Double.isNaN(o.mixedGuide()) ? "static router"
                            : String.format(java.util.Locale.ROOT, "mixed-rank router, recent share %.2f", o.mixedGuide()),
                    o.guideFraction() * 100, o.distillationWeight())
                    + (o.perToken() ? "; per-token decisions (block 0 dense, tokens ranked from its attention)" : "");
            return new RouterArtifact(model.fingerprint(), modelDescription,
                    o.perToken() ? o.schedule().firstBlockDense() : o.schedule(), w1, b1, w2, b2, info, null, "all", null,
                    o.perToken() ? RouterArtifact.PER_TOKEN : RouterArtifact.PER_BLOCK);
        }
    }

    private record Losses(NDArray distill, NDArray sparsity, NDArray guide) {}

    /**
     * One document's routed forward with gradients to the router, against its dense forward; the first
     * {@code prompt} tokens are routed and the predictions from position {@code prompt - 1} on are scored (prompt =
     * the whole document: every token routed, every prediction scored).
     */
    private static Losses documentLosses(LlamaModel model, NDManager manager, NDArray[] p, int[] doc, int prompt,
            SparsitySchedule schedule, float[][] damage, KvCache cache, boolean perToken, double mixedGuide) {
        int n = doc.length;
        NDArray denseLogProbs;
        try (KvCache denseCache = new KvCache(model, 1, n)) {
            denseLogProbs = Forward.run(model, denseCache, manager, true, rows(doc), Forward.Plan.DENSE).logits()
                    .logSoftmax(-1).stopGradient();
        }
        GatedPass pass = new GatedPass(manager, p, schedule, damage, n, prompt, perToken, mixedGuide);
        NDArray logProbs = Forward.run(model, cache, manager, true, rows(doc), Forward.Plan.hooked(pass)).logits()
                .logSoftmax(-1);
        int from = prompt == n ? 0 : prompt - 1;
        if (from > 0) {
            NDIndex served = new NDIndex(from + ":");
            denseLogProbs = denseLogProbs.get(served);
            logProbs = logProbs.get(served);
        }
        NDArray distill = denseLogProbs.exp().mul(denseLogProbs.sub(logProbs)).sum().div(n - from);
        return new Losses(distill, pass.sparsityLoss, pass.guideLoss);
    }

    /** Every position of a document, for a pass whose every row is scored. */
    private static List<Forward.Row> rows(int[] doc) {
        return Forward.prompt(0, 0, doc, null, null, false, doc.length, 0);
    }

    /**
     * The router inside the one forward pass, for training: before each block it scores the tokens, takes the
     * schedule's hard top-k (skipped tokens' keys hidden from the others) and a straight-through relaxation of it;
     * after the block, each token's state is its input plus the gated block update. Accumulates the guide and
     * sparsity losses on the way.
     */
    private static final class GatedPass implements BlockHook {
        private final NDManager manager;
        private final NDArray[] p;
        private final SparsitySchedule schedule;
        private final float[][] damage;
        private final StaticRouter guide;
        private final int n;
        private final int prompt; // rows [0, prompt) are routed; the rest run every block
        private final boolean perToken; // importance from block 0 only, as LearnedRouter serves per-token artifacts
        private final double mixedGuide; // recent share of MixedRankRouter as the guide; NaN = the static router
        private final int[] positions;
        private final int[] promptPositions;
        private float[] importance;
        private boolean[] skipped;
        private NDArray gate;
        NDArray guideLoss;
        NDArray sparsityLoss;

        GatedPass(NDManager manager, NDArray[] p, SparsitySchedule schedule, float[][] damage, int n, int prompt,
                boolean perToken, double mixedGuide) {
            this.manager = manager;
            this.perToken = perToken;
            this.mixedGuide = mixedGuide;
            this.p = p;
            this.schedule = schedule;
            this.damage = damage;
            this.guide = new StaticRouter(schedule);
            this.n = n;
            this.prompt = prompt;
            this.positions = TokenRouter.all(n);
            this.promptPositions = TokenRouter.all(prompt);
            this.guideLoss = manager.zeros(new Shape());
            this.sparsityLoss = manager.zeros(new Shape());
        }

        @Override
        public void before(int l, NDArray x) {
            double target = schedule.at(l);
            // the routed rows are the prompt's; with prompt = n, every row (the prefill protocol)
            int m = prompt;
            NDArray features = manager.create(RouterFeatures.of(promptPositions, importance, m, target),
                    new Shape(m, RouterFeatures.COUNT));
            NDArray score = features.matMul(p[0]).add(p[1]).maximum(0f).matMul(p[2]).add(p[3]).reshape(m, 1);
            float[] scores = score.toFloatArray();
            int keep = schedule.keep(l, m);
            skipped = new boolean[n];
            float[] hard = new float[m];
            java.util.Arrays.fill(hard, 1f);
            float threshold = Float.NEGATIVE_INFINITY;
            if (keep < m) {
                int[] kept = TokenRouter.topK(scores, keep, 0); // the first token (attention sink) stays, as at inference
                java.util.Arrays.fill(hard, 0f);
                float lowestKept = Float.POSITIVE_INFINITY;
                for (int r : kept) {
                    hard[r] = 1f;
                    lowestKept = Math.min(lowestKept, scores[r]);
                }
                float highestSkipped = Float.NEGATIVE_INFINITY;
                for (int i = 0; i < m; i++) {
                    skipped[i] = hard[i] == 0f;
                    if (skipped[i]) {
                        highestSkipped = Math.max(highestSkipped, scores[i]);
                    }
                }
                threshold = (lowestKept + highestSkipped) / 2;
            }
            NDArray hardGate = manager.create(hard, new Shape(m, 1));
            NDArray promptGate = hardGate;
            if (keep < m) {
                float temperature = Math.max(1e-3f, spread(scores));
                NDArray soft = ai.djl.nn.Activation.sigmoid(score.sub(threshold).div(temperature));
                promptGate = hardGate.add(soft.sub(soft.stopGradient()));
            }
            gate = m == n ? promptGate : promptGate.concat(manager.ones(new Shape(n - m, 1)), 0);
            // the router's own decisions (keep when score > 0), straight-through, for the one-sided sparsity loss
            NDArray own = ai.djl.nn.Activation.sigmoid(score);
            NDArray ownKeep = own.gt(0.5f).toType(DataType.FLOAT32, false).add(own.sub(own.stopGradient()));
            sparsityLoss = sparsityLoss.add(ownKeep.mean().neg().add(1f).neg().add((float) target).maximum(0f));
            float[] labels = new float[m];
            int[] guideKeeps = damage != null
                    ? TokenRouter.topK(java.util.Arrays.copyOf(damage[l], m), keep, -1) // keep where skipping costs most
                    : Double.isNaN(mixedGuide) ? guide.keepPrefill(l, promptPositions)
                    : importance == null || keep >= m ? TokenRouter.all(m)
                    : MixedRankRouter.keepRows(promptPositions, importance, keep, mixedGuide);
            for (int r : guideKeeps) {
                labels[r] = 1f;
            }
            NDArray y = manager.create(labels, new Shape(m, 1));
            NDArray eps = own.clip(1e-6f, 1 - 1e-6f);
            guideLoss = guideLoss.add(y.mul(eps.log()).add(y.neg().add(1f).mul(eps.neg().add(1f).log())).mean().neg());
        }

        @Override
        public boolean[] hiddenKeys(int layer) {
            return skipped;
        }

        @Override
        public NDArray after(int layer, NDArray input, NDArray output, AttentionStats attention) {
            if (!perToken || importance == null) {
                importance = prompt == n ? RouterFeatures.importance(attention.receivedByKey(), positions, attention.heads())
                        : promptImportance(attention);
            }
            return input.add(output.sub(input).mul(gate));
        }

        /** What a prefill of the prompt alone would measure: attention the prompt's rows paid to its keys. */
        private float[] promptImportance(AttentionStats attention) {
            int keys = attention.keys();
            float[] byRow = attention.byQueryRow(); // [rows, keys], summed over heads
            float[] received = new float[prompt];
            for (int r = 0; r < prompt; r++) {
                for (int t = 0; t <= r && t < prompt; t++) {
                    received[t] += byRow[r * keys + t];
                }
            }
            return RouterFeatures.importance(received, promptPositions, attention.heads());
        }
    }

    /** Standard deviation. */
    private static float spread(float[] a) {
        double mean = 0;
        for (float f : a) {
            mean += f;
        }
        mean /= a.length;
        double var = 0;
        for (float f : a) {
            var += (f - mean) * (f - mean);
        }
        return (float) Math.sqrt(var / a.length);
    }

    /**
     * DJL's Adam (beta1 0.9, beta2 0.999) after clipping the gradient's global norm to 1; grads are consumed and
     * zeroed. A step whose gradient is not finite (a rare overflow through the frozen model) is dropped rather
     * than poisoning the weights; returns whether the step was taken.
     */
    private static boolean step(Optimizer adam, NDArray[] p) {
        NDArray[] grads = new NDArray[p.length];
        double norm = 0;
        for (int i = 0; i < p.length; i++) {
            grads[i] = p[i].getGradient();
            for (float g : grads[i].toFloatArray()) {
                norm += (double) g * g;
            }
        }
        norm = Math.sqrt(norm);
        boolean finite = Double.isFinite(norm);
        float scale = norm > 1 ? (float) (1 / norm) : 1f;
        for (int i = 0; i < p.length; i++) {
            if (finite) {
                try (NDArray g = grads[i].mul(scale)) {
                    adam.update("router." + i, p[i], g);
                }
            }
            grads[i].muli(0f);
            grads[i].close();
        }
        if (!finite) {
            // NaN x 0 is still NaN: without fresh gradient buffers one dropped step would poison every later one
            for (int i = 0; i < p.length; i++) {
                NDArray fresh = p[i].getManager().create(p[i].toFloatArray(), p[i].getShape());
                fresh.setRequiresGradient(true);
                p[i].close();
                p[i] = fresh;
            }
        }
        return finite;
    }

    private static float[] normal(SplittableRandom rnd, int n, float std) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (rnd.nextGaussian() * std);
        }
        return a;
    }
}
