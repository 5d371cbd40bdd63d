package dev.skipflow.model.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skipflow.model.TestModels;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.eval.PerplexityEvaluator;
import dev.skipflow.model.eval.ServingEvaluator;
import dev.skipflow.model.eval.Variants;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The learned router in decode: one token per step, skipping a block when its score is below its cut (0 without one). */
class LearnedDecodeTest {

    static final List<int[]> DOCS = Documents.read(TestModels.shared().resolve("data/tinystories-valid-sample.txt"),
            TestModels.tokenizer(), 48, 3);

    /** An MLP whose score is {@code bias} whatever the factors (all weights 0). */
    static LearnedRouter constant(LlamaModel model, float bias, double... schedule) {
        return new RouterArtifact(model.fingerprint(), "test", new SparsitySchedule(schedule),
                new float[RouterFeatures.COUNT * RouterArtifact.HIDDEN], new float[RouterArtifact.HIDDEN],
                new float[RouterArtifact.HIDDEN], bias, "constant").routerFor(model, null);
    }

    @Test
    void denseDecodingScoresLikeOnePrefill() {
        LlamaModel model = TestModels.model();
        var evaluator = new PerplexityEvaluator(model);
        var decoded = evaluator.compareDecode(DOCS, null, i -> { }).dense();
        var prefilled = evaluator.evaluate(DOCS, i -> { });
        assertEquals(prefilled.predictedTokens(), decoded.predictedTokens());
        assertEquals(prefilled.nll(), decoded.nll(), 1e-4 * prefilled.nll());
    }

    @Test
    void aTokenScoredBelowZeroSkipsEveryBlockWithSparsityAndNoOther() {
        LlamaModel model = TestModels.model();
        var evaluator = new PerplexityEvaluator(model);
        int layers = model.spec().nLayers();
        // skipping block 2 for every decoding token is exactly removing block 2 in decode
        LearnedRouter router = constant(model, -1f, 0, 0, 0.3, 0, 0);
        var learned = evaluator.compareDecode(DOCS, router, i -> { });
        var removed = evaluator.compareDecode(DOCS, new BlockRemoval(layers, 2), i -> { });
        assertEquals(removed.routed().nll(), learned.routed().nll(), 1e-9);
        assertEquals(removed.agreement(), learned.agreement(), 1e-12);
        var s = learned.routed().flops().savings();
        assertEquals(s.tokenBlocksTotal() / layers, s.tokenBlocksSkipped(), "one block of five skipped, every token");
        // the same blocks ran; the learned router also paid for one decision per token in block 2 (a fixed rule pays none)
        assertEquals(0, router.decisionFlops(1));
        assertEquals(removed.routed().flops().savings().executedFlops() + s.tokenBlocksSkipped() * router.decisionFlops(2),
                s.executedFlops());
        assertTrue(learned.agreement() < 1.0);

        // a score of 0 or above keeps every token in every block: the dense result, at the dense cost
        var kept = evaluator.compareDecode(DOCS, constant(model, 0f, 0.5, 0.5, 0.5, 0.5, 0.5), i -> { });
        assertEquals(kept.dense().nll(), kept.routed().nll(), 1e-9);
        assertEquals(1.0, kept.agreement());
        assertEquals(0, kept.routed().flops().savings().tokenBlocksSkipped());
    }

    @Test
    void calibratedThresholdsSkipTheDecodeShareAsServed() {
        LlamaModel model = TestModels.model();
        // score = the importance factor (hidden unit 0 passes it through): tokens paying themselves little attention skip
        float[] w1 = new float[RouterFeatures.COUNT * RouterArtifact.HIDDEN];
        float[] w2 = new float[RouterArtifact.HIDDEN];
        w1[RouterArtifact.HIDDEN] = 1f;
        w2[0] = 1f;
        // prompts skip nothing, so every token-block skipped below is a decoding token's
        RouterArtifact plain = new RouterArtifact(model.fingerprint(), "test", new SparsitySchedule(new double[5]),
                w1, new float[RouterArtifact.HIDDEN], w2, 0f, "importance", null, "all",
                new SparsitySchedule(new double[] {0, 0.5, 0.5, 0.5, 0}));
        double[] t = DecodeCalibration.thresholds(model, plain, DOCS);
        assertEquals(5 * DecodeCalibration.buckets(), t.length, "one cut per block and position bucket");
        for (int b = 0; b < DecodeCalibration.buckets(); b++) {
            assertEquals(-Double.MAX_VALUE, t[b * 5]);
            assertEquals(-Double.MAX_VALUE, t[b * 5 + 4]);
            for (int l = 1; l < 4; l++) {
                assertTrue(t[b * 5 + l] > 0 && t[b * 5 + l] < 20, "a cut inside the importance range: " + t[b * 5 + l]);
            }
        }
        RouterArtifact calibrated = plain.withDecodeThresholds(t, "calibrated");
        // served on the calibration documents themselves: the cuts give the share they were set for
        var served = new ServingEvaluator(model, true).compare(DOCS, List.of(Variants.of(calibrated.routerFor(model, null), null)),
                i -> { }).variants().get(0).result().flops().savings();
        long decoding = DOCS.stream().mapToLong(d -> d.length - 1 - ServingEvaluator.promptLength(d.length)).sum();
        assertEquals(0.5, served.tokenBlocksSkipped() / (3.0 * decoding), 0.08, "half of blocks 1-3 for decoding tokens");
        // with the sign rule instead, every token scores >= 0 and nothing is skipped
        var unsigned = new PerplexityEvaluator(model).compareDecode(DOCS, plain.routerFor(model, null), i -> { });
        assertEquals(0, unsigned.routed().flops().savings().tokenBlocksSkipped());
    }

    @Test
    void aDecodeScheduleOfZeroRoutesPromptsOnly() {
        LlamaModel model = TestModels.model();
        RouterArtifact a = new RouterArtifact(model.fingerprint(), "test", SparsitySchedule.uniform(0.4, 5),
                new float[RouterFeatures.COUNT * RouterArtifact.HIDDEN], new float[RouterArtifact.HIDDEN],
                new float[RouterArtifact.HIDDEN], -1f, "constant", null, "all", SparsitySchedule.uniform(0, 5));
        LearnedRouter r = a.routerFor(model, null);
        assertTrue(r.describe().contains("decode [0.00"), r.describe());
        var decode = new PerplexityEvaluator(model).compareDecode(DOCS, r, i -> { });
        assertEquals(0, decode.routed().flops().savings().tokenBlocksSkipped(), "no decoding token skips");
        r.begin(true, 20);
        assertEquals(12, r.keepPrefill(1, TokenRouter.all(20)).length, "the prompt keeps 60%");
    }

    @Test
    void decodeSharesAvoidTheBlocksThatTurnTokensMost() {
        LlamaModel model = TestModels.model();
        double[] influence = BlockInfluence.measure(model, DOCS);
        SparsitySchedule shares = DecodeCalibration.shares(model, DOCS, 0.2);
        assertEquals(0.2, shares.mean(), 1e-9);
        for (int i = 0; i < influence.length; i++) {
            for (int j = 0; j < influence.length; j++) {
                if (influence[i] > influence[j]) {
                    assertTrue(shares.at(i) <= shares.at(j) + 1e-12, "block " + i + " (influence " + influence[i]
                            + ") skips no more than block " + j + " (" + influence[j] + "): " + shares);
                }
            }
            // inverse squared: the ratio of two uncapped shares is the inverse ratio of their influences, squared
            if (shares.at(i) < 1 && shares.at(0) < 1) {
                assertEquals(Math.pow(influence[0] / influence[i], 2), shares.at(i) / shares.at(0), 1e-6);
            }
        }
    }

    @Test
    void decodePositionsFallIntoBuckets() {
        assertEquals(0, DecodeCalibration.bucket(0));
        assertEquals(0, DecodeCalibration.bucket(15));
        assertEquals(1, DecodeCalibration.bucket(16));
        assertEquals(2, DecodeCalibration.bucket(63));
        assertEquals(4, DecodeCalibration.bucket(128));
        assertEquals(DecodeCalibration.buckets() - 1, DecodeCalibration.bucket(100_000));
    }

    @Test
    void quantileCutLeavesTheShareBelow() {
        float[] scores = {5, 1, 4, 2, 3};
        assertEquals(2.5, DecodeCalibration.quantileCut(scores, 0.4));
        assertEquals(-Double.MAX_VALUE, DecodeCalibration.quantileCut(scores, 0));
        assertEquals(Double.MAX_VALUE, DecodeCalibration.quantileCut(scores, 1));
    }
}
