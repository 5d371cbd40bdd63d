package dev.skipflow.model.routing;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.decoder.TokenBatch;
import java.util.ArrayList;
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
 * dense model's output. Terms with weight 0 stay out of the graph.
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
     */
    public record Options(SparsitySchedule schedule, int steps, float learningRate, float sparsityWeight,
            float distillationWeight, int docsPerStep, double scheduleJitter, double guideFraction, long seed) {}

    private RouterTrainer() {}

    /**
     * @param damage per document, {@link dev.skipflow.model.eval.SkipOracle#damage}: the guide loss then leads
     *     toward the token-blocks whose skipping costs least instead of toward the static router; null = static
     */
    public static RouterArtifact train(LlamaModel model, String modelDescription, List<int[]> docs, List<float[][]> damage,
            Options o, IntConsumer progress) {
        int layers = model.config().nLayers();
        int hidden = RouterArtifact.HIDDEN;
        try (NDManager params = model.newStepManager()) {
            SplittableRandom rnd = new SplittableRandom(o.seed());
            NDArray[] p = {
                params.create(normal(rnd, RouterFeatures.COUNT * hidden, 0.5f), new Shape(RouterFeatures.COUNT, hidden)),
                params.zeros(new Shape(hidden)),
                params.create(normal(rnd, hidden, 0.1f), new Shape(hidden, 1)),
                params.zeros(new Shape(1))};
            NDArray[] m = new NDArray[p.length];
            NDArray[] v = new NDArray[p.length];
            for (int i = 0; i < p.length; i++) {
                p[i].setRequiresGradient(true);
                m[i] = params.zeros(p[i].getShape());
                v[i] = params.zeros(p[i].getShape());
            }
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
                SparsitySchedule schedule = new SparsitySchedule(s);
                double distillSum = 0;
                List<KvCache> caches = new ArrayList<>(); // the graph reads them until backward is done
                try (NDManager stepManager = model.newStepManager();
                        GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    NDArray loss = stepManager.zeros(new Shape());
                    for (int d = 0; d < o.docsPerStep(); d++) {
                        int pick = rnd.nextInt(docs.size());
                        int[] doc = docs.get(pick);
                        KvCache cache = new KvCache(model, 1, doc.length);
                        caches.add(cache);
                        Losses l = documentLosses(model, stepManager, p, doc, schedule,
                                damage == null ? null : damage.get(pick), cache);
                        distillSum += l.distill.getFloat();
                        // a term with weight 0 stays out of the graph: 0 x a non-finite gradient would still be NaN
                        NDArray docLoss = l.sparsity.mul(o.sparsityWeight());
                        if (o.distillationWeight() > 0) {
                            docLoss = docLoss.add(l.distill.mul(o.distillationWeight()));
                        }
                        if (guideWeight > 0) {
                            docLoss = docLoss.add(l.guide.mul(guideWeight / layers));
                        }
                        loss = loss.add(docLoss);
                    }
                    gc.backward(loss.div(o.docsPerStep()));
                } finally {
                    caches.forEach(KvCache::close);
                }
                if (!adam(p, m, v, step, o.learningRate())) {
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
                    damage == null ? "static router" : "skip oracle", o.guideFraction() * 100, o.distillationWeight());
            return new RouterArtifact(model.fingerprint(), modelDescription, o.schedule(), w1, b1, w2, b2, info);
        }
    }

    private record Losses(NDArray distill, NDArray sparsity, NDArray guide) {}

    /** One document's routed forward with gradients to the router, against its dense forward. */
    private static Losses documentLosses(LlamaModel model, NDManager manager, NDArray[] p, int[] doc,
            SparsitySchedule schedule, float[][] damage, KvCache cache) {
        StaticRouter guide = new StaticRouter(schedule);
        int n = doc.length;
        int heads = model.config().nHeads();
        int[] positions = TokenRouter.all(n);
        NDArray denseLogProbs;
        try (KvCache denseCache = new KvCache(model, 1, n)) {
            denseLogProbs = forwardDense(model, manager, denseCache, doc).stopGradient();
        }
        {
            TokenBatch batch = TokenBatch.prefill(model, manager, 0, 0, n);
            NDArray x = model.embed(batch, doc);
            float[][] importance = {null};
            NDArray guideLoss = manager.zeros(new Shape());
            NDArray sparsityLoss = manager.zeros(new Shape());
            for (int l = 0; l < model.config().nLayers(); l++) {
                double target = schedule.at(l);
                NDArray features = manager.create(RouterFeatures.of(positions, importance[0], n, target),
                        new Shape(n, RouterFeatures.COUNT));
                NDArray score = features.matMul(p[0]).add(p[1]).maximum(0f).matMul(p[2]).add(p[3]).reshape(n, 1);
                float[] scores = score.toFloatArray();
                int keep = schedule.keep(l, n);
                boolean[] skipped = new boolean[n];
                float[] hard = new float[n];
                java.util.Arrays.fill(hard, 1f);
                float threshold = Float.NEGATIVE_INFINITY;
                if (keep < n) {
                    int[] kept = TokenRouter.topK(scores, keep, -1);
                    java.util.Arrays.fill(hard, 0f);
                    float lowestKept = Float.POSITIVE_INFINITY;
                    for (int r : kept) {
                        hard[r] = 1f;
                        lowestKept = Math.min(lowestKept, scores[r]);
                    }
                    float highestSkipped = Float.NEGATIVE_INFINITY;
                    for (int i = 0; i < n; i++) {
                        skipped[i] = hard[i] == 0f;
                        if (skipped[i]) {
                            highestSkipped = Math.max(highestSkipped, scores[i]);
                        }
                    }
                    threshold = (lowestKept + highestSkipped) / 2;
                }
                NDArray hardGate = manager.create(hard, new Shape(n, 1));
                NDArray gate = hardGate;
                if (keep < n) {
                    float temperature = Math.max(1e-3f, spread(scores));
                    NDArray soft = ai.djl.nn.Activation.sigmoid(score.sub(threshold).div(temperature));
                    gate = hardGate.add(soft.sub(soft.stopGradient()));
                }
                // the router's own decisions (keep when score > 0), straight-through, for the one-sided sparsity loss
                NDArray own = ai.djl.nn.Activation.sigmoid(score);
                NDArray ownKeep = own.gt(0.5f).toType(DataType.FLOAT32, false).add(own.sub(own.stopGradient()));
                sparsityLoss = sparsityLoss.add(ownKeep.mean().neg().add(1f).neg().add((float) target).maximum(0f));
                float[] labels = new float[n];
                int[] guideKeeps = damage == null ? guide.keepPrefill(l, positions)
                        : TokenRouter.topK(damage[l], keep, -1); // keep where skipping costs most
                for (int r : guideKeeps) {
                    labels[r] = 1f;
                }
                NDArray y = manager.create(labels, new Shape(n, 1));
                NDArray eps = own.clip(1e-6f, 1 - 1e-6f);
                guideLoss = guideLoss.add(y.mul(eps.log()).add(y.neg().add(1f).mul(eps.neg().add(1f).log())).mean().neg());
                NDArray out = model.block(l, x, batch.hidingKeys(skipped), cache,
                        probs -> importance[0] = RouterFeatures.importance(
                                probs.sum(new int[] {0, 1, 2}).toFloatArray(), positions, heads));
                x = x.add(out.sub(x).mul(gate));
            }
            NDArray logProbs = model.logits(x).logSoftmax(-1);
            NDArray distill = denseLogProbs.exp().mul(denseLogProbs.sub(logProbs)).sum().div(n);
            return new Losses(distill, sparsityLoss, guideLoss);
        }
    }

    private static NDArray forwardDense(LlamaModel model, NDManager manager, KvCache cache, int[] doc) {
        TokenBatch batch = TokenBatch.prefill(model, manager, 0, 0, doc.length);
        NDArray x = model.embed(batch, doc);
        for (int l = 0; l < model.config().nLayers(); l++) {
            x = model.block(l, x, batch, cache);
        }
        return model.logits(x).logSoftmax(-1);
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
     * Adam with the usual defaults (beta1 0.9, beta2 0.999) after clipping the gradient's global norm to 1;
     * grads are consumed and zeroed. A step whose gradient is not finite (a rare overflow through the frozen
     * model) is dropped rather than poisoning the weights; returns whether the step was taken.
     */
    private static boolean adam(NDArray[] p, NDArray[] m, NDArray[] v, int t, float lr) {
        float b1 = 0.9f;
        float b2 = 0.999f;
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
            NDArray g = grads[i].mul(scale);
            grads[i].muli(0f);
            grads[i].close();
            if (!finite) {
                g.close();
                continue;
            }
            m[i].muli(b1).addi(g.mul(1 - b1));
            v[i].muli(b2).addi(g.square().mul(1 - b2));
            NDArray mHat = m[i].div((float) (1 - Math.pow(b1, t)));
            NDArray vHat = v[i].div((float) (1 - Math.pow(b2, t)));
            p[i].subi(mHat.mul(lr).div(vHat.sqrt().add(1e-8f)));
            g.close();
            mHat.close();
            vHat.close();
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
