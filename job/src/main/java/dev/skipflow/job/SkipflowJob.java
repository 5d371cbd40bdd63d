package dev.skipflow.job;

import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/**
 * Entry point for {@code flink run skipflow-job-VERSION-flink.jar --bootstrap-servers ...}: builds the
 * pipeline on the cluster's environment and submits it.
 */
@Command(name = "skipflow-job", mixinStandardHelpOptions = true,
        description = "The Skipflow streaming job (Kafka prompts -> LLM with continuous batching -> Kafka completions).")
public final class SkipflowJob implements java.util.concurrent.Callable<Integer> {

    @Mixin
    JobOptions options = new JobOptions();

    public static void main(String[] args) {
        int code = new CommandLine(new SkipflowJob()).execute(args);
        if (code != 0) {
            System.exit(code);
        }
    }

    @Override
    public Integer call() throws Exception {
        options.validate();
        java.util.Properties kafka = KafkaClients.properties(options);
        KafkaClients.checkAuthentication(options.bootstrapServers, kafka, 30_000);
        if (options.createTopics) {
            Topics.create(options.bootstrapServers, kafka, options.partitions, options.promptsTopic,
                    options.completionsTopic, options.dlqTopic, options.metricsTopic);
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        SkipflowPipeline.build(env, options);
        env.execute("skipflow");
        return 0;
    }
}
