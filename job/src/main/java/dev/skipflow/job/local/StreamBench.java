package dev.skipflow.job.local;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.job.JobOptions;
import dev.skipflow.model.ModelPaths;
import dev.skipflow.model.ModelSource;
import dev.skipflow.operators.MetricsAggregate;
import java.nio.charset.StandardCharsets;
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
 * outstanding against a job on a local MiniCluster and embedded broker, replacing each as its completion
 * becomes visible to a read_committed consumer. Figures cover the measured window after a warm-up. The job is
 * the DataStream pipeline ({@link #run}) or the same generation through Flink SQL's ML_PREDICT ({@link #runSql}),
 * under the same client, concurrency, batch, checkpoint interval and model.
 */
public final class StreamBench {

    /**
     * Measured window results; the job's own latency figures come from the DataStream job's completions (null for
     * SQL, whose rows do not carry them).
     */
    public record Result(String path, int concurrency, int maxTokens, long checkpointIntervalMs, double seconds,
            long completions, long completionTokens, double completionsPerSecond, double tokensPerSecond,
            double latencyP50Ms, double latencyP99Ms, Double jobLatencyP50Ms, Double jobTimeToFirstTokenP50Ms) {}

    /** The SQL path's script: the example's tables and model, with the bench's settings as placeholders. */
    private static final String SQL_SCRIPT = "stream-bench.sql";

    private static final List<String> PROMPTS = List.of("Once upon a time", "Lily and Tom went to the park",
            "The little dog", "One day, a girl named Sue", "There was a big red ball", "Tim had a toy car",
            "The sun was hot", "Mom said");

    private StreamBench() {}

    /** The DataStream job ({@code ./skipflow job}) with {@code options}; a null bootstrap starts an embedded broker. */
    public static Result run(JobOptions options, Path workDir, int concurrency, int maxTokens, double warmupSeconds,
            double measureSeconds, Consumer<String> progress) throws Exception {
        try (LocalRunner runner = LocalRunner.start(options, workDir, 0, 1, 0)) {
            return measure("datastream", runner.bootstrapServers(), options.promptsTopic, options.completionsTopic,
                    options.dlqTopic, options.checkpointIntervalMs, concurrency, maxTokens, warmupSeconds, measureSeconds,
                    progress);
        }
    }

    /**
     * The same generation as an ML_PREDICT job: {@code options}' model, max batch, in-flight limit, engine threads,
     * checkpoint interval, topics and broker (null: an embedded one), one slot, exactly-once Kafka sink.
     */
    public static Result runSql(JobOptions options, Path workDir, int concurrency, int maxTokens, double warmupSeconds,
            double measureSeconds, Consumer<String> progress) throws Exception {
        ModelSource model = options.model.source();
        if (model.synthetic() != null) {
            throw new IllegalArgumentException("--sql needs a model file (a skipflow SQL model has no synthetic weights)");
        }
        Path modelPath = model.modelPath().toAbsolutePath();
        Map<String, String> values = new HashMap<>();
        values.put("model", modelPath.toString());
        values.put("tokenizer", ModelPaths.tokenizer(model.tokenizer() == null ? null : Path.of(model.tokenizer()), modelPath)
                .toAbsolutePath().toString());
        values.put("device", model.resolveDevice().isGpu() ? "gpu" : "cpu");
        values.put("max-tokens", String.valueOf(maxTokens));
        values.put("max-batch", String.valueOf(options.maxBatch));
        values.put("max-in-flight", String.valueOf(options.maxInFlight));
        values.put("engine-threads", String.valueOf(options.engineThreads));
        String script;
        try (var in = StreamBench.class.getResourceAsStream(SQL_SCRIPT)) {
            script = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        var settings = new LocalSqlRunner.Settings(script, values, options.bootstrapServers, options.promptsTopic,
                options.completionsTopic, 0, 1, 0, options.checkpointIntervalMs);
        try (LocalSqlRunner runner = LocalSqlRunner.start(settings, workDir, progress)) {
            return measure("sql", runner.bootstrapServers(), options.promptsTopic, options.completionsTopic, null,
                    options.checkpointIntervalMs, concurrency, maxTokens, warmupSeconds, measureSeconds, progress);
        }
    }

    /** The closed loop against a running job; {@code dlqTopic} null when failures come as records with an error. */
    private static Result measure(String path, String bootstrap, String promptsTopic, String completionsTopic,
            String dlqTopic, long checkpointIntervalMs, int concurrency, int maxTokens, double warmupSeconds,
            double measureSeconds, Consumer<String> progress) throws Exception {
        ObjectMapper json = new ObjectMapper();
        String[] topics = dlqTopic == null ? new String[] {completionsTopic} : new String[] {completionsTopic, dlqTopic};
        try (AnswerCollector answers = new AnswerCollector(bootstrap, topics)) {
            Properties p = new Properties();
            p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
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
                    producer.send(new ProducerRecord<>(promptsTopic, LocalRunner.utf8(r.toString())));
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
                        boolean completion = a.topic().equals(completionsTopic) && !v.hasNonNull("error");
                        Long sent = completion ? sentAt.remove(a.key()) : null;
                        if (now >= measureFrom && now < measureTo) {
                            if (completion) {
                                counts[0]++;
                                counts[1] += v.get("completionTokens").asLong();
                                if (sent != null) {
                                    latencies.add((now - sent) / 1_000_000);
                                }
                                if (v.has("latencyMs")) {
                                    jobLatencies.add(v.get("latencyMs").asLong());
                                    jobTtft.add(v.get("timeToFirstTokenMs").asLong());
                                }
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
            return new Result(path, concurrency, maxTokens, checkpointIntervalMs, measureSeconds, counts[0], counts[1],
                    counts[0] / measureSeconds, counts[1] / measureSeconds,
                    MetricsAggregate.percentile(latencies, 0.5), MetricsAggregate.percentile(latencies, 0.99),
                    jobLatencies.isEmpty() ? null : MetricsAggregate.percentile(jobLatencies, 0.5),
                    jobTtft.isEmpty() ? null : MetricsAggregate.percentile(jobTtft, 0.5));
        }
    }
}
