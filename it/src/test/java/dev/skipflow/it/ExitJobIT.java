package dev.skipflow.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.job.JobOptions;
import dev.skipflow.job.local.AnswerCollector;
import dev.skipflow.job.local.EmbeddedKafkaBroker;
import dev.skipflow.job.local.LocalRunner;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.eval.Documents;
import dev.skipflow.model.exit.ExitTrainer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The job with --exit: adaptive requests stop tokens early and report it; adaptive=false is the exact dense path. */
class ExitJobIT {

    @Test
    void adaptiveRequestsExitEarlyAndDenseRequestsMatchGenerate() throws Exception {
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start(0, Path.of("target", "it-kafka-" + System.nanoTime()), true)) {
            JobOptions o = StreamingScenario.options(broker.bootstrapServers(), StreamingScenario.suffix());
            o.exit = Path.of("target", "it-exit-" + System.nanoTime() + ".json");
            try (LlamaModel model = new LlamaModel(o.model.weights(), Device.cpu())) {
                var docs = Documents.read(StreamingScenario.shared().resolve("data/tinystories-train-sample.txt"),
                        o.model.tokenizer(), 64, 40);
                ExitTrainer.train(model, "stories260K", docs, new ExitTrainer.Options(0.9, 0.3, 1, 0, 2, 1), i -> { },
                        m -> { }).artifact().save(o.exit);
            }
            String prompt = "Once upon a time, there was a little dog named Max who liked to run";
            List<byte[]> values = new ArrayList<>();
            for (int i = 0; i < 6; i++) {
                ObjectNode r = StreamingScenario.JSON.createObjectNode();
                r.put("id", "r-" + i);
                r.put("prompt", prompt);
                r.put("maxTokens", 24);
                r.put("adaptive", i % 2 == 0);
                values.add(r.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
            }
            try (LocalRunner runner = LocalRunner.start(o, Path.of("target"), 0, 1, 0);
                    AnswerCollector answers = runner.answers()) {
                runner.send(values);
                List<AnswerCollector.Answer> got = answers.collect(6, Duration.ofMinutes(2), Duration.ofSeconds(1));
                assertEquals(6, got.size());
                String dense = StreamingScenario.runGenerate(prompt, 24);
                for (AnswerCollector.Answer a : got) {
                    JsonNode v = StreamingScenario.JSON.readTree(a.value());
                    JsonNode s = v.get("savings");
                    boolean adaptive = Integer.parseInt(v.get("id").asText().substring(2)) % 2 == 0;
                    if (adaptive) {
                        assertTrue(s.get("earlyExitTokens").asLong() > 0, a.value());
                        double mean = s.get("meanExitLayer").asDouble();
                        assertTrue(mean >= 3 && mean < 5, "exits only after probed blocks 2 and 3: " + a.value());
                    } else {
                        assertEquals(0, s.get("earlyExitTokens").asLong(), a.value());
                        assertEquals(s.get("denseFlops").asLong(), s.get("executedFlops").asLong(), a.value());
                        assertEquals(dense, v.get("text").asText() + "\n", "adaptive=false is the dense path");
                    }
                }
            }
        }
    }
}
