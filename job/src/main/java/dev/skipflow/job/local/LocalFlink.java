package dev.skipflow.job.local;

import java.time.Duration;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.JobManagerOptions;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/** A MiniCluster environment bound to 127.0.0.1, with the web UI when asked for, and restarts on failure. */
public final class LocalFlink {

    private LocalFlink() {}

    /**
     * @param webUiPort port of the web UI and REST API on 127.0.0.1; 0 = no web UI (tests)
     */
    public static StreamExecutionEnvironment environment(int parallelism, int webUiPort) {
        Configuration conf = new Configuration();
        conf.set(RestOptions.BIND_ADDRESS, "127.0.0.1");
        conf.set(RestOptions.ADDRESS, "127.0.0.1");
        conf.set(JobManagerOptions.BIND_HOST, "127.0.0.1");
        conf.set(JobManagerOptions.ADDRESS, "127.0.0.1");
        conf.set(TaskManagerOptions.BIND_HOST, "127.0.0.1");
        conf.set(TaskManagerOptions.HOST, "127.0.0.1");
        conf.set(TaskManagerOptions.NUM_TASK_SLOTS, Math.max(1, parallelism));
        // Restart after a failure (a broker restart, a lost transaction) with a growing pause, without giving up: a
        // streaming job should outlive a Kafka outage. Settings that can never work are refused before the start.
        conf.set(RestartStrategyOptions.RESTART_STRATEGY, "exponential-delay");
        conf.set(RestartStrategyOptions.RESTART_STRATEGY_EXPONENTIAL_DELAY_INITIAL_BACKOFF, Duration.ofSeconds(1));
        conf.set(RestartStrategyOptions.RESTART_STRATEGY_EXPONENTIAL_DELAY_MAX_BACKOFF, Duration.ofSeconds(20));
        conf.set(RestartStrategyOptions.RESTART_STRATEGY_EXPONENTIAL_DELAY_BACKOFF_MULTIPLIER, 2.0);
        conf.set(RestartStrategyOptions.RESTART_STRATEGY_EXPONENTIAL_DELAY_RESET_BACKOFF_THRESHOLD, Duration.ofMinutes(5));
        StreamExecutionEnvironment env;
        if (webUiPort > 0) {
            conf.set(RestOptions.PORT, webUiPort);
            env = StreamExecutionEnvironment.createLocalEnvironmentWithWebUI(conf);
        } else {
            conf.set(RestOptions.BIND_PORT, "0");
            env = StreamExecutionEnvironment.createLocalEnvironment(conf);
        }
        env.setParallelism(Math.max(1, parallelism));
        return env;
    }
}
