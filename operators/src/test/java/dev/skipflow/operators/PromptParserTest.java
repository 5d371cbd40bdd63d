package dev.skipflow.operators;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skipflow.model.ModelSource;
import dev.skipflow.model.tokenizer.Tokenizer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Request validation against the real stories260K tokenizer (context 512). */
class PromptParserTest {

    static Tokenizer tokenizer;

    @BeforeAll
    static void load() {
        Path shared = Path.of(System.getProperty("skipflow.shared", "../../shared"));
        ModelSource source = new ModelSource(shared.resolve("models/stories260K/stories260K.bin").toString(),
                shared.resolve("models/stories260K/tok512.bin").toString(), null, "cpu");
        tokenizer = source.loadTokenizer(source.spec().vocabSize());
    }

    static Object parse(String json) {
        return parse(json.getBytes(StandardCharsets.UTF_8));
    }

    static Object parse(byte[] bytes) {
        return PromptParser.parse(new RawPrompt("prompts", 3, 42L, null, bytes), tokenizer, 512, 2048, 1000L);
    }

    @Test
    void appliesDefaultsAndIgnoresUnknownFields() {
        PromptRequest r = assertInstanceOf(PromptRequest.class,
                parse("{\"id\": \"r-1\", \"prompt\": \"Once upon a time\", \"colour\": \"blue\"}"));
        assertEquals("r-1", r.id());
        assertEquals(64, r.maxTokens());
        assertEquals(0f, r.temperature());
        assertEquals(1f, r.topP());
        assertNull(r.seed());
        assertTrue(r.adaptive());
        assertArrayEquals(tokenizer.encode("Once upon a time", true), r.promptTokens());
        assertEquals(1000L, r.receivedAtMillis());

        PromptRequest s = assertInstanceOf(PromptRequest.class, parse(
                "{\"id\":\"r-2\",\"prompt\":\"Hi\",\"maxTokens\":5,\"temperature\":0.7,\"topP\":0.9,\"seed\":7,\"adaptive\":false,\"seed2\":null}"));
        assertEquals(5, s.maxTokens());
        assertEquals(0.7f, s.temperature());
        assertEquals(7L, s.seed());
        assertEquals(false, s.adaptive());
    }

    @Test
    void everyProblemBecomesADeadLetterWithAReasonAndWhereItCameFrom() {
        List<String[]> cases = List.of(
                new String[] {"not json", "not valid JSON"},
                new String[] {"[1]", "must be a JSON object, got array"},
                new String[] {"\"text\"", "must be a JSON object, got string"},
                new String[] {"{\"prompt\": \"x\"}", "missing required field \"id\""},
                new String[] {"{\"id\": null, \"prompt\": \"x\"}", "missing required field \"id\""},
                new String[] {"{\"id\": 5, \"prompt\": \"x\"}", "\"id\" must be a string, got number 5"},
                new String[] {"{\"id\": \"\", \"prompt\": \"x\"}", "\"id\" must be 1-128 characters, got 0"},
                new String[] {"{\"id\": \"a\"}", "missing required field \"prompt\" (request a)"},
                new String[] {"{\"id\": \"a\", \"prompt\": [\"x\"]}", "\"prompt\" must be a string"},
                new String[] {"{\"id\": \"a\", \"prompt\": \"\"}", "\"prompt\" must not be empty"},
                new String[] {"{\"id\": \"a\", \"prompt\": \"x\", \"maxTokens\": 2.5}", "\"maxTokens\" must be an integer from 1 to 512"},
                new String[] {"{\"id\": \"a\", \"prompt\": \"x\", \"maxTokens\": 513}", "from 1 to 512, got 513"},
                new String[] {"{\"id\": \"a\", \"prompt\": \"x\", \"temperature\": \"hot\"}", "\"temperature\" must be a number from 0 to 10"},
                new String[] {"{\"id\": \"a\", \"prompt\": \"x\", \"temperature\": 11}", "\"temperature\""},
                new String[] {"{\"id\": \"a\", \"prompt\": \"x\", \"topP\": 1.01}", "\"topP\" must be a number in (0, 1]"},
                new String[] {"{\"id\": \"a\", \"prompt\": \"x\", \"seed\": 1.5}", "\"seed\" must be an integer"},
                new String[] {"{\"id\": \"a\", \"prompt\": \"x\", \"adaptive\": 1}", "\"adaptive\" must be true or false"},
                new String[] {"{\"id\": \"a\", \"prompt\": \"" + "word ".repeat(400) + "\", \"maxTokens\": 200}",
                    "context holds 512"});
        for (String[] c : cases) {
            DeadLetter d = assertInstanceOf(DeadLetter.class, parse(c[0]), c[0]);
            assertTrue(d.error().contains(c[1]), "'" + d.error() + "' should contain '" + c[1] + "'");
            assertEquals("prompts", d.topic());
            assertEquals(3, d.partition());
            assertEquals(42L, d.offset());
            assertEquals(c[0], d.payload());
        }
    }

    @Test
    void bytesThatAreNotTextAreReportedInBase64AndOversizeRecordsAreRefusedUnread() {
        byte[] bad = {(byte) 0xFF, (byte) 0xFE, 0x41};
        DeadLetter d = assertInstanceOf(DeadLetter.class, parse(bad));
        assertTrue(d.error().contains("not valid UTF-8"), d.error());
        assertArrayEquals(bad, Base64.getDecoder().decode(d.payload()));

        DeadLetter empty = assertInstanceOf(DeadLetter.class, parse(new byte[0]));
        assertTrue(empty.error().startsWith("empty record"), empty.error());
        DeadLetter tombstone = assertInstanceOf(DeadLetter.class, parse((byte[]) null));
        assertEquals("", tombstone.payload());

        DeadLetter big = assertInstanceOf(DeadLetter.class, parse("{\"id\":\"a\",\"prompt\":\"" + "x".repeat(3000) + "\"}"));
        assertTrue(big.error().contains("the limit is 2048"), big.error());
    }

    @Test
    void percentilesAreNearestRank() {
        List<Long> v = List.of(1L, 2L, 3L, 4L, 5L, 6L, 7L, 8L, 9L, 10L);
        assertEquals(5, MetricsAggregate.percentile(v, 0.5));
        assertEquals(10, MetricsAggregate.percentile(v, 0.99));
        assertEquals(0, MetricsAggregate.percentile(List.of(), 0.5));
    }
}
