package dev.skipflow.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.skipflow.job.cli.SkipflowCli;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@code ./skipflow demo} as a fresh clone runs it: the default model with the router shipped in {@code artifacts/}, completions with each method's savings, then the summary; {@code --dense} saves nothing.
 */
class DemoIT {

    static List<String> demo(String... extra) throws Exception {
        String home = System.getProperty("skipflow.home");
        System.setProperty("skipflow.home", Path.of("..").toAbsolutePath().normalize().toString()); // the checkout
        PrintStream stdout = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
            String[] args = {"demo", "--once", "--prompts", "2", "--max-tokens", "24", "--kafka-port", "0",
                    "--web-ui-port", "0", "--device", "cpu"};
            String[] all = java.util.Arrays.copyOf(args, args.length + extra.length);
            System.arraycopy(extra, 0, all, args.length, extra.length);
            assertEquals(0, SkipflowCli.execute(all));
        } finally {
            System.setOut(stdout);
            if (home == null) {
                System.clearProperty("skipflow.home");
            } else {
                System.setProperty("skipflow.home", home);
            }
        }
        return captured.toString(StandardCharsets.UTF_8).lines().toList();
    }

    @Test
    void theDemoIsAdaptiveByDefaultAndPrintsEachMethodsSavingsThenATotal() throws Exception {
        List<String> lines = demo();
        List<String> completions = lines.stream().filter(l -> l.startsWith("{")).toList();
        assertEquals(2, completions.size(), String.join("\n", lines));
        for (String c : completions) {
            JsonNode s = StreamingScenario.JSON.readTree(c).get("savings");
            assertTrue(s.get("tokenBlocksSkipped").asLong() > 0, "the shipped router ran: " + c);
            // stories260K ships no exit classifier (artifacts/README.md: it cannot pay for its probes there)
            assertEquals(0.0, s.get("byMethod").get("exit").asDouble(), c);
            assertTrue(s.get("byMethod").get("routing").asDouble() > 0, c);
            assertEquals(s.get("savedFraction").asDouble(), s.get("byMethod").get("routing").asDouble(), 1e-9, c);
        }
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("demo-1: ") && l.contains("routing")), String.join("\n", lines));
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("total: 2 requests") && l.contains("tokens/s measured")),
                String.join("\n", lines));
    }

    @Test
    void withDenseNothingIsSaved() throws Exception {
        for (String c : demo("--dense").stream().filter(l -> l.startsWith("{")).toList()) {
            JsonNode s = StreamingScenario.JSON.readTree(c).get("savings");
            assertEquals(0.0, s.get("savedFraction").asDouble(), c);
            assertEquals(0, s.get("tokenBlocksSkipped").asLong(), c);
        }
    }
}
