package dev.skipflow.model.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.skipflow.model.TestModels;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.io.HfCheckpoint;
import dev.skipflow.model.io.ModelLoader;
import dev.skipflow.model.sampling.SamplingParams;
import dev.skipflow.model.tokenizer.Tokenizer;
import dev.skipflow.model.tokenizer.Tokenizers;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Generation stops on the tokenizer's own end-of-text tokens, not on llama2.c's ids 1 and 2. */
class StopTokensTest {

    @TempDir
    Path dir;

    @Test
    void aHuggingFaceModelWhoseEosIsNotTwoStopsOnItsEosAndNotOnOneOrTwo() throws Exception {
        // stories260K's greedy continuation, run with no stop token at all, passes ids 1 or 2 (its story breaks)
        int[] prompt = null;
        int[] stream = null;
        int through = -1;
        try (BatchEngine free = BatchEngine.builder(TestModels.model()).maxBatch(1).context(512).stopTokens(Set.of())
                .build()) {
            for (String p : new String[] {"Once upon a time", "The little dog", "Tim had a toy car."}) {
                prompt = TestModels.tokenizer().encode(p, true);
                stream = TestModels.runAlone(free, new Sequence(p, prompt, SamplingParams.greedy(300)));
                through = firstOf(stream, 1, 2, 0);
                if (through >= 0) {
                    break;
                }
            }
        }
        assertTrue(through >= 0, "a continuation that passes token 1 or 2");
        // the Hugging Face folder's end of text: a token that first appears after that
        int eosAt = -1;
        for (int k = through + 1; k < stream.length && eosAt < 0; k++) {
            if (stream[k] > 2 && firstOf(stream, stream[k], stream[k], 0) == k) {
                eosAt = k;
            }
        }
        assertTrue(eosAt > through, "a token first seen after the story break");
        int eos = stream[eosAt];

        Path folder = dir.resolve("hf");
        HfCheckpoint.write(TestModels.weights(), folder, "F32");
        Path tokenizerFile = folder.resolve("tokenizer.json");
        Files.writeString(tokenizerFile, wordLevelTokenizer(512, eos));
        Tokenizer tokenizer = Tokenizers.load(tokenizerFile, 512);
        assertEquals(Set.of(eos), tokenizer.stopTokens());
        try (LlamaModel model = new LlamaModel(ModelLoader.load(folder), Device.cpu());
                BatchEngine engine = BatchEngine.builder(model).maxBatch(1).context(512).stopTokens(tokenizer).build()) {
            Sequence s = new Sequence("hf", prompt, SamplingParams.greedy(300));
            int[] got = TestModels.runAlone(engine, s);
            int[] expected = java.util.Arrays.copyOf(stream, eosAt);
            int compared = TestModels.assertGreedyAgrees(model, prompt, expected, got, "the HF folder's greedy stream");
            assertEquals(eosAt, compared, "every token up to its EOS compared (margins clear)");
            assertEquals(Sequence.FinishReason.STOP, s.finishReason(), "stopped on " + eos);
            assertTrue(firstOf(got, 1, 2, 0) == through, "went on through id " + stream[through]);
        }
    }

    /** First index from {@code from} holding {@code a} or {@code b}; -1 if none. */
    static int firstOf(int[] s, int a, int b, int from) {
        for (int i = from; i < s.length; i++) {
            if (s[i] == a || s[i] == b) {
                return i;
            }
        }
        return -1;
    }

    /** A word-level tokenizer.json with ids 0..v-1, "<s>" at 1 and "</s>" at {@code eos}; 2 is an ordinary word. */
    static String wordLevelTokenizer(int v, int eos) {
        StringBuilder vocab = new StringBuilder();
        for (int i = 0; i < v; i++) {
            String word = i == 0 ? "<unk>" : i == 1 ? "<s>" : i == eos ? "</s>" : "w" + i;
            vocab.append(i == 0 ? "" : ", ").append('"').append(word).append("\": ").append(i);
        }
        String special = "\"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true";
        return "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": ["
                + "{\"id\": 0, \"content\": \"<unk>\", " + special + "},"
                + "{\"id\": 1, \"content\": \"<s>\", " + special + "},"
                + "{\"id\": " + eos + ", \"content\": \"</s>\", " + special + "}],"
                + "\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Whitespace\"}, \"post_processor\": null,"
                + "\"decoder\": {\"type\": \"WordPiece\", \"prefix\": \"##\", \"cleanup\": true},"
                + "\"model\": {\"type\": \"WordLevel\", \"unk_token\": \"<unk>\", \"vocab\": {" + vocab + "}}}";
    }
}
