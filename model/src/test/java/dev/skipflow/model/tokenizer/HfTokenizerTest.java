package dev.skipflow.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skipflow.model.io.ModelFormatException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** tokenizer.json through DJL's HuggingFace binding, on a small word-level tokenizer the test writes. */
class HfTokenizerTest {

    @TempDir
    Path dir;

    @Test
    void encodesAndDecodesAWordLevelTokenizerJson() throws Exception {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, """
                {"version": "1.0", "truncation": null, "padding": null,
                 "added_tokens": [
                   {"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
                   {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
                   {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
                 "normalizer": null,
                 "pre_tokenizer": {"type": "Whitespace"},
                 "post_processor": null,
                 "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
                 "model": {"type": "WordLevel", "unk_token": "<unk>",
                   "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "once": 3, "upon": 4, "a": 5, "time": 6}}}
                """);
        Tokenizer t = Tokenizers.load(file, 7);
        assertEquals(1, t.bos());
        assertEquals(2, t.eos());
        assertArrayEquals(new int[] {1, 3, 4, 5, 6}, t.encode("once upon a time", true));
        assertArrayEquals(new int[] {3, 0, 6}, t.encode("once dragon time", false));
        assertEquals("once upon a time", t.decode(1, new int[] {3, 4, 5, 6}));
    }

    @Test
    void refusesAFileThatIsNotATokenizer() throws Exception {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, "{\"not\": \"a tokenizer\"}");
        var e = assertThrows(ModelFormatException.class, () -> Tokenizers.load(file, 10));
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        assertThrows(ModelFormatException.class, () -> Tokenizers.load(dir.resolve("missing.json"), 10));
    }
}
