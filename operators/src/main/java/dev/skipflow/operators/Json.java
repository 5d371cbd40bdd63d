package dev.skipflow.operators;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.model.flops.Savings;
import java.io.UncheckedIOException;

/** JSON shapes of the output topics; field names are DESIGN §4's. */
public final class Json {

    static final ObjectMapper MAPPER = new ObjectMapper();

    private Json() {}

    public static byte[] completion(Completion c) {
        ObjectNode o = MAPPER.createObjectNode();
        o.put("id", c.id());
        o.put("text", c.text());
        o.put("finishReason", c.finishReason());
        o.put("promptTokens", c.promptTokens());
        o.put("completionTokens", c.completionTokens());
        o.put("latencyMs", c.latencyMs());
        o.put("timeToFirstTokenMs", c.timeToFirstTokenMs());
        Savings s = c.savings();
        ObjectNode sv = o.putObject("savings");
        sv.put("denseFlops", s.denseFlops());
        sv.put("executedFlops", s.executedFlops());
        sv.put("savedFraction", s.savedFraction());
        sv.put("tokenBlocksSkipped", s.tokenBlocksSkipped());
        sv.put("tokenBlocksTotal", s.tokenBlocksTotal());
        sv.put("earlyExitTokens", s.earlyExitTokens());
        sv.put("meanExitLayer", s.meanExitLayer());
        byMethod(sv, s.byMethod());
        if (s.experts() != null) { // a mixture-of-experts model: per block, the tokens each expert took
            var blocks = sv.putArray("experts");
            for (long[] block : s.experts()) {
                var row = blocks.addArray();
                for (long tokens : block) {
                    row.add(tokens);
                }
            }
        }
        return bytes(o);
    }

    public static byte[] deadLetter(DeadLetter d) {
        ObjectNode o = MAPPER.createObjectNode();
        o.put("error", d.error());
        o.put("topic", d.topic());
        o.put("partition", d.partition());
        o.put("offset", d.offset());
        o.put("payload", d.payload());
        return bytes(o);
    }

    public static byte[] metrics(WindowMetrics m) {
        ObjectNode o = MAPPER.createObjectNode();
        o.put("windowStart", m.windowStart());
        o.put("windowEnd", m.windowEnd());
        o.put("requests", m.requests());
        o.put("completionTokens", m.completionTokens());
        o.put("tokensPerSecond", m.tokensPerSecond());
        o.put("latencyP50Ms", m.latencyP50Ms());
        o.put("latencyP99Ms", m.latencyP99Ms());
        o.put("savedFraction", m.savedFraction());
        byMethod(o, m.byMethod());
        return bytes(o);
    }

    private static void byMethod(ObjectNode parent, Savings.ByMethod m) {
        ObjectNode b = parent.putObject("byMethod");
        b.put("compression", m.compression());
        b.put("routing", m.routing());
        b.put("exit", m.exit());
    }

    private static byte[] bytes(ObjectNode o) {
        try {
            return MAPPER.writeValueAsBytes(o);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }
}
