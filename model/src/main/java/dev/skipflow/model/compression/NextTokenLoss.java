package dev.skipflow.model.compression;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import dev.skipflow.model.decoder.Forward;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.nn.Tensors;
import java.util.List;

/**
 * The language-modelling loss trainers take gradients of: one document through the decoder's one forward pass
 * (a prefill of every position, all logits wanted), then the mean over its predicted positions of
 * {@code -log p(next token)}. Differentiable when a {@code GradientCollector} is open.
 */
public final class NextTokenLoss {

    private NextTokenLoss() {}

    /**
     * @param cache a fresh cache for this document, kept open until the backward pass is done (the graph reads it)
     * @param manager owns the pass's temporaries and the returned scalar
     */
    public static NDArray of(LlamaModel model, KvCache cache, NDManager manager, int[] doc) {
        int n = doc.length;
        if (n < 2) {
            throw new IllegalArgumentException("a document needs at least 2 tokens to predict one, got " + n);
        }
        List<Forward.Row> rows = Forward.prompt(0, 0, doc, null, null, false, n, 0);
        NDArray logits = Forward.run(model, cache, manager, true, rows, Forward.Plan.DENSE).logits();
        return ofLogProbs(logits.get(new NDIndex().addSliceDim(0, n - 1)).logSoftmax(-1), doc, manager);
    }

    /**
     * The same loss from log-probabilities already computed for the document's predicted positions
     * ({@code [n - 1, vocab]}: row i predicts {@code doc[i + 1]}).
     */
    public static NDArray ofLogProbs(NDArray logProbs, int[] doc, NDManager manager) {
        int n = doc.length;
        int[] next = java.util.Arrays.copyOfRange(doc, 1, n);
        NDArray targets = manager.create(Tensors.toLongs(next)).oneHot((int) logProbs.getShape().get(1));
        return logProbs.mul(targets).sum().neg().div(n - 1);
    }
}
