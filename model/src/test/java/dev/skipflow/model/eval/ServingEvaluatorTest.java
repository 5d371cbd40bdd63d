package dev.skipflow.model.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skipflow.model.TestModels;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.routing.BlockRemoval;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The serving protocol: prompt prefilled, continuation decoded, only the continuation scored. */
class ServingEvaluatorTest {

    static final List<int[]> DOCS = Documents.read(TestModels.shared().resolve("data/tinystories-valid-sample.txt"),
            TestModels.tokenizer(), 48, 3);

    @Test
    void denseServingScoresTheContinuationLikeOnePrefillDoes() {
        var side = new ServingEvaluator(TestModels.model(), true).compare(DOCS, List.of(), i -> { });
        double nll = 0;
        long scored = 0;
        int v = TestModels.model().spec().vocabSize();
        for (int[] doc : DOCS) {
            int p = ServingEvaluator.promptLength(doc.length);
            float[] logits = TestModels.prefillLogits(TestModels.model(), doc);
            for (int t = p - 1; t + 1 < doc.length; t++) {
                nll -= PerplexityEvaluator.logProb(logits, t * v, v, doc[t + 1]);
                scored++;
            }
        }
        assertEquals(scored, side.dense().predictedTokens(), "the last prompt position and the continuation");
        assertEquals(nll, side.dense().nll(), 1e-4 * nll, "decode path scores like a prefill, within rounding");
    }

    @Test
    void shortDocumentsKeepTheirSixteenTokenPromptAndGenerateThirtyTwo() {
        // 20 tokens: a 16-token prompt (more than half), 4 scored predictions, and 32 greedy tokens after the prompt
        var docs = Documents.read(TestModels.shared().resolve("data/tinystories-valid-sample.txt"), TestModels.tokenizer(),
                20, 2);
        var side = new ServingEvaluator(TestModels.model(), true).compare(docs, List.of(Variants.of(new BlockRemoval(5, 1),
                null)), i -> { });
        assertEquals(2 * 4, side.dense().predictedTokens());
        assertTrue(side.variants().get(0).greedyAgreement() <= 1.0);
    }

    @Test
    void promptOnlyRoutingSkipsPromptTokensAndDecodesDensely() {
        int layers = TestModels.model().spec().nLayers();
        var variant = List.of(Variants.of(new BlockRemoval(layers, 2), null));
        var prompt = new ServingEvaluator(TestModels.model(), false).compare(DOCS, variant, i -> { }).variants().get(0);
        var all = new ServingEvaluator(TestModels.model(), true).compare(DOCS, variant, i -> { }).variants().get(0);
        long promptTokens = DOCS.stream().mapToLong(d -> ServingEvaluator.promptLength(d.length)).sum();
        assertEquals(promptTokens, prompt.result().flops().savings().tokenBlocksSkipped(),
                "block 2 skipped for every prompt token, never for a decoding one");
        long allTokens = DOCS.stream().mapToLong(d -> d.length - 1).sum(); // the last token is never fed
        assertEquals(allTokens, all.result().flops().savings().tokenBlocksSkipped(), "and for every fed token with --route all");
        assertTrue(prompt.agreement() > all.agreement(), "dense decoding keeps more top-1s: " + prompt.agreement()
                + " vs " + all.agreement());
        assertTrue(all.greedyAgreement() < 1.0 && all.greedyAgreement() >= 0);
    }

    @Test
    void earlyExitAloneChargesNothingToRoutingOrCompression() {
        // the last prompt position and decoding tokens exit, propagating their keys; every key they leave is attended
        var exit = List.of(Variants.of(null, dev.skipflow.model.exit.ExitClassifier.always(5, 2)));
        var r = new ServingEvaluator(TestModels.model(), true).compare(DOCS, exit, i -> { }).variants().get(0);
        var s = r.result().flops().savings();
        assertTrue(s.earlyExitTokens() > 0);
        assertEquals(0.0, s.byMethod().routing(), "no router: " + s.byMethod());
        assertEquals(0.0, s.byMethod().compression());
        assertEquals(s.savedFraction(), s.byMethod().exit(), 1e-12);
    }

    @Test
    void promptRoutedScoringInTwoPrefillsMatchesTheServingProtocolsPromptRouting() {
        // the schedule search's cheap score: routed prompt, then the continuation as one dense chunk
        int layers = TestModels.model().spec().nLayers();
        var router = new BlockRemoval(layers, 2);
        var serving = new ServingEvaluator(TestModels.model(), false).compare(DOCS, List.of(Variants.of(router, null)),
                i -> { });
        var evaluator = new PerplexityEvaluator(TestModels.model());
        var dense = evaluator.evaluatePromptRouted(DOCS, null);
        var routed = evaluator.evaluatePromptRouted(DOCS, router);
        assertEquals(serving.dense().predictedTokens(), routed.predictedTokens());
        assertEquals(serving.dense().nll(), dense.nll(), 1e-4 * dense.nll());
        var served = serving.variants().get(0).result();
        assertEquals(served.nll(), routed.nll(), 1e-4 * routed.nll(), "same attention over the keys the router left");
        assertTrue(routed.nll() > dense.nll() * 1.01, "block 2 skipped for the prompt changes the continuation");
        assertEquals(served.flops().savings().tokenBlocksSkipped(), routed.flops().savings().tokenBlocksSkipped());
    }
}
