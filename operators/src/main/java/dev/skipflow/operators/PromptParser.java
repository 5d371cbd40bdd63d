package dev.skipflow.operators;

import com.fasterxml.jackson.databind.JsonNode;
import dev.skipflow.model.spec.ModelSpec;
import dev.skipflow.model.ModelSource;
import dev.skipflow.model.engine.Scheduler;
import dev.skipflow.model.sampling.SamplingParams;
import dev.skipflow.model.tokenizer.Tokenizer;
import dev.skipflow.operators.internal.EngineSlot;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

/**
 * Parses and validates prompt records (DESIGN §4). Valid ones leave tokenized; everything else leaves on
 * {@link #DEAD_LETTERS} with a reason a person can act on. Never throws for bad input.
 */
public final class PromptParser extends ProcessFunction<RawPrompt, PromptRequest> {

    public static final OutputTag<DeadLetter> DEAD_LETTERS = new OutputTag<>("dead-letters") {};

    public static final int MAX_ID_LENGTH = 128;
    public static final float MAX_TEMPERATURE = 10f;
    /** More characters per token than any LLaMA-family vocabulary has: longer prompts are refused untokenized. */
    static final int MAX_CHARS_PER_TOKEN = 64;

    private final ModelSource source;
    private final int maxContext;
    private final PromptLimits limits;
    private transient Tokenizer tokenizer;
    private transient int context;
    private transient Counter records;
    private transient Counter deadLetters;

    /**
     * @param maxContext cap on positions per sequence (0: the model's seq_len), as the engine uses
     * @param maxPayloadBytes larger records are refused before parsing
     */
    public PromptParser(ModelSource source, int maxContext, int maxPayloadBytes) {
        this(source, maxContext, PromptLimits.defaults().withMaxPayloadBytes(maxPayloadBytes));
    }

    /** @param limits what one request may ask for; each violation is a dead letter naming the limit's flag */
    public PromptParser(ModelSource source, int maxContext, PromptLimits limits) {
        this.source = source;
        this.maxContext = maxContext;
        this.limits = limits;
    }

    @Override
    public void open(OpenContext openContext) {
        ModelSpec spec = source.spec();
        tokenizer = source.loadTokenizer(spec.vocabSize());
        context = contextOf(spec, maxContext);
        var group = getRuntimeContext().getMetricGroup().addGroup("skipflow");
        records = group.counter("records");
        deadLetters = group.counter("deadLetters");
    }

    /** The context the engine will give a sequence. */
    public static int contextOf(ModelSpec config, int maxContext) {
        return EngineSlot.contextOf(config, maxContext);
    }

    @Override
    public void processElement(RawPrompt raw, Context ctx, Collector<PromptRequest> out) {
        records.inc();
        Object result = parse(raw, tokenizer, context, limits, System.currentTimeMillis());
        if (result instanceof PromptRequest request) {
            out.collect(request);
        } else {
            deadLetters.inc();
            ctx.output(DEAD_LETTERS, (DeadLetter) result);
        }
    }

    /** A {@link PromptRequest}, or a {@link DeadLetter} saying why not, with the default token limits. */
    public static Object parse(RawPrompt raw, Tokenizer tokenizer, int context, int maxPayloadBytes, long now) {
        return parse(raw, tokenizer, context, PromptLimits.defaults().withMaxPayloadBytes(maxPayloadBytes), now);
    }

    /**
     * A {@link PromptRequest}, or a {@link DeadLetter} saying why not. Never throws for any bytes: whatever the
     * record holds, the answer is a request or a dead letter whose reason names the field, the limit and the
     * flag that raises it.
     */
    public static Object parse(RawPrompt raw, Tokenizer tokenizer, int context, PromptLimits limits, long now) {
        try {
            return parseOrThrow(raw, tokenizer, context, limits, now);
        } catch (RuntimeException | StackOverflowError e) {
            // Not expected (the fuzz tests look for these); a record must never stop the job.
            return dead(raw, "the request could not be read (" + e.getClass().getSimpleName() + "); check that it is "
                    + "a JSON object like {\"id\": \"r-1\", \"prompt\": \"Once upon a time\"}", limits.maxPayloadBytes());
        }
    }

    private static Object parseOrThrow(RawPrompt raw, Tokenizer tokenizer, int context, PromptLimits limits, long now) {
        byte[] bytes = raw.value();
        int maxPayloadBytes = limits.maxPayloadBytes();
        if (bytes == null || bytes.length == 0) {
            return dead(raw, "empty record: expected a JSON object like {\"id\": \"r-1\", \"prompt\": \"Once upon a time\"}");
        }
        if (bytes.length > maxPayloadBytes) {
            return dead(raw, "payload is " + bytes.length + " bytes; the limit is " + maxPayloadBytes
                    + " (--max-payload-bytes raises it; payload below cut to the first " + maxPayloadBytes + " bytes)",
                    maxPayloadBytes);
        }
        String text = strictUtf8(bytes);
        if (text == null) {
            return dead(raw, "payload is not valid UTF-8 text (payload below is base64)");
        }
        JsonNode root;
        try {
            root = Json.MAPPER.readTree(text);
        } catch (Exception e) {
            String why = e.getMessage() == null ? e.toString() : e.getMessage().lines().findFirst().orElse("");
            return dead(raw, "payload is not valid JSON: " + clip(why, 300));
        }
        if (root == null || root.isMissingNode() || !root.isObject()) {
            return dead(raw, "payload must be a JSON object, got "
                    + (root == null || root.isMissingNode() ? "nothing" : root.getNodeType().toString().toLowerCase()));
        }
        JsonNode id = root.get("id");
        if (id == null || id.isNull()) {
            return dead(raw, "missing required field \"id\" (a string of 1-" + MAX_ID_LENGTH + " characters)");
        }
        if (!id.isTextual()) {
            return dead(raw, "\"id\" must be a string, got " + kind(id));
        }
        int idLength = id.asText().codePointCount(0, id.asText().length());
        if (idLength < 1 || idLength > MAX_ID_LENGTH) {
            return dead(raw, "\"id\" must be 1-" + MAX_ID_LENGTH + " characters, got " + idLength);
        }
        String where = " (request " + id.asText() + ")";
        JsonNode prompt = root.get("prompt");
        if (prompt == null || prompt.isNull()) {
            return dead(raw, "missing required field \"prompt\"" + where);
        }
        if (!prompt.isTextual()) {
            return dead(raw, "\"prompt\" must be a string, got " + kind(prompt) + where);
        }
        if (prompt.asText().isEmpty()) {
            return dead(raw, "\"prompt\" must not be empty" + where);
        }
        JsonNode maxTokens = root.get("maxTokens");
        int max = Math.min(SamplingParams.DEFAULT_MAX_TOKENS, limits.maxCompletionTokens());
        if (present(maxTokens)) {
            int upper = Math.min(context, limits.maxCompletionTokens());
            if (!maxTokens.isIntegralNumber() || !maxTokens.canConvertToInt() || maxTokens.asInt() < 1
                    || maxTokens.asInt() > upper) {
                String which = maxTokens.isIntegralNumber() && maxTokens.canConvertToInt() && maxTokens.asInt() > upper
                        ? (upper == limits.maxCompletionTokens() && upper < context
                                ? ": over this job's limit per request (--max-completion-tokens raises it)"
                                : ": over the context (--max-context, at most the model's seq_len)")
                        : "";
                return dead(raw, "\"maxTokens\" must be an integer from 1 to " + upper + ", got " + show(maxTokens)
                        + which + where);
            }
            max = maxTokens.asInt();
        }
        float temperature = 0f;
        JsonNode t = root.get("temperature");
        if (present(t)) {
            if (!t.isNumber() || !(t.asDouble() >= 0) || t.asDouble() > MAX_TEMPERATURE) {
                return dead(raw, "\"temperature\" must be a number from 0 to " + (int) MAX_TEMPERATURE + ", got "
                        + show(t) + where);
            }
            temperature = (float) t.asDouble();
        }
        float topP = 1f;
        JsonNode p = root.get("topP");
        if (present(p)) {
            if (!p.isNumber() || !(p.asDouble() > 0) || p.asDouble() > 1) {
                return dead(raw, "\"topP\" must be a number in (0, 1], got " + show(p) + where);
            }
            topP = (float) p.asDouble();
        }
        Long seed = null;
        JsonNode s = root.get("seed");
        if (present(s)) {
            if (!s.isIntegralNumber() || !s.canConvertToLong()) {
                return dead(raw, "\"seed\" must be an integer, got " + show(s) + where);
            }
            seed = s.asLong();
        }
        boolean adaptive = true;
        JsonNode a = root.get("adaptive");
        if (present(a)) {
            if (!a.isBoolean()) {
                return dead(raw, "\"adaptive\" must be true or false, got " + show(a) + where);
            }
            adaptive = a.asBoolean();
        }
        if (prompt.asText().length() > (long) limits.maxPromptTokens() * MAX_CHARS_PER_TOKEN) {
            // no tokenizer's pieces are this long: refuse without tokenizing megabytes
            return dead(raw, "prompt has " + prompt.asText().length() + " characters, more than "
                    + limits.maxPromptTokens() + " tokens can hold; this job's limit is " + limits.maxPromptTokens()
                    + " tokens (--max-prompt-tokens raises it)" + where);
        }
        int[] tokens = tokenizer.encode(prompt.asText(), true);
        if (tokens.length > limits.maxPromptTokens()) {
            return dead(raw, "prompt has " + tokens.length + " tokens; this job's limit is " + limits.maxPromptTokens()
                    + " (--max-prompt-tokens raises it)" + where);
        }
        String tooLong = Scheduler.contextProblem(tokens.length, max, context);
        if (tooLong != null) {
            return dead(raw, tooLong + where);
        }
        return new PromptRequest(id.asText(), prompt.asText(), tokens, max, temperature, topP, seed, adaptive, now,
                raw.topic(), raw.partition(), raw.offset());
    }

    private static boolean present(JsonNode n) {
        return n != null && !n.isNull();
    }

    private static String kind(JsonNode n) {
        return n.getNodeType().toString().toLowerCase() + " " + show(n);
    }

    /** A value as JSON, cut to a length a reason can quote (a fuzzer's 10 MB number stays out of the reason). */
    private static String show(JsonNode n) {
        return clip(n.toString(), 40);
    }

    private static String clip(String s, int max) {
        return s.length() <= max ? s : s.substring(0, max) + "... (" + s.length() + " characters)";
    }

    /** A dead letter for a record, payload as text when it is UTF-8, else base64. */
    public static DeadLetter dead(RawPrompt raw, String error) {
        return new DeadLetter(error, raw.topic(), raw.partition(), raw.offset(), payloadText(raw.value()));
    }

    /**
     * A dead letter whose payload keeps at most {@code maxBytes} of the record: an oversized record must not
     * make an oversized dead letter (the producer would refuse it and the job would fail on it).
     */
    static DeadLetter dead(RawPrompt raw, String error, int maxBytes) {
        byte[] v = raw.value();
        byte[] kept = v == null || v.length <= maxBytes ? v : java.util.Arrays.copyOf(v, maxBytes);
        return new DeadLetter(error, raw.topic(), raw.partition(), raw.offset(), payloadText(kept));
    }

    static String payloadText(byte[] bytes) {
        if (bytes == null) {
            return "";
        }
        String text = strictUtf8(bytes);
        return text != null ? text : Base64.getEncoder().encodeToString(bytes);
    }

    /** The bytes as text, or null when they are not valid UTF-8. */
    private static String strictUtf8(byte[] bytes) {
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }
}
