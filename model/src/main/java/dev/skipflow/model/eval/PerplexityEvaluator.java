package dev.skipflow.model.eval;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.decoder.TokenBatch;
import dev.skipflow.model.flops.FlopAccount;
import dev.skipflow.model.flops.FlopCounter;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * Perplexity under DESIGN §6: every document runs as one prefill; each position's logits score the next
 * token; NLL is summed in double over all predicted positions.
 */
public final class PerplexityEvaluator {

    /** Totals of one evaluation. */
    public record Result(int documents, long predictedTokens, double nll, double perplexity, FlopAccount flops,
            double seconds) {}

    private final LlamaModel model;

    public PerplexityEvaluator(LlamaModel model) {
        this.model = model;
    }

    public Result evaluate(List<int[]> docs, IntConsumer progress) {
        int maxLen = docs.stream().mapToInt(d -> d.length).max().orElse(1);
        FlopCounter counter = new FlopCounter(model.config());
        FlopAccount flops = new FlopAccount();
        double nll = 0;
        long predicted = 0;
        long start = System.nanoTime();
        try (KvCache cache = new KvCache(model, 1, Math.min(maxLen, model.config().seqLen()))) {
            int done = 0;
            for (int[] doc : docs) {
                if (doc.length > cache.context()) {
                    throw new IllegalArgumentException("document of " + doc.length + " tokens exceeds the model's context "
                            + model.config().seqLen() + "; lower --max-len");
                }
                if (doc.length >= 2) {
                    nll += documentNll(doc, cache);
                    predicted += doc.length - 1;
                    for (int p = 0; p < doc.length; p++) {
                        flops.denseToken(counter, p, true);
                    }
                }
                progress.accept(++done);
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        return new Result(docs.size(), predicted, nll, Math.exp(nll / Math.max(1, predicted)), flops, seconds);
    }

    /** Sum of -log p(doc[t+1] | doc[..t]) over t. */
    private double documentNll(int[] doc, KvCache cache) {
        int n = doc.length;
        int v = model.config().vocabSize();
        float[] logits;
        try (NDManager step = model.newStepManager()) {
            TokenBatch batch = TokenBatch.prefill(model, step, 0, 0, n);
            NDArray x = model.embed(batch, doc);
            for (int l = 0; l < model.config().nLayers(); l++) {
                x = model.block(l, x, batch, cache);
            }
            logits = model.logits(x).toFloatArray();
        }
        double total = 0;
        for (int t = 0; t + 1 < n; t++) {
            total += -logProb(logits, t * v, v, doc[t + 1]);
        }
        return total;
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
