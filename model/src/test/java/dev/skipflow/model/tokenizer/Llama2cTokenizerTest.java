package dev.skipflow.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skipflow.model.TestModels;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class Llama2cTokenizerTest {

    /** run.c's encode, literally: O(n^2) scan for the best pair each round. */
    static int[] naiveEncode(Llama2cTokenizer t, String text) {
        List<Integer> tokens = new ArrayList<>();
        if (!text.isEmpty()) {
            tokens.add(lookup(t, " "));
        }
        text.codePoints().forEach(cp -> {
            String s = new String(Character.toChars(cp));
            int id = lookup(t, s);
            if (id >= 0) {
                tokens.add(id);
            } else {
                for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
                    tokens.add((b & 0xff) + 3);
                }
            }
        });
        while (true) {
            float bestScore = -1e10f;
            int bestId = -1;
            int bestIdx = -1;
            for (int i = 0; i < tokens.size() - 1; i++) {
                int id = lookup(t, t.piece(tokens.get(i)) + t.piece(tokens.get(i + 1)));
                if (id != -1 && score(t, id) > bestScore) {
                    bestScore = score(t, id);
                    bestId = id;
                    bestIdx = i;
                }
            }
            if (bestIdx == -1) {
                break;
            }
            tokens.set(bestIdx, bestId);
            tokens.remove(bestIdx + 1);
        }
        return tokens.stream().mapToInt(Integer::intValue).toArray();
    }

    static java.util.Map<String, Integer> index;

    /** run.c's str_lookup (a sorted-vocabulary bsearch there; a map here). */
    static int lookup(Llama2cTokenizer t, String s) {
        if (index == null) {
            index = new java.util.HashMap<>();
            for (int i = t.vocabSize() - 1; i >= 0; i--) {
                index.put(t.piece(i), i);
            }
        }
        return index.getOrDefault(s, -1);
    }

    /** Merge scores, read straight from the tokenizer file (independently of the class under test). */
    static float score(Llama2cTokenizer t, int id) {
        return SCORES[id];
    }

    static float[] SCORES;

    @Test
    void encodesExactlyLikeRunCOnTrainingTextAndTrickyStrings() throws Exception {
        Llama2cTokenizer t = TestModels.tokenizer();
        SCORES = readScores();
        List<String> samples = new ArrayList<>(List.of("Once upon a time", "héllo wörld ✓ 日本", " leading space",
                "tabs\tand\nnewlines", "emoji 🙂 test", "a", "  ", "The end."));
        List<String> lines = Files.readAllLines(TestModels.shared().resolve("data/tinystories-train-sample.txt"));
        for (int i = 0; i < 40; i++) {
            String line = lines.get(i * 7);
            samples.add(line.length() > 600 ? line.substring(0, 600) : line);
        }
        for (String s : samples) {
            int[] expected = naiveEncode(t, s);
            int[] withBos = t.encode(s, true);
            assertEquals(Tokenizer.BOS, withBos[0]);
            assertArrayEquals(expected, t.encode(s, false), s);
        }
    }

    @Test
    void decodeRoundTripsAndHandlesByteFallbackAndBadBytes() {
        Llama2cTokenizer t = TestModels.tokenizer();
        for (String s : List.of("Once upon a time, Lily ran.", "héllo wörld ✓ 日本 🙂", "x")) {
            int[] ids = t.encode(s, true);
            int[] body = java.util.Arrays.copyOfRange(ids, 1, ids.length);
            assertEquals(s, t.decode(Tokenizer.BOS, body), "round trip of " + s);
        }
        // a lone continuation byte and a truncated 3-byte sequence: replaced, never thrown
        int lone = 0x80 + 3;
        int lead = 0xE6 + 3;
        String bad = t.decode(300, new int[] {lone, lead});
        assertTrue(bad.contains("\uFFFD"), bad);
        // a character split over byte tokens streams out whole once complete
        Utf8Stream stream = new Utf8Stream();
        assertEquals("", stream.push(new byte[] {(byte) 0xE6}));
        assertEquals("", stream.push(new byte[] {(byte) 0x97}));
        assertEquals("日", stream.push(new byte[] {(byte) 0xA5}));
        assertEquals("", stream.flush());
        // out-of-range ids decode to nothing rather than throwing
        assertEquals("", t.decode(300, new int[] {-1, 100000}));
    }

    @Test
    void encodesLongTextWithoutQuadraticBlowUp() throws Exception {
        // The whole 197 KB calibration file as one string: run.c's scan would need ~10^10 pair checks.
        String all = Files.readString(TestModels.shared().resolve("data/tinystories-train-sample.txt"));
        int[] ids = TestModels.tokenizer().encode(all, false);
        assertTrue(ids.length > 40_000 && ids.length < all.length(), "tokens: " + ids.length);
        String again = TestModels.tokenizer().decode(Tokenizer.BOS, ids);
        assertEquals(all, again);
    }

    static float[] readScores() throws Exception {
        byte[] b = Files.readAllBytes(TestModels.shared().resolve("models/stories260K/tok512.bin"));
        var buf = java.nio.ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        buf.getInt();
        float[] s = new float[512];
        for (int i = 0; i < 512; i++) {
            s[i] = buf.getFloat();
            int len = buf.getInt();
            buf.position(buf.position() + len);
        }
        return s;
    }
}
