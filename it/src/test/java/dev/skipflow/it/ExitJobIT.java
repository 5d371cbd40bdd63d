package dev.skipflow.it;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.exit.ExitTrainer;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The job with --exit: adaptive requests stop tokens early and report it; adaptive=false is the exact dense path. */
class ExitJobIT {

    @Test
    void adaptiveRequestsExitEarlyAndDenseRequestsMatchGenerate() throws Exception {
        Path exit = Path.of("target", "it-exit-" + System.nanoTime() + ".json");
        var model = StreamingScenario.options("127.0.0.1:1", "x").model;
        try (LlamaModel m = new LlamaModel(model.weights(), Device.cpu())) {
            var docs = Documents.read(StreamingScenario.shared().resolve("data/tinystories-train-sample.txt"),
                    model.tokenizer(), 64, 40);
            ExitTrainer.train(m, "stories260K", docs, new ExitTrainer.Options(0.9, 0.3, 1, 0, 2, 1), i -> { }, line -> { })
                    .artifact().save(exit);
        }
        StreamingScenario.adaptiveAndDense(o -> o.exit = exit, 24, (v, s) -> {
            assertTrue(s.get("earlyExitTokens").asLong() > 0, v.toString());
            double mean = s.get("meanExitLayer").asDouble();
            assertTrue(mean >= 3 && mean < 5, "exits only after probed blocks 2 and 3: " + v);
        });
    }
}
