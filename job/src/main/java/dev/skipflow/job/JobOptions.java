package dev.skipflow.job;

import dev.skipflow.job.options.ModelOptions;
import dev.skipflow.job.options.RoutingOptions;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Everything the streaming job is configured by; the same options for `flink run` and `./skipflow job`. */
public final class JobOptions {

    @Option(names = "--bootstrap-servers", paramLabel = "HOST:PORT", description = "Kafka bootstrap servers (required).")
    public String bootstrapServers;

    @Option(names = "--prompts-topic", description = "Input topic (default: ${DEFAULT-VALUE}).")
    public String promptsTopic = "prompts";

    @Option(names = "--completions-topic", description = "Output topic (default: ${DEFAULT-VALUE}).")
    public String completionsTopic = "completions";

    @Option(names = "--dlq-topic", description = "Dead letters (default: ${DEFAULT-VALUE}).")
    public String dlqTopic = "prompts.dlq";

    @Option(names = "--metrics-topic", description = "Windowed metrics (default: ${DEFAULT-VALUE}).")
    public String metricsTopic = "metrics";

    @Option(names = "--group-id", description = "Kafka consumer group (default: ${DEFAULT-VALUE}).")
    public String groupId = "skipflow";

    @Option(names = "--transactional-id-prefix",
            description = "Prefix of the sinks' Kafka transactional ids; unique per job on a cluster (default: ${DEFAULT-VALUE}).")
    public String transactionalIdPrefix = "skipflow";

    @Mixin
    public ModelOptions model = new ModelOptions();

    @Mixin
    public RoutingOptions routing = new RoutingOptions();

    @Option(names = "--exit", paramLabel = "PATH",
            description = "A trained exit-classifier artifact (from train-exit): tokens of requests with adaptive:true stop "
                    + "early; refused when trained for another model.")
    public java.nio.file.Path exit;

    @Option(names = "--max-batch", description = "Sequences decoded together per task slot (default: ${DEFAULT-VALUE}).")
    public int maxBatch = 64;

    @Option(names = "--max-in-flight",
            description = "Requests in flight per task slot (async I/O capacity); beyond it the source is backpressured (default: ${DEFAULT-VALUE}).")
    public int maxInFlight = 256;

    @Option(names = "--engine-threads",
            description = "PyTorch intra-op threads per task manager on CPU; 0 = PyTorch's default (all cores). More than 1 "
                    + "competes with Kafka and Flink threads for cores (default: ${DEFAULT-VALUE}).")
    public int engineThreads = 1;

    @Option(names = "--max-context",
            description = "Positions per sequence (prompt + completion); 0 = the model's seq_len (default).")
    public int maxContext = 0;

    @Option(names = "--max-payload-bytes", description = "Larger prompt records are dead letters (default: ${DEFAULT-VALUE}).")
    public int maxPayloadBytes = 65536;

    @Option(names = "--request-timeout-ms",
            description = "A request still generating after this becomes a dead letter (default: ${DEFAULT-VALUE}).")
    public long requestTimeoutMs = 600000L;

    @Option(names = "--checkpoint-interval-ms",
            description = "Checkpoint interval; completions become visible to read_committed consumers at checkpoints (default: ${DEFAULT-VALUE}).")
    public long checkpointIntervalMs = 10000L;

    @Option(names = "--metrics-window-ms", description = "Metrics topic window (default: ${DEFAULT-VALUE}).")
    public long metricsWindowMs = 10000L;

    @Option(names = "--parallelism", description = "Job parallelism; 0 = Flink's default.")
    public int parallelism = 0;

    @Option(names = "--create-topics", description = "Create missing topics before starting.")
    public boolean createTopics;

    @Option(names = "--partitions", description = "Partitions for topics created by --create-topics (default: ${DEFAULT-VALUE}).")
    public int partitions = 1;

    @Option(names = "--fail-once-after", hidden = true,
            description = "Test hook: throw once after this many valid requests, to exercise recovery.")
    public long failOnceAfter = 0L;

    /** Refuses settings that cannot work, with the option to change. */
    public void validate() {
        if (bootstrapServers == null || bootstrapServers.isBlank()) {
            throw new IllegalArgumentException("--bootstrap-servers is required (HOST:PORT of a Kafka broker)");
        }
        if (maxBatch < 1) {
            throw new IllegalArgumentException("--max-batch must be at least 1");
        }
        if (maxInFlight < maxBatch) {
            throw new IllegalArgumentException("--max-in-flight (" + maxInFlight + ") must be at least --max-batch ("
                    + maxBatch + "), or the batch can never fill");
        }
        if (checkpointIntervalMs < 100) {
            throw new IllegalArgumentException("--checkpoint-interval-ms must be at least 100");
        }
        if (maxPayloadBytes < 64) {
            throw new IllegalArgumentException("--max-payload-bytes must be at least 64");
        }
        if (partitions < 1) {
            throw new IllegalArgumentException("--partitions must be at least 1");
        }
    }
}
