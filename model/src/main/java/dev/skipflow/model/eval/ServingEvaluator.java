package dev.skipflow.model.eval;

import ai.djl.ndarray.NDManager;
import dev.skipflow.model.decoder.Forward;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.exit.ExitClassifier;
import dev.skipflow.model.flops.FlopAccount;
import dev.skipflow.model.routing.TokenRouter;
import dev.skipflow.model.sampling.Sampler;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * Quality as the job serves it (the serving protocol, beside {@link PerplexityEvaluator}'s one-prefill protocol):
 * each document is split into a prompt (its first half, at least {@link #MIN_PROMPT} tokens) and a continuation;
 * the prompt runs as one prefill with prefill routing, then the continuation is fed token by token through the
 * decode path with decode routing (unless routing is prompt-only) and early exit, as the engine runs a request.
 * Perplexity and top-1 agreement with dense are scored on the continuation's predictions only (the last prompt
 * position's included). Greedy agreement: the share of the first {@link #GREEDY_TOKENS} tokens generated from the
 * prompt that equal dense greedy's, position by position.
 *
 * <p>With a reference model (a compressed model's original), "dense" is the reference's dense path: agreement,
 * speed-up and FLOPs are then against the original, as a served bundle is judged.
 */
public final class ServingEvaluator {

    public static final int MIN_PROMPT = 16;
    public static final int GREEDY_TOKENS = 32;

    /** One configuration next to dense under this protocol. */
    public record ServingResult(PerplexityEvaluator.Variant variant, PerplexityEvaluator.Result result, double agreement,
            double greedyAgreement, double medianSpeedup) {}

    /** Dense and every variant over the same documents. */
    public record Side(PerplexityEvaluator.Result dense, List<ServingResult> variants) {}

    private final LlamaModel model;
    private final LlamaModel reference;
    private final boolean routeDecode;

    /** @param routeDecode whether routers also act on decoding tokens (false: prefill only, FTP's own setting) */
    public ServingEvaluator(LlamaModel model, boolean routeDecode) {
        this(model, model, routeDecode);
    }

    /**
     * @param reference the model whose dense path the variants (all run on {@code model}) are compared with, e.g.
     *     the original a compressed {@code model} was made from; same tokenizer and context
     */
    public ServingEvaluator(LlamaModel model, LlamaModel reference, boolean routeDecode) {
        if (reference.spec().vocabSize() != model.spec().vocabSize()) {
            throw new IllegalArgumentException("the reference model's vocabulary (" + reference.spec().vocabSize()
                    + ") differs from the model's (" + model.spec().vocabSize() + ")");
        }
        this.model = model;
        this.reference = reference;
        this.routeDecode = routeDecode;
    }

    /** The prompt length of a document of {@code n} tokens, or -1 when it leaves no continuation. */
    public static int promptLength(int n) {
        int p = Math.max(MIN_PROMPT, n / 2);
        return p < n ? p : -1;
    }

    public Side compare(List<int[]> docs, List<PerplexityEvaluator.Variant> variants, IntConsumer progress) {
        // positions a document needs: all its tokens when scored, its prompt and 31 fed tokens when generating
        int needed = docs.stream().mapToInt(d -> Math.max(d.length, promptLength(d.length) + GREEDY_TOKENS - 1))
                .max().orElse(1);
        int context = Math.min(Math.min(model.spec().seqLen(), reference.spec().seqLen()), needed);
        Totals dense = new Totals();
        List<Totals> totals = new ArrayList<>();
        for (int i = 0; i < variants.size(); i++) {
            totals.add(new Totals());
        }
        try (KvCache cache = new KvCache(model, 1, context, true);
                KvCache referenceCache = reference == model ? null : new KvCache(reference, 1, context, true)) {
            int done = 0;
            for (int[] doc : docs) {
                int p = promptLength(doc.length);
                if (p > 0) {
                    if (Math.max(doc.length, p + GREEDY_TOKENS - 1) > context) {
                        throw new IllegalArgumentException("document of " + doc.length + " tokens exceeds the model's "
                                + "context " + model.spec().seqLen() + "; lower --max-len");
                    }
                    Scored d = dense.add(reference, doc, p, referenceCache != null ? referenceCache : cache, null, null,
                            null);
                    for (int i = 0; i < variants.size(); i++) {
                        PerplexityEvaluator.Variant v = variants.get(i);
                        totals.get(i).add(model, doc, p, cache, v.router(), v.exit(), d);
                    }
                }
                progress.accept(++done);
            }
        }
        List<ServingResult> out = new ArrayList<>();
        for (int i = 0; i < variants.size(); i++) {
            Totals t = totals.get(i);
            out.add(new ServingResult(variants.get(i), t.result(docs.size()), t.agree / (double) Math.max(1, t.predicted),
                    t.greedyAgree / (double) Math.max(1, t.greedyTotal),
                    PerplexityEvaluator.medianRatio(dense.perDocument, t.perDocument)));
        }
        return new Side(dense.result(docs.size()), out);
    }

    /** A document's top-1 at every scored position and its greedy continuation, to compare variants with. */
    private record Scored(int[] top, int[] greedy) {}

    private final class Totals {
        final FlopAccount flops = new FlopAccount();
        final List<Long> perDocument = new ArrayList<>();
        double nll;
        long predicted;
        long nanos;
        long agree;
        long greedyAgree;
        long greedyTotal;

        /** Scores one document (teacher-forced), then generates from its prompt; compares both with {@code dense}. */
        Scored add(LlamaModel model, int[] doc, int p, KvCache cache, TokenRouter router, ExitClassifier exit,
                Scored dense) {
            int n = doc.length;
            int[] prompt = java.util.Arrays.copyOf(doc, p);
            int[] continuation = java.util.Arrays.copyOfRange(doc, p, n);
            long start = System.nanoTime();
            float[][] rows = serve(model, prompt, continuation, n - 1 - p, cache, router, exit, flops);
            long t = System.nanoTime() - start;
            nanos += t;
            perDocument.add(t);
            int v = model.spec().vocabSize();
            int[] top = new int[rows.length];
            for (int k = 0; k < rows.length; k++) {
                nll -= PerplexityEvaluator.logProb(rows[k], 0, v, doc[p + k]);
                top[k] = Sampler.argmax(rows[k]);
                agree += dense != null && dense.top()[k] == top[k] ? 1 : 0;
            }
            predicted += rows.length;
            float[][] generated = serve(model, prompt, null, GREEDY_TOKENS - 1, cache, router, exit, new FlopAccount());
            int[] greedy = new int[generated.length];
            for (int k = 0; k < greedy.length; k++) {
                greedy[k] = Sampler.argmax(generated[k]);
                greedyAgree += dense != null && dense.greedy()[k] == greedy[k] ? 1 : 0;
            }
            greedyTotal += greedy.length;
            return new Scored(top, greedy);
        }

        PerplexityEvaluator.Result result(int documents) {
            return new PerplexityEvaluator.Result(documents, predicted, nll, Math.exp(nll / Math.max(1, predicted)), flops,
                    nanos / 1e9);
        }
    }

    /**
     * A prompt's prefill, then {@code steps} decode steps, each fed {@code forced[k]} (teacher forcing) or, when
     * {@code forced} is null, the previous step's top-1 (greedy generation). Returns the logits of the prefill's last
     * position and of every decode step. Adaptive like an engine request: the prompt routed, its last position and
     * every decoding token may exit, decoding tokens routed when {@link #routeDecode}.
     */
    private float[][] serve(LlamaModel model, int[] prompt, int[] forced, int steps, KvCache cache, TokenRouter router,
            ExitClassifier exit, FlopAccount account) {
        int p = prompt.length;
        int[] written = new int[model.spec().nLayers()];
        Forward.Plan plan = new Forward.Plan(router, exit, null);
        Forward.Plan decodePlan = routeDecode ? plan : new Forward.Plan(null, exit, null); // prompt-only routing
        float[][] rows = new float[steps + 1][];
        cache.clearSlot(0);
        try (NDManager step = model.newStepManager()) {
            rows[0] = Forward.run(model, cache, step, true, Forward.prompt(0, 0, prompt, account, written, router != null,
                    exit != null ? p - 1 : p, p - 1), plan).logits(p - 1);
        }
        for (int k = 1; k <= steps; k++) {
            int token = forced != null ? forced[k - 1] : Sampler.argmax(rows[k - 1]);
            try (NDManager step = model.newStepManager()) {
                var row = List.of(new Forward.Row(0, p + k - 1, token, account, written, true, exit != null, true));
                rows[k] = Forward.run(model, cache, step, false, row, decodePlan).logits(0);
            }
        }
        return rows;
    }
}
