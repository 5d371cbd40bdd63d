package dev.skipflow.job.local;

import dev.skipflow.job.JobOptions;
import dev.skipflow.job.SkipflowPipeline;
import dev.skipflow.job.Topics;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The local default: an embedded KRaft broker (unless an external one is given), the topics, and the job
 * on a MiniCluster, all on 127.0.0.1. Closing it cancels the job and stops the broker.
 */
public final class LocalRunner implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(LocalRunner.class);

    private final EmbeddedKafkaBroker broker;
    private final JobClient job;
    private final JobOptions options;

    private LocalRunner(EmbeddedKafkaBroker broker, JobClient job, JobOptions options) {
        this.broker = broker;
        this.job = job;
        this.options = options;
    }

    /**
     * Starts everything. When {@code options.bootstrapServers} is null an embedded broker is started on
     * {@code kafkaPort} (0 = any free port) with its logs under {@code workDir}.
     */
    public static LocalRunner start(JobOptions options, Path workDir, int kafkaPort, int parallelism, int webUiPort)
            throws Exception {
        EmbeddedKafkaBroker broker = null;
        if (options.bootstrapServers == null) {
            broker = EmbeddedKafkaBroker.start(kafkaPort, workDir.resolve("kafka-" + System.nanoTime()), true);
            options.bootstrapServers = broker.bootstrapServers();
        }
        try {
            Topics.create(options.bootstrapServers, dev.skipflow.job.KafkaClients.properties(options), options.partitions, options.promptsTopic,
                    options.completionsTopic, options.dlqTopic, options.metricsTopic);
            StreamExecutionEnvironment env = LocalFlink.environment(parallelism, webUiPort);
            SkipflowPipeline.build(env, options);
            JobClient job = env.executeAsync("skipflow");
            LOG.info("Job {} submitted to the local MiniCluster{}", job.getJobID(),
                    webUiPort > 0 ? ", web UI at http://127.0.0.1:" + webUiPort : "");
            return new LocalRunner(broker, job, options);
        } catch (Exception e) {
            if (broker != null) {
                broker.close();
            }
            throw e;
        }
    }

    public String bootstrapServers() {
        return options.bootstrapServers;
    }

    public JobClient job() {
        return job;
    }

    public JobOptions options() {
        return options;
    }

    /** Sends JSON (or any bytes) to the prompts topic, unkeyed, and waits until all are acknowledged. */
    public void send(List<byte[]> values) {
        send(options.bootstrapServers, options.promptsTopic, values);
    }

    /** Sends records to {@code topic}, unkeyed, and waits until all are acknowledged. */
    static void send(String bootstrap, String topic, List<byte[]> values) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        try (KafkaProducer<byte[], byte[]> producer =
                new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            for (byte[] v : values) {
                producer.send(new ProducerRecord<>(topic, v));
            }
            producer.flush();
        }
    }

    public static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    public AnswerCollector answers() {
        return new AnswerCollector(options.bootstrapServers, options.completionsTopic, options.dlqTopic);
    }

    @Override
    public void close() {
        stop(job, broker);
    }

    /** Cancels the job, then stops the broker when there is one. */
    static void stop(JobClient job, EmbeddedKafkaBroker broker) {
        try {
            job.cancel().get();
        } catch (Exception e) {
            LOG.debug("job cancel: {}", e.toString());
        }
        // the job may still be winding down its transactions; give it a moment before the broker goes
        try {
            Thread.sleep(Duration.ofMillis(500).toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (broker != null) {
            broker.close();
        }
    }
}
