package dev.skipflow.it;

import com.fasterxml.jackson.databind.JsonNode;
import dev.skipflow.job.JobOptions;
import dev.skipflow.job.local.LocalRunner;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.testcontainers.junit.jupiter.Container;
import org.testcontainers.junit.jupiter.Testcontainers;
import org.testcontainers.kafka.KafkaContainer;

/** The same end-to-end scenario against a Kafka broker in a container; skipped where Docker is absent. */
@Testcontainers(disabledWithoutDocker = true)
class TestcontainersKafkaIT {

    @Container
    // the pinned Kafka version, as in docker-compose.yml
    static final KafkaContainer KAFKA = new KafkaContainer("apache/kafka:4.2.1");

    @Test
    void everyRecordIsAnsweredExactlyOnceOnAContainerBroker() throws Exception {
        StreamingScenario scenario = new StreamingScenario(180);
        JobOptions o = StreamingScenario.options(KAFKA.getBootstrapServers(), StreamingScenario.suffix());
        try (LocalRunner runner = LocalRunner.start(o, Path.of("target"), 0, 1, 0)) {
            scenario.send(KAFKA.getBootstrapServers(), o.promptsTopic);
            List<JsonNode> completions = scenario.collectAndVerify(runner, Duration.ofMinutes(4));
            scenario.verifyGreedyMatchesGenerateCli(completions, 4);
        }
    }
}
