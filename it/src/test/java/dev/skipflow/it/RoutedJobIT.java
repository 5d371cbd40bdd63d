package dev.skipflow.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.job.JobOptions;
import dev.skipflow.job.local.AnswerCollector;
import dev.skipflow.job.local.EmbeddedKafkaBroker;
import dev.skipflow.job.local.LocalRunner;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The job with token routing on: adaptive requests report real savings; adaptive=false is the exact dense path. */
class RoutedJobIT {

    @Test
    void adaptiveRequestsSaveComputeAndDenseRequestsMatchGenerate() throws Exception {
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start(0, Path.of("target", "it-kafka-" + System.nanoTime()), true)) {
            JobOptions o = StreamingScenario.options(broker.bootstrapServers(), StreamingScenario.suffix());
            Holder h = new Holder();
            new picocli.CommandLine(h).parseArgs("--baseline", "static", "--sparsity", "0.3");
            o.routing = h.routing;
            String prompt = "Once upon a time, there was a little dog named Max who liked to run";
            List<byte[]> values = new ArrayList<>();
            for (int i = 0; i < 6; i++) {
                ObjectNode r = StreamingScenario.JSON.createObjectNode();
                r.put("id", "r-" + i);
                r.put("prompt", prompt);
                r.put("maxTokens", 12);
                r.put("adaptive", i % 2 == 0);
                values.add(r.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
            }
            try (LocalRunner runner = LocalRunner.start(o, Path.of("target"), 0, 1, 0);
                    AnswerCollector answers = runner.answers()) {
                runner.send(values);
                List<AnswerCollector.Answer> got = answers.collect(6, Duration.ofMinutes(2), Duration.ofSeconds(1));
                assertEquals(6, got.size());
                String dense = StreamingScenario.runGenerate(prompt, 12);
                for (AnswerCollector.Answer a : got) {
                    JsonNode v = StreamingScenario.JSON.readTree(a.value());
                    JsonNode s = v.get("savings");
                    boolean adaptive = Integer.parseInt(v.get("id").asText().substring(2)) % 2 == 0;
                    if (adaptive) {
                        assertTrue(s.get("tokenBlocksSkipped").asLong() > 0, a.value());
                        assertTrue(s.get("savedFraction").asDouble() > 0.05, a.value());
                        assertTrue(s.get("executedFlops").asLong() < s.get("denseFlops").asLong(), a.value());
                    } else {
                        assertEquals(0, s.get("tokenBlocksSkipped").asLong(), a.value());
                        assertEquals(s.get("denseFlops").asLong(), s.get("executedFlops").asLong(), a.value());
                        assertEquals(dense, v.get("text").asText() + "\n", "adaptive=false is the dense path");
                    }
                }
            }
        }
    }

    /** Parses routing options the way the CLI does. */
    @picocli.CommandLine.Command(name = "holder")
    static final class Holder {
        @picocli.CommandLine.Mixin
        dev.skipflow.job.cli.RoutingOptions routing = new dev.skipflow.job.cli.RoutingOptions();
    }
}
