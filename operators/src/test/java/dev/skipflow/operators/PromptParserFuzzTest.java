package dev.skipflow.operators;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skipflow.model.ModelSource;
import dev.skipflow.model.tokenizer.Tokenizer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;
import net.jqwik.api.lifecycle.BeforeContainer;

/**
 * Property-based fuzzing of the request parser (jqwik) against the real stories260K tokenizer: random bytes, JSON
 * with wrong types, huge numbers, deep nesting, truncation, invalid UTF-8 and 10 MB payloads. For every input the
 * parser returns, without throwing, either a valid request within the limits or a dead letter that keeps where the
 * record came from and whose reason is short, specific (names a field, the JSON, the encoding or a limit and its
 * flag) and is not the parser's last-resort catch-all.
 *
 * <p>CI runs {@code jqwik.tries.default} (400) cases per property; a longer run: {@code -Djqwik.tries.default=100000}.
 */
class PromptParserFuzzTest {

    static Tokenizer tokenizer;
    static final int CONTEXT = 512;
    static final PromptLimits LIMITS = new PromptLimits(8192, 200, 300);
    /** For the 10 MB cases: the payload limit raised so the parser really reads them. */
    static final PromptLimits HUGE = new PromptLimits(16 << 20, 200, 300);

    @BeforeContainer
    static void load() {
        Path shared = Path.of(System.getProperty("skipflow.shared", "../../shared"));
        ModelSource source = new ModelSource(shared.resolve("models/stories260K/stories260K.bin").toString(),
                shared.resolve("models/stories260K/tok512.bin").toString(), null, "cpu");
        tokenizer = source.loadTokenizer(source.spec().vocabSize());
    }

    static Object check(byte[] bytes, PromptLimits limits) {
        RawPrompt raw = new RawPrompt("prompts", 2, 77L, null, bytes);
        Object r = PromptParser.parse(raw, tokenizer, CONTEXT, limits, 5L);
        assertNotNull(r);
        if (r instanceof PromptRequest q) {
            assertTrue(q.id().codePointCount(0, q.id().length()) >= 1 && q.id().length() <= 2 * PromptParser.MAX_ID_LENGTH);
            assertFalse(q.prompt().isEmpty());
            assertTrue(q.maxTokens() >= 1 && q.maxTokens() <= limits.maxCompletionTokens(), "maxTokens " + q.maxTokens());
            assertTrue(q.promptTokens().length <= limits.maxPromptTokens());
            assertTrue(q.promptTokens().length + q.maxTokens() - 1 <= CONTEXT);
            assertTrue(q.temperature() >= 0 && q.temperature() <= PromptParser.MAX_TEMPERATURE);
            assertTrue(q.topP() > 0 && q.topP() <= 1);
            assertEquals(77L, q.offset());
            return r;
        }
        DeadLetter d = (DeadLetter) r;
        String e = d.error();
        assertFalse(e.isBlank());
        assertFalse(e.startsWith("the request could not be read"), "the parser threw: " + e);
        assertTrue(e.length() <= 600, "a reason a person can read, not " + e.length() + " characters");
        assertTrue(ACTIONABLE.stream().anyMatch(e::contains), "reason names what to fix: " + e);
        assertEquals("prompts", d.topic());
        assertEquals(2, d.partition());
        assertEquals(77L, d.offset());
        assertNotNull(d.payload());
        assertTrue(d.payload().length() <= limits.maxPayloadBytes() * 4 / 3 + 4, "dead letter payload is bounded");
        return r;
    }

    static final List<String> ACTIONABLE = List.of("\"id\"", "\"prompt\"", "\"maxTokens\"", "\"temperature\"", "\"topP\"",
            "\"seed\"", "\"adaptive\"", "JSON", "UTF-8", "empty record", "--max-payload-bytes", "--max-prompt-tokens",
            "context holds");

    @Property
    void anyBytesBecomeARequestOrADeadLetter(@ForAll @Size(max = 3000) byte[] bytes) {
        check(bytes, LIMITS);
    }

    @Property
    void anyTextBecomesARequestOrADeadLetter(@ForAll @Size(max = 2000) String text) {
        check(text.getBytes(StandardCharsets.UTF_8), LIMITS);
    }

    @Property
    void requestShapedJsonWithAnyFieldValues(@ForAll("requests") String json) {
        check(json.getBytes(StandardCharsets.UTF_8), LIMITS);
    }

    @Property
    void truncatedRequests(@ForAll("requests") String json, @ForAll @IntRange(min = 0, max = 100) int percent) {
        byte[] b = json.getBytes(StandardCharsets.UTF_8);
        check(java.util.Arrays.copyOf(b, b.length * percent / 100), LIMITS);
    }

    @Property
    void invalidUtf8InsideRequests(@ForAll("requests") String json, @ForAll("badUtf8") byte[] bad,
            @ForAll @IntRange(min = 0, max = 100) int percent) {
        byte[] b = json.getBytes(StandardCharsets.UTF_8);
        int at = b.length * percent / 100;
        byte[] out = new byte[b.length + bad.length];
        System.arraycopy(b, 0, out, 0, at);
        System.arraycopy(bad, 0, out, at, bad.length);
        System.arraycopy(b, at, out, at + bad.length, b.length - at);
        Object r = check(out, LIMITS);
        assertTrue(r instanceof DeadLetter, "invalid UTF-8 is refused");
    }

    @Property
    void deepNesting(@ForAll @IntRange(min = 1, max = 5000) int depth, @ForAll boolean object) {
        StringBuilder b = new StringBuilder("{\"id\":\"n\",\"prompt\":\"Hi\",\"extra\":");
        for (int i = 0; i < depth; i++) {
            b.append(object ? "{\"a\":" : "[");
        }
        b.append("1");
        for (int i = 0; i < depth; i++) {
            b.append(object ? "}" : "]");
        }
        b.append("}");
        check(b.toString().getBytes(StandardCharsets.UTF_8), LIMITS);
    }

    @Property(tries = 4)
    void tenMegabytePayloads(@ForAll @IntRange(min = 0, max = 3) int kind) {
        int size = 10 << 20;
        StringBuilder b = new StringBuilder(size + 100);
        switch (kind) {
            case 0 -> b.append("{\"id\":\"big\",\"prompt\":\"").append("Once upon a time ".repeat(size / 17)).append("\"}");
            case 1 -> b.append("{\"id\":\"big\",\"prompt\":\"Hi\",\"maxTokens\":").append("9".repeat(size)).append("}");
            case 2 -> b.append("[".repeat(size / 2)).append("]".repeat(size / 2));
            default -> b.append("{\"id\":\"").append("x".repeat(size)).append("\",\"prompt\":\"Hi\"}");
        }
        byte[] bytes = b.toString().getBytes(StandardCharsets.UTF_8);
        long t0 = System.nanoTime();
        Object r = check(bytes, HUGE);
        assertTrue(r instanceof DeadLetter, "a 10 MB request is refused");
        assertTrue(System.nanoTime() - t0 < 20_000_000_000L, "a 10 MB payload is handled in well under 20 s");
        Object small = check(bytes, LIMITS); // and under the usual limit, refused unread
        assertTrue(((DeadLetter) small).error().contains("--max-payload-bytes"));
    }

    @Example
    void limitsNameTheirFlags() {
        DeadLetter tokens = (DeadLetter) check("{\"id\":\"a\",\"prompt\":\"Hi\",\"maxTokens\":201}"
                .getBytes(StandardCharsets.UTF_8), LIMITS);
        assertTrue(tokens.error().contains("--max-completion-tokens"), tokens.error());
        DeadLetter prompt = (DeadLetter) check(("{\"id\":\"a\",\"prompt\":\"" + "the dog ran. ".repeat(120) + "\"}")
                .getBytes(StandardCharsets.UTF_8), LIMITS);
        assertTrue(prompt.error().contains("--max-prompt-tokens"), prompt.error());
        DeadLetter size = (DeadLetter) check(new byte[9000], LIMITS);
        assertTrue(size.error().contains("--max-payload-bytes"), size.error());
        assertTrue(size.payload().length() <= 8192 * 4 / 3 + 4, "oversized records are cut in the dead letter");
    }

    @Provide
    Arbitrary<byte[]> badUtf8() {
        return Arbitraries.of(new byte[] {(byte) 0xC3, 0x28}, new byte[] {(byte) 0xFF}, new byte[] {(byte) 0xED, (byte) 0xA0,
                (byte) 0x80}, new byte[] {(byte) 0xF0, (byte) 0x9F}, new byte[] {(byte) 0x80}, new byte[] {(byte) 0xC0,
                (byte) 0xAF}, new byte[] {(byte) 0xF8, (byte) 0x88, (byte) 0x80, (byte) 0x80, (byte) 0x80});
    }

    /** JSON objects shaped like requests: each known field missing, null, of any type or extreme value. */
    @Provide
    Arbitrary<String> requests() {
        Arbitrary<String> id = Arbitraries.oneOf(Arbitraries.strings().ofMinLength(0).ofMaxLength(140).map(PromptParserFuzzTest::quote),
                anyValue());
        Arbitrary<String> prompt = Arbitraries.oneOf(
                Arbitraries.strings().withChars("abcdefghij .,!'\"\\\u00e9\u4e2d\ud83d\ude00\t\n").ofMaxLength(400)
                        .map(PromptParserFuzzTest::quote),
                Arbitraries.strings().ofMaxLength(200).map(PromptParserFuzzTest::quote), anyValue());
        Arbitrary<String> number = Arbitraries.oneOf(Arbitraries.integers().between(-5, 600).map(String::valueOf),
                Arbitraries.longs().map(String::valueOf), Arbitraries.doubles().map(String::valueOf),
                Arbitraries.of("1e400", "-1e400", "2147483648", "9223372036854775808", "1.0", "0.5", "-0", "1E2",
                        "123456789012345678901234567890", "0.0000000000000000000001", "NaN", "Infinity"),
                anyValue());
        List<Arbitrary<String>> fields = new ArrayList<>();
        fields.add(field("id", id));
        fields.add(field("prompt", prompt));
        fields.add(field("maxTokens", number));
        fields.add(field("temperature", number));
        fields.add(field("topP", number));
        fields.add(field("seed", number));
        fields.add(field("adaptive", Arbitraries.oneOf(Arbitraries.of("true", "false"), anyValue())));
        fields.add(field("unknown" , anyValue()));
        return Combinators.combine(fields).as(parts -> {
            List<String> present = new ArrayList<>();
            for (String p : parts) {
                if (!p.isEmpty()) {
                    present.add(p);
                }
            }
            return "{" + String.join(",", present) + "}";
        });
    }

    /** "name": value, sometimes absent (empty string), sometimes twice. */
    static Arbitrary<String> field(String name, Arbitrary<String> value) {
        return Combinators.combine(value, Arbitraries.integers().between(0, 9)).as((v, k) ->
                k == 0 ? "" : k == 1 ? quote(name) + ":" + v + "," + quote(name) + ":" + v : quote(name) + ":" + v);
    }

    static Arbitrary<String> anyValue() {
        return Arbitraries.oneOf(Arbitraries.of("null", "true", "false", "[]", "{}", "[1,2,3]", "{\"a\":{\"b\":[null]}}",
                        "\"\"", "\"64\"", "-1", "0", "1e308"),
                Arbitraries.strings().ofMaxLength(30).map(PromptParserFuzzTest::quote),
                Arbitraries.integers().map(String::valueOf));
    }

    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                default -> {
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        return b.append('"').toString();
    }
}
