package dev.skipflow.model.compression;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import dev.skipflow.model.decoder.Forward;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import java.util.List;

/**
 * Distillation from the dense original, the alternative recovery objective: {@code KL(teacher || student)} of the
 * next-token distributions, averaged over a document's positions. The teacher's distribution carries what the
 * compressed model lost at every position and every token, where the next-token loss only sees the one token
 * the text has.
 */
public final class DistillationLoss {

    private DistillationLoss() {}

    /** The teacher's log-probabilities for every position of {@code doc}, {@code [n, vocab]}, without gradients. */
    public static NDArray teacher(LlamaModel teacher, NDManager manager, int[] doc) {
        try (KvCache cache = new KvCache(teacher, 1, doc.length)) {
            List<Forward.Row> rows = Forward.prompt(0, 0, doc, null, null, false, doc.length, 0);
            NDArray logits = Forward.run(teacher, cache, manager, true, rows, Forward.Plan.DENSE).logits();
            return logits.logSoftmax(-1).stopGradient();
        }
    }

    /**
     * @param teacherLogProbs from {@link #teacher}, same document
     * @param cache a fresh cache for the student, open until the backward pass is done
     */
    public static NDArray of(LlamaModel student, KvCache cache, NDManager manager, int[] doc, NDArray teacherLogProbs) {
        return of(student, cache, manager, doc, teacherLogProbs, 1);
    }

    /**
     * {@code weight * KL + (1 - weight) * next-token loss} of one forward pass (the KL as above; the next-token loss
     * as {@link NextTokenLoss}'s, over the document's predicted positions).
     */
    public static NDArray of(LlamaModel student, KvCache cache, NDManager manager, int[] doc, NDArray teacherLogProbs,
            double weight) {
        int n = doc.length;
        List<Forward.Row> rows = Forward.prompt(0, 0, doc, null, null, false, n, 0);
        NDArray logP = Forward.run(student, cache, manager, true, rows, Forward.Plan.DENSE).logits().logSoftmax(-1);
        NDArray kl = teacherLogProbs.exp().mul(teacherLogProbs.sub(logP)).sum().div(n);
        if (weight >= 1) {
            return kl;
        }
        NDArray nextToken = NextTokenLoss.ofLogProbs(logP.get(new NDIndex().addSliceDim(0, n - 1)), doc, manager);
        return kl.mul((float) weight).add(nextToken.mul((float) (1 - weight)));
    }
}
