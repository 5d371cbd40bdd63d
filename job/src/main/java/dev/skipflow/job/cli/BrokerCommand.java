package dev.skipflow.job.cli;

import dev.skipflow.job.local.EmbeddedKafkaBroker;
import dev.skipflow.job.Topics;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "broker", mixinStandardHelpOptions = true,
        description = "Runs the embedded single-node Kafka broker (KRaft) on 127.0.0.1 until interrupted, "
                + "with the job's default topics created.")
public final class BrokerCommand implements Callable<Integer> {

    @Option(names = "--port", defaultValue = "9092", description = "Client port on 127.0.0.1 (default: ${DEFAULT-VALUE}).")
    int port;

    @Option(names = "--partitions", defaultValue = "1", description = "Partitions of the topics it creates (default: ${DEFAULT-VALUE}).")
    int partitions;

    @Option(names = "--log-dir", paramLabel = "DIR",
            description = "Keep the broker's data in DIR, kept when it stops: started again on the same DIR (and --port), "
                    + "the broker has its topics, records, committed offsets and transactions back. Default: a fresh "
                    + "folder under target/local, deleted on exit.")
    Path logDir;

    @Override
    public Integer call() throws Exception {
        Path dir = logDir != null ? logDir.toAbsolutePath()
                : Workdirs.local().resolve("broker-" + port + "-" + System.currentTimeMillis());
        EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start(port, dir, logDir == null);
        CountDownLatch stop = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            broker.close();
            stop.countDown();
        }, "broker-shutdown"));
        Topics.create(broker.bootstrapServers(), partitions, "prompts", "completions", "prompts.dlq", "metrics");
        System.err.println("Kafka broker listening on " + broker.bootstrapServers()
                + " (topics prompts, completions, prompts.dlq, metrics); Ctrl-C stops it"
                + (logDir == null ? " and deletes " + dir : "; its data stays in " + dir));
        System.out.println(broker.bootstrapServers());
        stop.await();
        return 0;
    }
}
