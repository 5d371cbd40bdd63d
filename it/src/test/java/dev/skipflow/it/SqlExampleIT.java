package dev.skipflow.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.skipflow.job.cli.SkipflowCli;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code ./skipflow sql --file examples/sql/prompts.sql --once}: the embedded broker, the example script on a
 * MiniCluster (Kafka SQL source, ML_PREDICT, exactly-once Kafka sink), its sample prompts answered and printed.
 */
class SqlExampleIT {

    static final List<String> SAMPLES = List.of("Once upon a time", "Lily and Tom went to the park", "The little dog");
    static final int EXAMPLE_MAX_TOKENS = 48; // the example model's 'max-tokens'

    @Test
    @Timeout(value = 4, unit = TimeUnit.MINUTES)
    void theExampleScriptAnswersItsSamplePrompts() throws Exception {
        PrintStream original = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        int code;
        System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
        try {
            code = SkipflowCli.execute("sql", "--file", "../examples/sql/prompts.sql", "--once", "--prompts", "3",
                    "--kafka-port", "0", "--web-ui-port", "0", "--timeout-seconds", "180");
        } finally {
            System.setOut(original);
        }
        String out = buf.toString(StandardCharsets.UTF_8);
        assertEquals(0, code, out);
        Map<String, JsonNode> byId = new TreeMap<>();
        for (String line : out.strip().split("\n")) {
            JsonNode v = StreamingScenario.JSON.readTree(line);
            assertTrue(byId.put(v.get("id").asText(), v) == null, "one record per prompt: " + out);
        }
        assertEquals(List.of("sql-1", "sql-2", "sql-3"), List.copyOf(byId.keySet()), out);
        for (int i = 0; i < SAMPLES.size(); i++) {
            JsonNode v = byId.get("sql-" + (i + 1));
            assertTrue(List.of("stop", "length").contains(v.get("finishReason").asText()), v.toString());
            assertTrue(v.get("completionTokens").asInt() >= 1, v.toString());
            assertEquals(0.0, v.get("savings").get("savedFraction").asDouble(), v.toString());
            assertTrue(!v.has("error"), v.toString());
            GreedyCheck.assertGreedy(GreedyCheck.expected(SAMPLES.get(i), EXAMPLE_MAX_TOKENS), v.get("text").asText(),
                    "example completion " + v.get("id"));
        }
    }
}
