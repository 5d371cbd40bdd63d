package dev.skipflow.it;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skipflow.job.JobOptions;
import dev.skipflow.job.local.EmbeddedKafkaBroker;
import dev.skipflow.job.local.LocalRunner;
import dev.skipflow.operators.internal.FailOnceMap;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** An exception thrown once mid-stream: the job restarts from its checkpoint and still answers each record once. */
class FailureRecoveryIT {

    @Test
    void exactlyOneAnswerPerRecordAcrossARestart() throws Exception {
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start(0, Path.of("target", "it-kafka-" + System.nanoTime()), true)) {
            StreamingScenario scenario = new StreamingScenario(120);
            JobOptions o = StreamingScenario.options(broker.bootstrapServers(), StreamingScenario.suffix());
            o.failOnceAfter = 70;
            int before = FailOnceMap.INJECTED.get();
            try (LocalRunner runner = LocalRunner.start(o, Path.of("target"), 0, 1, 0)) {
                scenario.send(broker.bootstrapServers(), o.promptsTopic);
                scenario.collectAndVerify(runner, Duration.ofMinutes(4));
            }
            assertTrue(FailOnceMap.INJECTED.get() > before, "the failure was injected and the job recovered");
        }
    }
}
