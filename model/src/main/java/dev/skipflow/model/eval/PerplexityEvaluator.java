package dev.skipflow.model.eval;

import ai.djl.ndarray.NDManager;
import dev.skipflow.model.decoder.Forward;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.exit.ExitClassifier;
import dev.skipflow.model.flops.FlopAccount;
import dev.skipflow.model.routing.TokenRouter;
import dev.skipflow.model.sampling.Sampler;
import java.util.Arrays;
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
            double seconds) {

        /** Tokens run per second: every token of every document (its predicted positions plus one). */
        public double tokensPerSecond() {
            return (predictedTokens + documents) / seconds;
        }
    }

    /** Dense and routed passes over the same documents. */
    public record Comparison(Result dense, Result routed, double agreement) {}

    /** An adaptive configuration to compare with dense: a router, an exit classifier, or both (either may be null). */
    public record Variant(String name, TokenRouter router, ExitClassifier exit) {}

    /**
     * One variant's totals next to dense: agreement = share of predicted positions whose top-1 equals dense's;
     * medianSpeedup = the median over documents of dense seconds / variant seconds on that document (robust to a
     * pause landing on one pass, unlike the ratio of totals).
     */
    public record VariantResult(Variant variant, Result result, double agreement, double medianSpeedup) {}

    /** Dense and every variant over the same documents, document by document. */
    public record Side(Result dense, List<VariantResult> variants) {}

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
        Pass pass = new Pass();
        try (KvCache cache = new KvCache(model, 1, Math.min(maxLen, model.spec().seqLen()), router != null)) {
            for (int[] doc : docs) {
                if (doc.length >= 2) {
                    pass.add(doc, cache, router, null);
                }
            }
        }
        return pass.result(docs.size());
    }

    /**
     * {@code router} on each document's prompt only, scored as the serving protocol scores it
     * ({@link ServingEvaluator}: prompt = first half, at least {@link ServingEvaluator#MIN_PROMPT} tokens; the last
     * prompt position's and the continuation's predictions), but with the continuation teacher-forced as one dense
     * prefill chunk after the routed prompt instead of token by token: the same attention (the cache masks the keys
     * the router left out), at the cost of two prefills. For scoring candidate schedules of a prompt-only router.
     */
    public Result evaluatePromptRouted(List<int[]> docs, TokenRouter router) {
        int maxLen = docs.stream().mapToInt(d -> d.length).max().orElse(1);
        int v = model.spec().vocabSize();
        Pass pass = new Pass();
        try (KvCache cache = new KvCache(model, 1, Math.min(maxLen, model.spec().seqLen()), true)) {
            for (int[] doc : docs) {
                int p = ServingEvaluator.promptLength(doc.length);
                if (p < 0) {
                    continue;
                }
                int n = doc.length;
                long start = System.nanoTime();
                cache.clearSlot(0);
                int[] written = new int[model.spec().nLayers()];
                float[] logits = new float[(n - p) * v];
                try (NDManager step = model.newStepManager()) {
                    var rows = Forward.prompt(0, 0, Arrays.copyOf(doc, p), pass.flops, written, router != null, p, p - 1);
                    float[] last = Forward.run(model, cache, step, true, rows, Forward.Plan.routed(router)).logits(p - 1);
                    System.arraycopy(last, 0, logits, 0, v);
                }
                if (n - 1 > p) {
                    try (NDManager step = model.newStepManager()) {
                        var rows = Forward.prompt(0, p, Arrays.copyOfRange(doc, p, n - 1), pass.flops, written, false,
                                n, 0);
                        float[] rest = Forward.run(model, cache, step, true, rows, Forward.Plan.DENSE).allLogits();
                        System.arraycopy(rest, 0, logits, v, rest.length);
                    }
                }
                pass.time(start);
                pass.score(Arrays.copyOfRange(doc, p - 1, n), logits, v);
            }
        }
        return pass.result(docs.size());
    }

    /** Both passes document by document (so machine noise hits them alike); routed is null without a router. */
    public Comparison compare(List<int[]> docs, TokenRouter router, IntConsumer progress) {
        if (router == null) {
            return new Comparison(compareAll(docs, List.of(), progress).dense(), null, 1.0);
        }
        Side s = compareAll(docs, List.of(new Variant(router.describe(), router, null)), progress);
        return new Comparison(s.dense(), s.variants().get(0).result(), s.variants().get(0).agreement());
    }

    /**
     * Dense and every variant, document by document (so machine noise hits them alike), after one untimed warm-up
     * pass of the first document each. A variant with an exit
     * classifier probes every position (teacher-forced); a position that exits outputs its probe's logits and its
     * keys/values in the blocks it skipped come from its exit hidden state (see {@link Forward}).
     */
    public Side compareAll(List<int[]> docs, List<Variant> variants, IntConsumer progress) {
        int maxLen = docs.stream().mapToInt(d -> d.length).max().orElse(1);
        Pass dense = new Pass();
        Pass[] passes = new Pass[variants.size()];
        long[] agree = new long[variants.size()];
        boolean routed = false;
        for (int i = 0; i < passes.length; i++) {
            passes[i] = new Pass();
            routed |= variants.get(i).router() != null
                    || (variants.get(i).exit() != null && !variants.get(i).exit().propagateKv());
        }
        try (KvCache cache = new KvCache(model, 1, Math.min(maxLen, model.spec().seqLen()), routed)) {
            // one untimed, uncounted pass of the first document per configuration, so first-call costs (JIT, the
            // engine's kernels and allocator) do not land on whichever pass happens to run first
            docs.stream().filter(d -> d.length >= 2 && d.length <= cache.context()).findFirst().ifPresent(doc -> {
                new Pass().add(doc, cache, null, null);
                for (Variant v : variants) {
                    new Pass().add(doc, cache, v.router(), v.exit());
                }
            });
            int done = 0;
            for (int[] doc : docs) {
                requireFits(doc, cache);
                if (doc.length >= 2) {
                    int[] denseTop = dense.add(doc, cache, null, null);
                    for (int i = 0; i < passes.length; i++) {
                        int[] top = passes[i].add(doc, cache, variants.get(i).router(), variants.get(i).exit());
                        for (int t = 0; t + 1 < doc.length; t++) {
                            agree[i] += denseTop[t] == top[t] ? 1 : 0;
                        }
                    }
                }
                progress.accept(++done);
            }
        }
        Result d = dense.result(docs.size());
        List<VariantResult> out = new java.util.ArrayList<>();
        for (int i = 0; i < passes.length; i++) {
            out.add(new VariantResult(variants.get(i), passes[i].result(docs.size()),
                    agree[i] / (double) Math.max(1, d.predictedTokens()), medianRatio(dense.perDocument, passes[i].perDocument)));
        }
        return new Side(d, out);
    }

    /**
     * This model (say, a compressed one) and {@code original} over the same documents, document by document: both
     * perplexities and FLOP accounts, agreement = share of predicted positions whose top-1 here equals the
     * original's, medianSpeedup = median over documents of the original's seconds / this model's.
     */
    public record ModelComparison(Result original, Result result, double agreement, double medianSpeedup) {}

    /** Both models' dense passes, alternating per document after one untimed warm-up pass each. */
    public ModelComparison againstOriginal(LlamaModel original, List<int[]> docs, IntConsumer progress) {
        if (original.spec().vocabSize() != model.spec().vocabSize()) {
            throw new IllegalArgumentException("the original has a vocabulary of " + original.spec().vocabSize()
                    + ", this model " + model.spec().vocabSize() + ": not the same tokens");
        }
        int maxLen = docs.stream().mapToInt(d -> d.length).max().orElse(1);
        PerplexityEvaluator other = new PerplexityEvaluator(original);
        Pass mine = new Pass();
        Pass theirs = other.new Pass();
        long agree = 0;
        try (KvCache cache = new KvCache(model, 1, Math.min(maxLen, model.spec().seqLen()));
                KvCache originalCache = new KvCache(original, 1, Math.min(maxLen, original.spec().seqLen()))) {
            docs.stream().filter(d -> d.length >= 2 && d.length <= cache.context()).findFirst().ifPresent(doc -> {
                other.new Pass().add(doc, originalCache, null, null);
                new Pass().add(doc, cache, null, null);
            });
            int done = 0;
            for (int[] doc : docs) {
                requireFits(doc, cache);
                if (doc.length >= 2) {
                    int[] reference = theirs.add(doc, originalCache, null, null);
                    int[] top = mine.add(doc, cache, null, null);
                    for (int t = 0; t + 1 < doc.length; t++) {
                        agree += reference[t] == top[t] ? 1 : 0;
                    }
                }
                progress.accept(++done);
            }
        }
        Result o = theirs.result(docs.size());
        return new ModelComparison(o, mine.result(docs.size()), agree / (double) Math.max(1, o.predictedTokens()),
                medianRatio(theirs.perDocument, mine.perDocument));
    }

    /**
     * Dense and routed, scoring every position as a decode step: the document's tokens go in one at a time, as
     * the job generates (teacher-forced), so a router's decode decisions are what is measured. Slower than
     * {@link #compare}: one forward per token.
     */
    public Comparison compareDecode(List<int[]> docs, TokenRouter router, IntConsumer progress) {
        int maxLen = docs.stream().mapToInt(d -> d.length).max().orElse(1);
        Pass dense = new Pass();
        Pass routed = new Pass();
        long agree = 0;
        try (KvCache cache = new KvCache(model, 1, Math.min(maxLen, model.spec().seqLen()), true)) {
            int done = 0;
            for (int[] doc : docs) {
                requireFits(doc, cache);
                if (doc.length >= 2) {
                    int[] denseTop = dense.addDecoding(doc, cache, null);
                    int[] top = routed.addDecoding(doc, cache, router);
                    for (int t = 0; t + 1 < doc.length; t++) {
                        agree += denseTop[t] == top[t] ? 1 : 0;
                    }
                }
                progress.accept(++done);
            }
        }
        Result d = dense.result(docs.size());
        return new Comparison(d, routed.result(docs.size()), agree / (double) Math.max(1, d.predictedTokens()));
    }

    private void requireFits(int[] doc, KvCache cache) {
        if (doc.length > cache.context()) {
            throw new IllegalArgumentException("document of " + doc.length + " tokens exceeds the model's context "
                    + model.spec().seqLen() + "; lower --max-len");
        }
    }

    /** Median of a[i] / b[i]; 1 when empty. */
    static double medianRatio(List<Long> a, List<Long> b) {
        double[] r = new double[Math.min(a.size(), b.size())];
        for (int i = 0; i < r.length; i++) {
            r[i] = a.get(i) / (double) Math.max(1, b.get(i));
        }
        if (r.length == 0) {
            return 1;
        }
        java.util.Arrays.sort(r);
        return r.length % 2 == 1 ? r[r.length / 2] : (r[r.length / 2 - 1] + r[r.length / 2]) / 2;
    }

    /** Running totals of one pass. */
    private final class Pass {
        final FlopAccount flops = new FlopAccount();
        final List<Long> perDocument = new java.util.ArrayList<>();
        double nll;
        long predicted;
        long nanos;

        /** Adds one document's time, to the total and to the per-document list. */
        private void time(long start) {
            long t = System.nanoTime() - start;
            nanos += t;
            perDocument.add(t);
        }

        /** Adds one document; returns the top-1 token at each predicting position. */
        int[] add(int[] doc, KvCache cache, TokenRouter router, ExitClassifier exit) {
            int n = doc.length;
            float[] logits;
            long start = System.nanoTime();
            try (NDManager step = model.newStepManager()) {
                cache.clearSlot(0);
                // teacher-forced: every position is probed (may exit) and scored
                List<Forward.Row> rows = Forward.prompt(0, 0, doc, flops, new int[model.spec().nLayers()], router != null,
                        exit != null ? 0 : n, 0);
                logits = Forward.run(model, cache, step, true, rows, new Forward.Plan(router, exit, null)).allLogits();
            }
            time(start);
            return score(doc, logits, model.spec().vocabSize());
        }

        /** Adds one document fed a token per decode step; returns the top-1 token at each predicting position. */
        int[] addDecoding(int[] doc, KvCache cache, TokenRouter router) {
            int n = doc.length;
            int v = model.spec().vocabSize();
            float[] logits = new float[n * v];
            int[] written = new int[model.spec().nLayers()];
            long start = System.nanoTime();
            cache.clearSlot(0);
            for (int p = 0; p < n; p++) {
                try (NDManager step = model.newStepManager()) {
                    List<Forward.Row> row = List.of(new Forward.Row(0, p, doc[p], flops, written, true, false, true));
                    float[] out = Forward.run(model, cache, step, false, row, Forward.Plan.routed(router)).logits(0);
                    System.arraycopy(out, 0, logits, p * v, v);
                }
            }
            time(start);
            return score(doc, logits, v);
        }

        /** Adds the document's NLL; returns the top-1 at each predicting position. */
        private int[] score(int[] doc, float[] logits, int v) {
            int n = doc.length;
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
