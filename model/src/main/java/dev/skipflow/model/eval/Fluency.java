package dev.skipflow.model.eval;

import dev.skipflow.model.decoder.BlockRouter;
import dev.skipflow.model.decoder.ExitPolicy;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.engine.BatchEngine;
import dev.skipflow.model.engine.Sequence;
import dev.skipflow.model.sampling.SamplingParams;
import dev.skipflow.model.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Whether adaptive greedy generations stay fluent: each prompt generated greedily twice, on the dense path and
 * with a router and an exit classifier, as the job serves one request (the engine, batch of one). Repetition
 * collapse is measured as seq-rep-4 (Welleck et al., "Neural text degeneration with unlikelihood training"): the
 * share of a generation's 4-grams that repeat an earlier 4-gram of the same generation.
 */
public final class Fluency {

    /** The n of seq-rep-n. */
    public static final int N = 4;

    /** One prompt's generation: its text, tokens, seq-rep-4, and the share of FLOPs saved against dense. */
    public record Generation(String text, int[] tokens, double repeated, double savedFraction) {}

    /** A prompt's dense and adaptive generations, and how many leading tokens they share. */
    public record Pair(String prompt, Generation dense, Generation adaptive, int commonPrefix) {}

    /** Every pair, and the mean seq-rep-4 of each side. */
    public record Result(List<Pair> pairs, double denseRepeated, double adaptiveRepeated) {}

    private Fluency() {}

    /**
     * @param router null for none; {@code routeDecode} false routes prompts only
     * @param exit null for none
     */
    public static Result compare(LlamaModel model, Tokenizer tokenizer, List<String> prompts, int maxTokens,
            BlockRouter router, boolean routeDecode, ExitPolicy exit) {
        List<Pair> pairs = new ArrayList<>();
        double dense = 0;
        double adaptive = 0;
        try (BatchEngine engine = BatchEngine.builder(model).maxBatch(1).router(router).routeDecode(routeDecode)
                .exit(exit).stopTokens(tokenizer).build()) {
            for (String prompt : prompts) {
                int[] tokens = tokenizer.encode(prompt, true);
                Generation d = generate(engine, tokenizer, tokens, maxTokens, false);
                Generation a = generate(engine, tokenizer, tokens, maxTokens, true);
                int common = 0;
                while (common < Math.min(d.tokens().length, a.tokens().length)
                        && d.tokens()[common] == a.tokens()[common]) {
                    common++;
                }
                pairs.add(new Pair(prompt, d, a, common));
                dense += d.repeated();
                adaptive += a.repeated();
            }
        }
        return new Result(pairs, dense / prompts.size(), adaptive / prompts.size());
    }

    private static Generation generate(BatchEngine engine, Tokenizer tokenizer, int[] prompt, int maxTokens,
            boolean adaptive) {
        Sequence s = new Sequence(null, prompt, SamplingParams.greedy(maxTokens)).adaptive(adaptive);
        engine.submit(s);
        while (!s.isFinished()) {
            engine.step();
        }
        int[] gen = s.generated();
        return new Generation(tokenizer.decode(prompt[prompt.length - 1], gen), gen, repeatedShare(gen, N),
                s.account().savings().savedFraction());
    }

    /** seq-rep-n: the share of the n-grams of {@code tokens} equal to an earlier one; 0 with fewer than n + 1 tokens. */
    public static double repeatedShare(int[] tokens, int n) {
        int grams = tokens.length - n + 1;
        if (grams <= 1) {
            return 0;
        }
        Set<List<Integer>> seen = new HashSet<>();
        int repeated = 0;
        for (int i = 0; i < grams; i++) {
            List<Integer> g = new ArrayList<>(n);
            for (int k = 0; k < n; k++) {
                g.add(tokens[i + k]);
            }
            if (!seen.add(g)) {
                repeated++;
            }
        }
        return repeated / (double) grams;
    }
}
