package dev.skipflow.model.decoder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.skipflow.model.LlamaWeights;
import dev.skipflow.model.ScalarLlama;
import dev.skipflow.model.TestModels;
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
            int v = model.config().vocabSize();
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
        try (BatchEngine engine = new BatchEngine(model, 8, 512)) {
            for (String prompt : PROMPTS) {
                int[] tokens = TestModels.tokenizer().encode(prompt, true);
                int[] expected = new ScalarLlama(TestModels.weights()).greedy(tokens, 256);
                Sequence s = new Sequence(prompt, tokens, SamplingParams.greedy(256));
                engine.submit(s);
                while (!s.isFinished()) {
                    engine.step();
                }
                assertArrayEquals(expected, s.generated(), prompt);
                assertTrue(expected.length > 20, "reference produced a real continuation");
                assertEquals(expected.length == 256 ? Sequence.FinishReason.LENGTH : Sequence.FinishReason.STOP,
                        s.finishReason());
            }
        }
    }

    static float[] decodeOne(LlamaModel model, KvCache cache, int slot, int pos, int token) {
        try (NDManager step = model.newStepManager()) {
            TokenBatch batch = TokenBatch.decode(model, step, new int[] {slot}, new int[] {pos});
            NDArray x = model.embed(batch, new int[] {token});
            for (int l = 0; l < model.config().nLayers(); l++) {
                x = model.block(l, x, batch, cache);
            }
            return model.logits(x).toFloatArray();
        }
    }
}
