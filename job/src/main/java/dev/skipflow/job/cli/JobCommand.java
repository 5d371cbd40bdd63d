package dev.skipflow.job.cli;

import dev.skipflow.job.JobOptions;
import dev.skipflow.job.SkipflowPipeline;
import dev.skipflow.job.local.LocalFlink;
import dev.skipflow.job.KafkaClients;
import dev.skipflow.job.Topics;
import java.util.concurrent.Callable;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "job", mixinStandardHelpOptions = true,
        description = {"Runs the streaming job against an existing Kafka, on a local MiniCluster with the web UI on "
                + "127.0.0.1. On a cluster, submit the same job with `flink run job/target/skipflow-job-*-flink.jar` "
                + "and the same options.",
            "Any Kafka client can drive it, e.g. kcat -P -b 127.0.0.1:9092 -t prompts <<< '{\"id\":\"r-1\",\"prompt\":\"Once upon a time\"}' "
                + "and kcat -C -b 127.0.0.1:9092 -t completions -X isolation.level=read_committed"})
public final class JobCommand implements Callable<Integer> {

    @Mixin
    JobOptions options = new JobOptions();

    @Option(names = "--web-ui-port", defaultValue = "8081", description = "Flink web UI and REST port on 127.0.0.1 (default: ${DEFAULT-VALUE}).")
    int webUiPort;

    @Override
    public Integer call() throws Exception {
        options.validate();
        java.util.Properties kafka = KafkaClients.properties(options);
        KafkaClients.checkAuthentication(options.bootstrapServers, kafka, 30_000);
        if (options.createTopics) {
            Topics.create(options.bootstrapServers, kafka, options.partitions, options.promptsTopic,
                    options.completionsTopic, options.dlqTopic, options.metricsTopic);
        }
        StreamExecutionEnvironment env = LocalFlink.environment(Math.max(1, options.parallelism), webUiPort);
        String restore = SkipflowPipeline.build(env, options);
        System.err.printf("skipflow job: reading %s on %s; completions on %s, dead letters on %s, metrics on %s "
                        + "(%s); Kafka client settings: %s; checkpoints %s%s; web UI http://127.0.0.1:%d%n",
                options.promptsTopic, options.bootstrapServers, options.completionsTopic, options.dlqTopic,
                options.metricsTopic, options.delivery, KafkaClients.describe(kafka),
                options.checkpointDir == null ? "in memory (lost when the process ends; --checkpoint-dir keeps them)"
                        : "in " + options.checkpointDir,
                restore == null ? "" : ", resuming from " + restore, webUiPort);
        env.execute("skipflow");
        return 0;
    }
}
