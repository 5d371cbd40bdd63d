package dev.skipflow.job.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.PrintStream;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The demo's closing lines: per request, what it generated and the FLOPs each method saved; then the total and
 * the measured rate. Totals weigh each request by its dense FLOPs, as the metrics topic does.
 */
final class DemoSummary {

    private final int expected;
    private final Map<String, JsonNode> completions = new LinkedHashMap<>();
    private boolean printed;

    DemoSummary(int expected) {
        this.expected = expected;
    }

    /** Records a completion; true once every expected request has one (the first time only). */
    boolean add(JsonNode completion) {
        completions.putIfAbsent(completion.get("id").asText(), completion);
        if (!printed && completions.size() >= expected) {
            printed = true;
            return true;
        }
        return false;
    }

    void print(PrintStream out, double seconds) {
        double dense = 0;
        double compression = 0;
        double routing = 0;
        double exit = 0;
        double saved = 0;
        long tokens = 0;
        out.println("--- savings (share of the dense model's FLOPs) ---");
        for (JsonNode c : completions.values()) {
            JsonNode s = c.get("savings");
            JsonNode m = s.get("byMethod");
            double d = s.get("denseFlops").asDouble();
            dense += d;
            saved += d * s.get("savedFraction").asDouble();
            compression += d * m.get("compression").asDouble();
            routing += d * m.get("routing").asDouble();
            exit += d * m.get("exit").asDouble();
            tokens += c.get("completionTokens").asLong();
            out.println(line(c.get("id").asText() + ": " + c.get("completionTokens").asInt() + " tokens",
                    s.get("savedFraction").asDouble(), m.get("compression").asDouble(), m.get("routing").asDouble(),
                    m.get("exit").asDouble()));
        }
        double n = Math.max(dense, 1);
        out.println(line("total: " + completions.size() + " requests, " + tokens + " tokens", saved / n,
                compression / n, routing / n, exit / n)
                + String.format(" | %.1f tokens/s measured (first prompt sent to last completion, %.1f s)",
                        tokens / Math.max(seconds, 1e-9), seconds));
    }

    private static String line(String head, double saved, double compression, double routing, double exit) {
        return String.format("%s | saved %.1f%% = compression %.1f%% + routing %.1f%% + exit %.1f%%", head,
                100 * saved, 100 * compression, 100 * routing, 100 * exit);
    }
}
