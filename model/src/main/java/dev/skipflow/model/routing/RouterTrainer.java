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
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.IntConsumer;

/**
 * Trains FTP's router with DJL autograd through the frozen model. Per block, the router scores each token
 * from {@link RouterFeatures}; the forward pass uses hard keep/skip gates on the block's residual update and
 * gradients flow through the sigmoid (straight-through). Three losses, as published: a guide loss toward the
 * static router's choices (weight decaying to 0 over the first half), a one-sided sparsity loss
 * sum_l max(target_l - actual_l, 0), and distillation (KL) against the dense model's output.
 *
 * <p>Every row's block is computed so the gate has a gradient, but, as at inference, the keys of tokens that
 * skip a block are hidden from the other tokens there; a skipped token's own output is then discarded by its
 * gate.
 */
public final class RouterTrainer {

    /** Training settings. */
    public record Options(SparsitySchedule schedule, int steps, float learningRate, float sparsityWeight, long seed) {}

    private RouterTrainer() {}

    public static RouterArtifact train(LlamaModel model, String modelDescription, List<int[]> docs, Options o,
            IntConsumer progress) {
        int layers = model.config().nLayers();
        int hidden = RouterArtifact.HIDDEN;
        int heads = model.config().nHeads();
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
            StaticRouter guide = new StaticRouter(o.schedule());
            double lastLoss = 0;
            for (int step = 1; step <= o.steps(); step++) {
                int[] doc = docs.get(rnd.nextInt(docs.size()));
                int n = doc.length;
                int[] positions = TokenRouter.all(n);
                float guideWeight = (float) Math.max(0, 1 - step / (0.5 * o.steps()));
                try (NDManager stepManager = model.newStepManager(); KvCache denseCache = new KvCache(model, 1, n);
                        KvCache cache = new KvCache(model, 1, n)) {
                    NDArray denseLogProbs = forwardDense(model, stepManager, denseCache, doc);
                    try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                        TokenBatch batch = TokenBatch.prefill(model, stepManager, 0, 0, n);
                        NDArray x = model.embed(batch, doc);
                        float[][] importance = {null};
                        NDArray guideLoss = stepManager.zeros(new Shape());
                        NDArray sparsityLoss = stepManager.zeros(new Shape());
                        for (int l = 0; l < layers; l++) {
                            double target = o.schedule().at(l);
                            NDArray features = stepManager.create(RouterFeatures.of(positions, importance[0], n, target),
                                    new Shape(n, RouterFeatures.COUNT));
                            NDArray logit = features.matMul(p[0]).add(p[1]).maximum(0f).matMul(p[2]).add(p[3]);
                            NDArray keep = ai.djl.nn.Activation.sigmoid(logit);
                            NDArray hard = keep.gt(0.5f).toType(DataType.FLOAT32, false);
                            NDArray gate = hard.add(keep.sub(keep.stopGradient()));
                            float[] labels = new float[n];
                            for (int r : guide.keepPrefill(l, positions)) {
                                labels[r] = 1f;
                            }
                            NDArray y = stepManager.create(labels, new Shape(n, 1));
                            NDArray eps = keep.clip(1e-6f, 1 - 1e-6f);
                            guideLoss = guideLoss.add(y.mul(eps.log()).add(y.neg().add(1f).mul(eps.neg().add(1f).log()))
                                    .mean().neg());
                            // actual sparsity from the hard decisions (straight-through): soft keep probabilities of 0.8 would
                            // satisfy a soft target while every hard gate stays open
                            sparsityLoss = sparsityLoss.add(gate.mean().neg().add(1f).neg().add((float) target).maximum(0f));
                            // as at inference, tokens skipping this block leave no key/value for the others
                            float[] kept = hard.toFloatArray();
                            boolean[] skipped = new boolean[n];
                            for (int i = 0; i < n; i++) {
                                skipped[i] = kept[i] < 0.5f;
                            }
                            NDArray out = model.block(l, x, batch.hidingKeys(skipped), cache,
                                    probs -> importance[0] = RouterFeatures.importance(
                                            probs.sum(new int[] {0, 1, 2}).toFloatArray(), positions, heads));
                            x = x.add(out.sub(x).mul(gate));
                        }
                        NDArray logProbs = model.logits(x).logSoftmax(-1);
                        NDArray distill = denseLogProbs.exp().mul(denseLogProbs.sub(logProbs)).sum().div(n);
                        NDArray loss = distill.add(sparsityLoss.mul(o.sparsityWeight()))
                                .add(guideLoss.mul(guideWeight / layers));
                        gc.backward(loss);
                        lastLoss = loss.getFloat();
                    }
                    adam(p, m, v, step, o.learningRate());
                }
                progress.accept(step);
            }
            float[] w1 = p[0].toFloatArray();
            float[] b1 = p[1].toFloatArray();
            float[] w2 = p[2].toFloatArray();
            float b2 = p[3].toFloatArray()[0];
            String info = String.format("%d steps on %d documents, lr %s, sparsity weight %s, last loss %.4f; guide, "
                            + "sparsity and distillation losses; straight-through hard gates", o.steps(), docs.size(),
                    o.learningRate(), o.sparsityWeight(), lastLoss);
            return new RouterArtifact(model.fingerprint(), modelDescription, o.schedule(), w1, b1, w2, b2, info);
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

    /** Adam with the usual defaults (beta1 0.9, beta2 0.999); grads are consumed and zeroed. */
    private static void adam(NDArray[] p, NDArray[] m, NDArray[] v, int t, float lr) {
        float b1 = 0.9f;
        float b2 = 0.999f;
        for (int i = 0; i < p.length; i++) {
            NDArray g = p[i].getGradient();
            m[i].muli(b1).addi(g.mul(1 - b1));
            v[i].muli(b2).addi(g.square().mul(1 - b2));
            NDArray mHat = m[i].div((float) (1 - Math.pow(b1, t)));
            NDArray vHat = v[i].div((float) (1 - Math.pow(b2, t)));
            p[i].subi(mHat.mul(lr).div(vHat.sqrt().add(1e-8f)));
            g.muli(0f);
            g.close();
            mHat.close();
            vHat.close();
        }
    }

    private static float[] normal(SplittableRandom rnd, int n, float std) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (rnd.nextGaussian() * std);
        }
        return a;
    }
}
