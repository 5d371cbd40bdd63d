package dev.skipflow.job.local;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.job.JobOptions;
import dev.skipflow.operators.MetricsAggregate;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.function.Consumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Throughput and latency through Kafka and Flink: a closed-loop client keeps {@code concurrency} requests
 * outstanding against the job on a local MiniCluster and embedded broker, replacing each as its completion
 * becomes visible to a read_committed consumer. Figures cover the measured window after a warm-up.
 */
public final class StreamBench {

    /** Measured window results. */
    public record Result(int concurrency, int maxTokens, long checkpointIntervalMs, double seconds, long completions,
            long completionTokens, double completionsPerSecond, double tokensPerSecond, double latencyP50Ms,
            double latencyP99Ms, double jobLatencyP50Ms, double jobTimeToFirstTokenP50Ms) {}

    private static final List<String> PROMPTS = List.of("Once upon a time", "Lily and Tom went to the park",
            "The little dog", "One day, a girl named Sue", "There was a big red ball", "Tim had a toy car",
            "The sun was hot", "Mom said");

    private StreamBench() {}

    public static Result run(JobOptions options, Path workDir, int concurrency, int maxTokens, double warmupSeconds,
            double measureSeconds, Consumer<String> progress) throws Exception {
        ObjectMapper json = new ObjectMapper();
        try (LocalRunner runner = LocalRunner.start(options, workDir, 0, 1, 0);
                AnswerCollector answers = new AnswerCollector(runner.bootstrapServers(), options.completionsTopic,
                        options.dlqTopic)) {
            Properties p = new Properties();
            p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, runner.bootstrapServers());
            p.put(ProducerConfig.LINGER_MS_CONFIG, "0");
            Map<String, Long> sentAt = new HashMap<>();
            List<Long> latencies = new ArrayList<>();
            List<Long> jobLatencies = new ArrayList<>();
            List<Long> jobTtft = new ArrayList<>();
            long[] counts = new long[3]; // completions, tokens, dead letters (in window)
            try (KafkaProducer<byte[], byte[]> producer =
                    new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
                int[] next = {0};
                Runnable sendOne = () -> {
                    String id = "bench-" + next[0];
                    ObjectNode r = json.createObjectNode();
                    r.put("id", id);
                    r.put("prompt", PROMPTS.get(next[0] % PROMPTS.size()));
                    r.put("maxTokens", maxTokens);
                    next[0]++;
                    sentAt.put(id, System.nanoTime());
                    producer.send(new ProducerRecord<>(options.promptsTopic, LocalRunner.utf8(r.toString())));
                };
                for (int i = 0; i < concurrency; i++) {
                    sendOne.run();
                }
                producer.flush();
                long start = System.nanoTime();
                long measureFrom = start + (long) (warmupSeconds * 1e9);
                long measureTo = measureFrom + (long) (measureSeconds * 1e9);
                progress.accept("warm-up " + warmupSeconds + " s, then measuring " + measureSeconds + " s");
                while (System.nanoTime() < measureTo) {
                    answers.poll(Duration.ofMillis(50), a -> {
                        long now = System.nanoTime();
                        JsonNode v;
                        try {
                            v = json.readTree(a.value());
                        } catch (Exception e) {
                            throw new IllegalStateException(e);
                        }
                        boolean completion = a.topic().equals(options.completionsTopic);
                        Long sent = completion ? sentAt.remove(a.key()) : null;
                        if (now >= measureFrom && now < measureTo) {
                            if (completion) {
                                counts[0]++;
                                counts[1] += v.get("completionTokens").asLong();
                                if (sent != null) {
                                    latencies.add((now - sent) / 1_000_000);
                                }
                                jobLatencies.add(v.get("latencyMs").asLong());
                                jobTtft.add(v.get("timeToFirstTokenMs").asLong());
                            } else {
                                counts[2]++;
                            }
                        }
                        sendOne.run();
                    });
                    producer.flush();
                }
            }
            if (counts[2] > 0) {
                throw new IllegalStateException(counts[2] + " requests became dead letters during the benchmark");
            }
            Collections.sort(latencies);
            Collections.sort(jobLatencies);
            Collections.sort(jobTtft);
            return new Result(concurrency, maxTokens, options.checkpointIntervalMs, measureSeconds, counts[0], counts[1],
                    counts[0] / measureSeconds, counts[1] / measureSeconds,
                    MetricsAggregate.percentile(latencies, 0.5), MetricsAggregate.percentile(latencies, 0.99),
                    MetricsAggregate.percentile(jobLatencies, 0.5), MetricsAggregate.percentile(jobTtft, 0.5));
        }
    }
}
