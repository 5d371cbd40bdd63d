package dev.skipflow.model.eval;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.decoder.Prefill;
import dev.skipflow.model.decoder.TokenBatch;
import dev.skipflow.model.flops.FlopAccount;
import dev.skipflow.model.flops.FlopCounter;
import dev.skipflow.model.routing.TokenRouter;
import dev.skipflow.model.sampling.Sampler;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * Perplexity under DESIGN §6: every document runs as one prefill; each position's logits score the next
 * token; NLL is summed in double over all predicted positions. With a router, the dense and the routed
 * pass run side by side on each document, giving agreement (top-1 equal to dense) and measured time for both.
 */
public final class PerplexityEvaluator {

    /** Totals of one pass over the documents. */
    public record Result(int documents, long predictedTokens, double nll, double perplexity, FlopAccount flops,
            double seconds) {}

    /** Dense and routed passes over the same documents. */
    public record Comparison(Result dense, Result routed, double agreement) {}

    private final LlamaModel model;

    public PerplexityEvaluator(LlamaModel model) {
        this.model = model;
    }

    public Result evaluate(List<int[]> docs, IntConsumer progress) {
        return compare(docs, null, progress).dense();
    }

    /** One pass with {@code router} alone (null = dense), e.g. to score a candidate schedule. */
    public Result evaluate(List<int[]> docs, TokenRouter router) {
        int maxLen = docs.stream().mapToInt(d -> d.length).max().orElse(1);
        FlopCounter counter = new FlopCounter(model.config());
        Pass pass = new Pass();
        try (KvCache cache = new KvCache(model, 1, Math.min(maxLen, model.config().seqLen()), router != null)) {
            for (int[] doc : docs) {
                if (doc.length >= 2) {
                    pass.add(doc, cache, router, counter);
                }
            }
        }
        return pass.result(docs.size());
    }

    /** Both passes document by document (so machine noise hits them alike); routed is null without a router. */
    public Comparison compare(List<int[]> docs, TokenRouter router, IntConsumer progress) {
        int maxLen = docs.stream().mapToInt(d -> d.length).max().orElse(1);
        FlopCounter counter = new FlopCounter(model.config());
        Pass dense = new Pass();
        Pass routed = router == null ? null : new Pass();
        long agree = 0;
        try (KvCache cache = new KvCache(model, 1, Math.min(maxLen, model.config().seqLen()), router != null)) {
            int done = 0;
            for (int[] doc : docs) {
                if (doc.length > cache.context()) {
                    throw new IllegalArgumentException("document of " + doc.length + " tokens exceeds the model's context "
                            + model.config().seqLen() + "; lower --max-len");
                }
                if (doc.length >= 2) {
                    int[] denseTop = dense.add(doc, cache, null, counter);
                    if (routed != null) {
                        int[] routedTop = routed.add(doc, cache, router, counter);
                        for (int t = 0; t + 1 < doc.length; t++) {
                            agree += denseTop[t] == routedTop[t] ? 1 : 0;
                        }
                    }
                }
                progress.accept(++done);
            }
        }
        Result d = dense.result(docs.size());
        return new Comparison(d, routed == null ? null : routed.result(docs.size()),
                routed == null ? 1.0 : agree / (double) Math.max(1, d.predictedTokens()));
    }

    /** Running totals of one pass. */
    private final class Pass {
        final FlopAccount flops = new FlopAccount();
        double nll;
        long predicted;
        long nanos;

        /** Adds one document; returns the top-1 token at each predicting position. */
        int[] add(int[] doc, KvCache cache, TokenRouter router, FlopCounter counter) {
            int n = doc.length;
            int v = model.config().vocabSize();
            float[] logits;
            long start = System.nanoTime();
            try (NDManager step = model.newStepManager()) {
                cache.clearSlot(0);
                TokenBatch batch = TokenBatch.prefill(model, step, 0, 0, n);
                NDArray x = Prefill.run(model, cache, batch, doc, router, counter, flops,
                        new int[model.config().nLayers()]);
                logits = model.logits(x).toFloatArray();
            }
            nanos += System.nanoTime() - start;
            for (int p = 0; p < n; p++) {
                flops.add(counter.head(), counter.head(), 0, 0);
            }
            int[] top = new int[n - 1];
            for (int t = 0; t + 1 < n; t++) {
                nll -= logProb(logits, t * v, v, doc[t + 1]);
                top[t] = Sampler.argmax(logits, t * v, v);
            }
            predicted += n - 1;
            return top;
        }

        Result result(int documents) {
            return new Result(documents, predicted, nll, Math.exp(nll / Math.max(1, predicted)), flops, nanos / 1e9);
        }
    }

    static double logProb(float[] logits, int offset, int v, int target) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < v; i++) {
            max = Math.max(max, logits[offset + i]);
        }
        double sum = 0;
        for (int i = 0; i < v; i++) {
            sum += Math.exp(logits[offset + i] - max);
        }
        return logits[offset + target] - max - Math.log(sum);
    }
}
