package dev.skipflow.job.local;

import dev.skipflow.job.Topics;
import dev.skipflow.job.sql.SqlJob;
import dev.skipflow.job.sql.SqlScript;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Flink SQL script on the local default: an embedded KRaft broker (unless an external one is given), the prompts
 * and completions topics, and the script's INSERTs as one job on a MiniCluster, all on 127.0.0.1. The script sees
 * {@code ${bootstrap-servers}}, {@code ${prompts-topic}} and {@code ${completions-topic}}, and the caller's defines.
 * Closing it cancels the job and stops the broker.
 */
public final class LocalSqlRunner implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(LocalSqlRunner.class);

    /**
     * What to run and where.
     *
     * @param script the script's text, placeholders unreplaced
     * @param defines placeholder values of the caller's
     * @param bootstrapServers an external Kafka; null starts the embedded broker on {@code kafkaPort} (0 = any free)
     * @param webUiPort the Flink web UI on 127.0.0.1; 0 = none
     * @param checkpointIntervalMs exactly-once Kafka sinks commit at checkpoints
     */
    public record Settings(String script, Map<String, String> defines, String bootstrapServers, String promptsTopic,
            String completionsTopic, int kafkaPort, int parallelism, int webUiPort, long checkpointIntervalMs) {}

    private final EmbeddedKafkaBroker broker;
    private final JobClient job;
    private final Settings settings;
    private final String bootstrapServers;

    private LocalSqlRunner(EmbeddedKafkaBroker broker, JobClient job, Settings settings, String bootstrapServers) {
        this.broker = broker;
        this.job = job;
        this.settings = settings;
        this.bootstrapServers = bootstrapServers;
    }

    /**
     * Starts the broker when needed, creates the two topics, runs the script and submits its job.
     *
     * @param output where statements that print (SHOW, EXPLAIN, ...) write their rows
     */
    public static LocalSqlRunner start(Settings settings, Path workDir, Consumer<String> output) throws Exception {
        EmbeddedKafkaBroker broker = null;
        String bootstrap = settings.bootstrapServers();
        if (bootstrap == null) {
            broker = EmbeddedKafkaBroker.start(settings.kafkaPort(), workDir.resolve("kafka-" + System.nanoTime()), true);
            bootstrap = broker.bootstrapServers();
        }
        try {
            Topics.create(bootstrap, 1, settings.promptsTopic(), settings.completionsTopic());
            Map<String, String> values = new HashMap<>(settings.defines());
            values.put("bootstrap-servers", bootstrap);
            values.put("prompts-topic", settings.promptsTopic());
            values.put("completions-topic", settings.completionsTopic());
            SqlScript script = SqlScript.parse(settings.script(), values);
            StreamExecutionEnvironment env = LocalFlink.environment(settings.parallelism(), settings.webUiPort());
            env.enableCheckpointing(settings.checkpointIntervalMs(), CheckpointingMode.EXACTLY_ONCE);
            env.setBufferTimeout(5); // as the DataStream job: tiny records, latency matters
            JobClient job = SqlJob.submit(StreamTableEnvironment.create(env), script, "skipflow-sql", output).getJobClient()
                    .orElseThrow(() -> new IllegalStateException("the script's job was not submitted"));
            LOG.info("SQL job {} submitted to the local MiniCluster{}", job.getJobID(),
                    settings.webUiPort() > 0 ? ", web UI at http://127.0.0.1:" + settings.webUiPort() : "");
            return new LocalSqlRunner(broker, job, settings, bootstrap);
        } catch (Exception e) {
            if (broker != null) {
                broker.close();
            }
            throw e;
        }
    }

    public String bootstrapServers() {
        return bootstrapServers;
    }

    public JobClient job() {
        return job;
    }

    /** Sends records to the prompts topic and waits until all are acknowledged. */
    public void send(List<byte[]> values) {
        LocalRunner.send(bootstrapServers, settings.promptsTopic(), values);
    }

    /** A read_committed reader of the completions topic, from the beginning. */
    public AnswerCollector answers() {
        return new AnswerCollector(bootstrapServers, settings.completionsTopic());
    }

    @Override
    public void close() {
        LocalRunner.stop(job, broker);
    }
}
