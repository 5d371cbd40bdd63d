package dev.skipflow.job;

import dev.skipflow.model.ModelSource;
import dev.skipflow.operators.Completion;
import dev.skipflow.operators.DeadLetter;
import dev.skipflow.operators.GenerateFunction;
import dev.skipflow.operators.GenerationOutcome;
import dev.skipflow.operators.JsonRecordSerializationSchema;
import dev.skipflow.operators.MetricsAggregate;
import dev.skipflow.operators.PromptParser;
import dev.skipflow.operators.PromptRequest;
import dev.skipflow.operators.RawPrompt;
import dev.skipflow.operators.RawPromptDeserializationSchema;
import dev.skipflow.operators.WindowMetrics;
import dev.skipflow.operators.internal.FailOnceMap;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.streaming.api.datastream.AsyncDataStream;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.windowing.assigners.TumblingProcessingTimeWindows;

/**
 * The streaming job: prompts → parse → generate (async, continuous batching) → completions, with dead
 * letters for anything that cannot be answered and a windowed metrics stream. By default both answer topics are
 * written in Kafka transactions committed at checkpoints, so each prompt record yields exactly one record
 * on completions or prompts.dlq for read_committed consumers, across failures ({@code --delivery at-least-once}
 * writes them at once instead, and a failure may repeat some).
 */
public final class SkipflowPipeline {

    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(SkipflowPipeline.class);

    private SkipflowPipeline() {}

    /**
     * Adds the job's operators to {@code env}, turns on checkpointing (durable in {@code --checkpoint-dir} when
     * given) and, when there is one, sets the checkpoint or savepoint to restore from. A bundle given as --model
     * serves its own router and exit classifier unless the options say otherwise ({@link JobOptions#useBundleArtifacts}).
     *
     * @return the checkpoint or savepoint the job restores from, or null
     */
    public static String build(StreamExecutionEnvironment env, JobOptions o) {
        o.validate();
        o.useBundleArtifacts(line -> System.err.println("skipflow job: " + line));
        if (o.parallelism > 0) {
            env.setParallelism(o.parallelism);
        }
        env.enableCheckpointing(o.checkpointIntervalMs,
                o.exactlyOnce() ? CheckpointingMode.EXACTLY_ONCE : CheckpointingMode.AT_LEAST_ONCE);
        String restore = Checkpoints.restorePath(o);
        org.apache.flink.configuration.Configuration conf = new org.apache.flink.configuration.Configuration();
        if (o.checkpointDir != null) {
            conf.set(org.apache.flink.configuration.CheckpointingOptions.CHECKPOINT_STORAGE, "filesystem");
            conf.set(org.apache.flink.configuration.CheckpointingOptions.CHECKPOINTS_DIRECTORY, Checkpoints.uri(o.checkpointDir));
            conf.set(org.apache.flink.configuration.CheckpointingOptions.EXTERNALIZED_CHECKPOINT_RETENTION,
                    org.apache.flink.configuration.ExternalizedCheckpointRetention.RETAIN_ON_CANCELLATION);
        }
        if (restore != null) {
            conf.set(org.apache.flink.configuration.StateRecoveryOptions.SAVEPOINT_PATH, restore);
            LOG.info("restoring the job from {}", restore);
        }
        env.configure(conf);
        Properties kafka = KafkaClients.properties(o);
        // Records are tiny and latency matters: flush network buffers after 5 ms, not Flink's 100 ms default
        // (measured: the rebalance exchange alone added ~55 ms to time to first token).
        env.setBufferTimeout(5);
        ModelSource model = o.model.source();

        KafkaSource<RawPrompt> source = KafkaSource.<RawPrompt>builder()
                .setTopics(o.promptsTopic)
                .setStartingOffsets(OffsetsInitializer.committedOffsets(
                        org.apache.kafka.clients.consumer.OffsetResetStrategy.EARLIEST))
                .setDeserializer(new RawPromptDeserializationSchema())
                .setProperty("isolation.level", "read_committed")
                .setProperties(kafka) // the user's settings; the flags below win over the same keys in them
                .setBootstrapServers(o.bootstrapServers)
                .setGroupId(o.groupId)
                .build();
        DataStream<RawPrompt> raw = env.fromSource(source, WatermarkStrategy.noWatermarks(), "prompts")
                .uid("prompts-source");

        SingleOutputStreamOperator<PromptRequest> parsed = raw
                .process(new PromptParser(model, o.maxContext, o.limits()))
                .name("parse").uid("parse");
        DataStream<DeadLetter> invalid = parsed.getSideOutput(PromptParser.DEAD_LETTERS);
        // Rebalance so every generation slot gets work whatever the prompts topic's partition count.
        DataStream<PromptRequest> requests = parsed.rebalance();
        if (o.failOnceAfter > 0) {
            requests = requests.map(new FailOnceMap<>(o.failOnceAfter)).name("fail-once (test hook)").uid("fail-once");
        }

        GenerateFunction generate = new GenerateFunction(model, o.maxBatch, o.maxContext, o.engineThreads, o.routing.spec(),
                o.exit == null ? null : dev.skipflow.model.exit.ExitArtifact.load(o.exit));
        if (o.failGenerationOf != null) {
            generate.failingGenerationOf(o.failGenerationOf);
        }
        DataStream<GenerationOutcome> outcomes = AsyncDataStream.unorderedWait(requests, generate, o.requestTimeoutMs,
                        TimeUnit.MILLISECONDS, o.maxInFlight)
                .name("generate").uid("generate");

        DataStream<Completion> completions = outcomes.filter(r -> r.completion() != null).name("completed")
                .map(GenerationOutcome::completion).name("completion").uid("completion");
        DataStream<DeadLetter> failed = outcomes.filter(r -> r.deadLetter() != null).name("not completed")
                .map(GenerationOutcome::deadLetter).name("dead letter").uid("failed");

        completions.sinkTo(answerSink(o, kafka, JsonRecordSerializationSchema.completions(o.completionsTopic),
                        o.transactionalIdPrefix + "-completions"))
                .name("completions").uid("completions-sink");
        invalid.union(failed)
                .sinkTo(answerSink(o, kafka, JsonRecordSerializationSchema.deadLetters(o.dlqTopic),
                        o.transactionalIdPrefix + "-dlq"))
                .name("dead letters").uid("dlq-sink");

        DataStream<WindowMetrics> metrics = completions
                .windowAll(TumblingProcessingTimeWindows.of(Duration.ofMillis(o.metricsWindowMs)))
                .aggregate(new MetricsAggregate(), new MetricsAggregate.ToRecord())
                .name("metrics window").uid("metrics-window");
        metrics.sinkTo(KafkaSink.<WindowMetrics>builder()
                        .setBootstrapServers(o.bootstrapServers)
                        .setKafkaProducerConfig(KafkaClients.with(kafka, o.bootstrapServers))
                        .setRecordSerializer(JsonRecordSerializationSchema.metrics(o.metricsTopic))
                        .setDeliveryGuarantee(DeliveryGuarantee.AT_LEAST_ONCE)
                        .build())
                .name("metrics").uid("metrics-sink");
        return restore;
    }

    /** A sink for completions or dead letters: transactional (exactly-once) or flushed at checkpoints (at-least-once). */
    private static <T> KafkaSink<T> answerSink(JobOptions o, Properties kafka,
            org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema<T> schema, String txPrefix) {
        Properties p = new Properties();
        if (o.exactlyOnce()) {
            // Must exceed the checkpoint interval plus recovery time, and stay within the broker's
            // transaction.max.timeout.ms (15 min by default).
            p.setProperty("transaction.timeout.ms",
                    String.valueOf(Math.max(60_000, Math.min(900_000, o.checkpointIntervalMs * 10))));
        } else {
            p.setProperty("linger.ms", "0"); // at-least-once is chosen for latency
        }
        p.putAll(kafka);
        var b = KafkaSink.<T>builder()
                .setBootstrapServers(o.bootstrapServers)
                .setRecordSerializer(schema)
                .setKafkaProducerConfig(KafkaClients.with(p, o.bootstrapServers));
        if (o.exactlyOnce()) {
            b.setDeliveryGuarantee(DeliveryGuarantee.EXACTLY_ONCE).setTransactionalIdPrefix(txPrefix);
        } else {
            b.setDeliveryGuarantee(DeliveryGuarantee.AT_LEAST_ONCE);
        }
        return b.build();
    }
}
