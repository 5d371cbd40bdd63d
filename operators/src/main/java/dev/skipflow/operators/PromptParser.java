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

    private final ModelSource source;
    private final int maxContext;
    private final int maxPayloadBytes;
    private transient Tokenizer tokenizer;
    private transient int context;
    private transient Counter records;
    private transient Counter deadLetters;

    /**
     * @param maxContext cap on positions per sequence (0: the model's seq_len), as the engine uses
     * @param maxPayloadBytes larger records are refused before parsing
     */
    public PromptParser(ModelSource source, int maxContext, int maxPayloadBytes) {
        this.source = source;
        this.maxContext = maxContext;
        this.maxPayloadBytes = maxPayloadBytes;
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
        Object result = parse(raw, tokenizer, context, maxPayloadBytes, System.currentTimeMillis());
        if (result instanceof PromptRequest request) {
            out.collect(request);
        } else {
            deadLetters.inc();
            ctx.output(DEAD_LETTERS, (DeadLetter) result);
        }
    }

    /** A {@link PromptRequest}, or a {@link DeadLetter} saying why not. */
    public static Object parse(RawPrompt raw, Tokenizer tokenizer, int context, int maxPayloadBytes, long now) {
        byte[] bytes = raw.value();
        if (bytes == null || bytes.length == 0) {
            return dead(raw, "empty record: expected a JSON object like {\"id\": \"r-1\", \"prompt\": \"Once upon a time\"}");
        }
        if (bytes.length > maxPayloadBytes) {
            return dead(raw, "payload is " + bytes.length + " bytes; the limit is " + maxPayloadBytes);
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
            return dead(raw, "payload is not valid JSON: " + why);
        }
        if (root == null || !root.isObject()) {
            return dead(raw, "payload must be a JSON object, got " + (root == null ? "nothing" : root.getNodeType().toString().toLowerCase()));
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
        JsonNode prompt = root.get("prompt");
        if (prompt == null || prompt.isNull()) {
            return dead(raw, "missing required field \"prompt\" (request " + id.asText() + ")");
        }
        if (!prompt.isTextual()) {
            return dead(raw, "\"prompt\" must be a string, got " + kind(prompt) + " (request " + id.asText() + ")");
        }
        if (prompt.asText().isEmpty()) {
            return dead(raw, "\"prompt\" must not be empty (request " + id.asText() + ")");
        }
        String where = " (request " + id.asText() + ")";
        JsonNode maxTokens = root.get("maxTokens");
        int max = SamplingParams.DEFAULT_MAX_TOKENS;
        if (present(maxTokens)) {
            if (!maxTokens.isIntegralNumber() || !maxTokens.canConvertToInt() || maxTokens.asInt() < 1
                    || maxTokens.asInt() > context) {
                return dead(raw, "\"maxTokens\" must be an integer from 1 to " + context + ", got " + maxTokens + where);
            }
            max = maxTokens.asInt();
        }
        float temperature = 0f;
        JsonNode t = root.get("temperature");
        if (present(t)) {
            if (!t.isNumber() || !(t.asDouble() >= 0) || t.asDouble() > MAX_TEMPERATURE) {
                return dead(raw, "\"temperature\" must be a number from 0 to " + (int) MAX_TEMPERATURE + ", got " + t + where);
            }
            temperature = (float) t.asDouble();
        }
        float topP = 1f;
        JsonNode p = root.get("topP");
        if (present(p)) {
            if (!p.isNumber() || !(p.asDouble() > 0) || p.asDouble() > 1) {
                return dead(raw, "\"topP\" must be a number in (0, 1], got " + p + where);
            }
            topP = (float) p.asDouble();
        }
        Long seed = null;
        JsonNode s = root.get("seed");
        if (present(s)) {
            if (!s.isIntegralNumber() || !s.canConvertToLong()) {
                return dead(raw, "\"seed\" must be an integer, got " + s + where);
            }
            seed = s.asLong();
        }
        boolean adaptive = true;
        JsonNode a = root.get("adaptive");
        if (present(a)) {
            if (!a.isBoolean()) {
                return dead(raw, "\"adaptive\" must be true or false, got " + a + where);
            }
            adaptive = a.asBoolean();
        }
        int[] tokens = tokenizer.encode(prompt.asText(), true);
        String tooLong = Scheduler.contextProblem(tokens.length, max, context);
        if (tooLong != null) {
            return dead(raw, tooLong + where);
        }
        return new PromptRequest(id.asText(), prompt.asText(), tokens, max, temperature, topP, seed, adaptive, now);
    }

    private static boolean present(JsonNode n) {
        return n != null && !n.isNull();
    }

    private static String kind(JsonNode n) {
        return n.getNodeType().toString().toLowerCase() + " " + n;
    }

    /** A dead letter for a record, payload as text when it is UTF-8, else base64. */
    public static DeadLetter dead(RawPrompt raw, String error) {
        return new DeadLetter(error, raw.topic(), raw.partition(), raw.offset(), payloadText(raw.value()));
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
