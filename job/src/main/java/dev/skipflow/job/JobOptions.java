package dev.skipflow.job;

import dev.skipflow.job.options.ModelOptions;
import dev.skipflow.job.options.RoutingOptions;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Everything the streaming job is configured by; the same options for `flink run` and `./skipflow job`. */
public final class JobOptions {

    @Option(names = "--bootstrap-servers", paramLabel = "HOST:PORT",
            description = "Kafka bootstrap servers (required, unless --kafka-config sets bootstrap.servers).")
    public String bootstrapServers;

    @Option(names = "--kafka-property", paramLabel = "KEY=VALUE",
            description = "A Kafka client setting for every source, sink and admin client of the job (repeatable), e.g. "
                    + "security.protocol=SASL_SSL. Applied after --kafka-config. Secrets given here show in the process "
                    + "list: prefer --kafka-config for them.")
    public java.util.List<String> kafkaProperties = new java.util.ArrayList<>();

    @Option(names = "--kafka-config", paramLabel = "FILE",
            description = "A Java properties file of Kafka client settings (SASL/SSL, client ids, quotas) for every source, "
                    + "sink and admin client. Values are never logged or shown.")
    public java.nio.file.Path kafkaConfig;

    @Option(names = "--delivery", paramLabel = "exactly-once|at-least-once",
            description = "exactly-once (default): completions and dead letters are committed in Kafka transactions at "
                    + "checkpoints, one record per prompt for read_committed consumers. at-least-once: visible as soon as "
                    + "written, but a failure can repeat some (deduplicate by id).")
    public String delivery = "exactly-once";

    @Option(names = "--checkpoint-dir", paramLabel = "DIR",
            description = "Durable checkpoints (a path or a URI such as s3://bucket/skipflow), kept when the job is "
                    + "cancelled or killed. Started again with the same DIR, the job resumes from the latest completed "
                    + "checkpoint in it (unless --fresh).")
    public String checkpointDir;

    @Option(names = "--resume", paramLabel = "PATH",
            description = "Restore from this checkpoint or savepoint (a chk-N or savepoint folder, its _metadata, or a "
                    + "--checkpoint-dir whose latest completed checkpoint is taken), as `flink run -s PATH` does.")
    public String resume;

    @Option(names = "--fresh",
            description = "Ignore checkpoints already in --checkpoint-dir: start from the consumer group's committed offsets.")
    public boolean fresh;

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

    @Option(names = "--dense",
            description = "Serve without the router and exit classifier a --model bundle (from stack) carries; "
                    + "without this a bundle's router.json and exit.json are used unless --router, --baseline or --exit "
                    + "is given.")
    public boolean dense;

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
    public int maxPayloadBytes = dev.skipflow.operators.PromptLimits.DEFAULT_MAX_PAYLOAD_BYTES;

    @Option(names = "--max-completion-tokens",
            description = "Largest maxTokens one request may ask for; larger ones are dead letters (default: ${DEFAULT-VALUE}; "
                    + "the context bounds it too).")
    public int maxCompletionTokens = dev.skipflow.operators.PromptLimits.DEFAULT_MAX_COMPLETION_TOKENS;

    @Option(names = "--max-prompt-tokens",
            description = "Longest prompt, in tokens, one request may send; longer ones are dead letters (default: "
                    + "${DEFAULT-VALUE}; the context bounds it too).")
    public int maxPromptTokens = dev.skipflow.operators.PromptLimits.DEFAULT_MAX_PROMPT_TOKENS;

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

    @Option(names = "--fail-generation-of", hidden = true, paramLabel = "ID_PREFIX",
            description = "Test hook: a generation step with a request whose id starts with this throws, as a failing "
                    + "kernel would (exercises per-request failure isolation). Never set in production.")
    public String failGenerationOf;

    /** Whether completions are written in Kafka transactions (the default) or as soon as they exist. */
    public boolean exactlyOnce() {
        return !"at-least-once".equals(delivery);
    }

    /** The per-request limits for the parser. */
    public dev.skipflow.operators.PromptLimits limits() {
        return new dev.skipflow.operators.PromptLimits(maxPayloadBytes, maxCompletionTokens, maxPromptTokens);
    }

    /**
     * Takes the router and exit classifier a bundle folder given as {@code --model} carries, unless any router or
     * exit option was given or {@code --dense}; says what it took on {@code log}.
     */
    public void useBundleArtifacts(java.util.function.Consumer<String> log) {
        if (dense) {
            if (routing.enabled() || exit != null) {
                throw new IllegalArgumentException("--dense serves without a router or an exit classifier; drop "
                        + "--router, --baseline or --exit, or drop --dense");
            }
            return;
        }
        if (routing.enabled() || exit != null || model.source().synthetic() != null) {
            return;
        }
        dev.skipflow.model.ShippedArtifacts.Found found = dev.skipflow.model.ShippedArtifacts.inBundle(
                model.source().modelPath());
        if (found.router() != null) {
            routing.useRouter(found.router());
        }
        if (found.exit() != null) {
            exit = found.exit();
        }
        if (found.any()) {
            log.accept("serving the bundle's" + (found.router() != null ? " router " + found.router() : "")
                    + (found.exit() != null ? " exit classifier " + found.exit() : "") + " (--dense for neither)");
        }
    }

    /** Refuses settings that cannot work, with the option to change. */
    public void validate() {
        if (bootstrapServers == null || bootstrapServers.isBlank()) {
            String fromConfig = KafkaClients.properties(this).getProperty("bootstrap.servers");
            if (fromConfig == null || fromConfig.isBlank()) {
                throw new IllegalArgumentException("--bootstrap-servers is required (HOST:PORT of a Kafka broker), "
                        + "or bootstrap.servers in --kafka-config");
            }
            bootstrapServers = fromConfig;
        }
        if (!"exactly-once".equals(delivery) && !"at-least-once".equals(delivery)) {
            throw new IllegalArgumentException("--delivery must be exactly-once or at-least-once, got " + delivery);
        }
        if (maxCompletionTokens < 1 || maxPromptTokens < 1) {
            throw new IllegalArgumentException("--max-completion-tokens and --max-prompt-tokens must be at least 1");
        }
        if (resume != null && fresh) {
            throw new IllegalArgumentException("--resume and --fresh contradict each other");
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
