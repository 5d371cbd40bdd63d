package dev.skipflow.model.decoder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import dev.skipflow.model.weights.LlamaWeights;
import dev.skipflow.model.ScalarLlama;
import dev.skipflow.model.TestModels;
import dev.skipflow.model.engine.BatchEngine;
import dev.skipflow.model.engine.Sequence;
import dev.skipflow.model.sampling.SamplingParams;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The DJL decoder against the scalar run.c-style reference on the real stories260K weights. */
class ReferenceForwardTest {

    static final List<String> PROMPTS = List.of("Once upon a time", "Lily and Tom went to the park",
            "The little dog", "One day, a girl named Sue", "There was a big red ball");

    @Test
    void prefillLogitsMatchScalarReferenceAtEveryPosition() {
        LlamaModel model = TestModels.model();
        for (String prompt : PROMPTS) {
            int[] tokens = TestModels.tokenizer().encode(prompt, true);
            ScalarLlama ref = new ScalarLlama(TestModels.weights());
            float[] djl = TestModels.prefillLogits(model, tokens);
            int v = model.spec().vocabSize();
            for (int pos = 0; pos < tokens.length; pos++) {
                float[] expected = ref.forward(tokens[pos], pos);
                float[] actual = java.util.Arrays.copyOfRange(djl, pos * v, (pos + 1) * v);
                assertArrayEquals(expected, actual, 1e-4f, prompt + " position " + pos);
            }
        }
    }

    @Test
    void decodeStepLogitsMatchScalarReferenceDeepIntoTheContext() {
        // Feed a long greedy continuation one token at a time through the batched decode path.
        LlamaModel model = TestModels.model();
        LlamaWeights w = TestModels.weights();
        int[] prompt = TestModels.tokenizer().encode("Once upon a time", true);
        ScalarLlama ref = new ScalarLlama(w);
        int[] stream = ref.greedy(prompt, 200);
        int[] all = new int[prompt.length + stream.length];
        System.arraycopy(prompt, 0, all, 0, prompt.length);
        System.arraycopy(stream, 0, all, prompt.length, stream.length);
        ScalarLlama check = new ScalarLlama(w);
        try (KvCache cache = new KvCache(model, 3, 256)) {
            for (int pos = 0; pos < all.length; pos++) {
                float[] expected = check.forward(all[pos], pos);
                if (pos % 37 != 0 && pos != all.length - 1) {
                    decodeOne(model, cache, 2, pos, all[pos]);
                    continue;
                }
                float[] actual = decodeOne(model, cache, 2, pos, all[pos]);
                assertArrayEquals(expected, actual, 1e-4f, "position " + pos);
            }
        }
    }

    @Test
    void engineGreedyGenerationEqualsScalarReferenceTokenForToken() {
        LlamaModel model = TestModels.model();
        // tokens are compared while the top-1 margin is clear of rounding (DESIGN §5: the dense path is exact)
        int compared = 0;
        try (BatchEngine engine = TestModels.engine(8, 512)) {
            for (String prompt : PROMPTS) {
                int[] tokens = TestModels.tokenizer().encode(prompt, true);
                int[] expected = new ScalarLlama(TestModels.weights()).greedy(tokens, 256);
                Sequence s = new Sequence(prompt, tokens, SamplingParams.greedy(256));
                TestModels.runAlone(engine, s);
                assertTrue(expected.length > 20, "reference produced a real continuation");
                int agreed = TestModels.assertGreedyAgrees(model, tokens, expected, s.generated(), prompt);
                if (agreed == expected.length) {
                    assertEquals(expected.length == 256 ? Sequence.FinishReason.LENGTH : Sequence.FinishReason.STOP,
                            s.finishReason());
                }
                compared += agreed;
            }
        }
        assertTrue(compared > 400, "compared " + compared + " tokens of the five prompts");
    }

    static float[] decodeOne(LlamaModel model, KvCache cache, int slot, int pos, int token) {
        try (NDManager step = model.newStepManager()) {
            var row = List.of(new Forward.Row(slot, pos, token, null, null, false, false, true));
            return Forward.run(model, cache, step, false, row, Forward.Plan.DENSE).logits(0);
        }
    }
}
