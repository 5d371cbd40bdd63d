package dev.skipflow.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skipflow.job.Topics;
import dev.skipflow.job.local.AnswerCollector;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * Real faults on real processes: the broker ({@code ./skipflow broker --log-dir}) and the job ({@code ./skipflow job
 * --checkpoint-dir}) each in its own JVM, {@code kill -9}ed mid-stream and started again on the same directories.
 * 500 valid prompts and 20 malformed ones are sent at a steady pace; a read_committed reader must then see exactly
 * one answer per prompt record (by id and by partition:offset): none lost, none duplicated.
 *
 * <p>The moments are random (printed with their seed; {@code -Dskipflow.faults.seed=S} repeats a run): the job is
 * killed once early and once late in the stream, in two runs.
 */
class ProcessFaultsIT {

    static final int VALID = Integer.getInteger("skipflow.faults.prompts", 500);
    static final double PER_SECOND = 40;

    static final long SEED = Long.getLong("skipflow.faults.seed", System.nanoTime());

    @Test
    void jobKilledEarlyInTheStreamAndRestartedOnItsCheckpoints() throws Exception {
        jobKilled("early", 0.10, 0.40);
    }

    @Test
    void jobKilledLateInTheStreamAndRestartedOnItsCheckpoints() throws Exception {
        jobKilled("late", 0.50, 0.85);
    }

    @Test
    void brokerKilledAndRestartedOnItsLogDirWhileTheJobRuns() throws Exception {
        Random random = new Random(SEED + 2);
        String suffix = StreamingScenario.suffix();
        Path work = Path.of("target", "it-faults", "broker-" + suffix).toAbsolutePath();
        int port = ChildProcess.freePort();
        String bootstrap = "127.0.0.1:" + port;
        StreamingScenario scenario = new StreamingScenario(VALID);
        ChildProcess broker = startBroker("broker", work, port);
        ChildProcess job = null;
        try {
            Topics.create(bootstrap, 2, "prompts-" + suffix, "completions-" + suffix, "prompts.dlq-" + suffix,
                    "metrics-" + suffix);
            int web = ChildProcess.freePort();
            List<String> args = ChildProcess.jobArgs(bootstrap, suffix);
            args.addAll(List.of("--checkpoint-dir", work.resolve("checkpoints").toString(), "--web-ui-port",
                    String.valueOf(web)));
            job = startJob("job", work, args);
            int killAt = (int) (scenario.expected() * (0.25 + 0.45 * random.nextDouble()));
            long downMs = 1000 + random.nextInt(3000);
            System.err.printf("ProcessFaultsIT broker: seed %d, killing the broker after %d of %d answers, down %d ms%n",
                    SEED, killAt, scenario.expected(), downMs);
            CompletableFuture<Void> sending = sendInBackground(scenario, bootstrap, "prompts-" + suffix);
            List<AnswerCollector.Answer> answers = Collections.synchronizedList(new ArrayList<>());
            try (JobStats stats = new JobStats(web);
                    AnswerCollector reader = new AnswerCollector(bootstrap, "completions-" + suffix, "prompts.dlq-" + suffix)) {
                collect(reader, answers, killAt, Duration.ofMinutes(3));
                broker.kill();
                System.err.printf("ProcessFaultsIT broker: killed -9 at %d answers%n", answers.size());
                Thread.sleep(downMs);
                broker = startBroker("broker", work, port);
                collect(reader, answers, scenario.expected(), Duration.ofMinutes(4));
                quiet(reader, answers, Duration.ofSeconds(5));
                System.err.printf("ProcessFaultsIT broker: %s%n", stats.describe(answers));
            }
            sending.get();
            assertTrue(job.isAlive(), "the job process outlived the broker restart");
            StreamingScenario.Tally t = verify(scenario, answers, suffix, "broker");
            assertEquals(VALID, t.completions());
        } finally {
            if (job != null) {
                job.close();
            }
            broker.close();
        }
    }

    private void jobKilled(String which, double from, double to) throws Exception {
        Random random = new Random(SEED + which.hashCode());
        String suffix = StreamingScenario.suffix();
        Path work = Path.of("target", "it-faults", "job-" + which + "-" + suffix).toAbsolutePath();
        int port = ChildProcess.freePort();
        String bootstrap = "127.0.0.1:" + port;
        StreamingScenario scenario = new StreamingScenario(VALID);
        ChildProcess broker = startBroker("broker", work, port);
        ChildProcess job = null;
        try {
            Topics.create(bootstrap, 2, "prompts-" + suffix, "completions-" + suffix, "prompts.dlq-" + suffix,
                    "metrics-" + suffix);
            int web = ChildProcess.freePort();
            List<String> args = ChildProcess.jobArgs(bootstrap, suffix);
            args.addAll(List.of("--checkpoint-dir", work.resolve("checkpoints").toString(), "--web-ui-port",
                    String.valueOf(web)));
            job = startJob("job", work, args);
            int killAt = (int) (scenario.expected() * (from + (to - from) * random.nextDouble()));
            System.err.printf("ProcessFaultsIT %s: seed %d, killing the job after %d of %d answers%n", which, SEED,
                    killAt, scenario.expected());
            CompletableFuture<Void> sending = sendInBackground(scenario, bootstrap, "prompts-" + suffix);
            List<AnswerCollector.Answer> answers = Collections.synchronizedList(new ArrayList<>());
            try (JobStats stats = new JobStats(web);
                    AnswerCollector reader = new AnswerCollector(bootstrap, "completions-" + suffix, "prompts.dlq-" + suffix)) {
                collect(reader, answers, killAt, Duration.ofMinutes(3));
                job.kill();
                System.err.printf("ProcessFaultsIT %s: killed -9 at %d answers%n", which, answers.size());
                job = startJob("job", work, args);
                job.awaitLine("resuming from .*chk-\\d+", Duration.ofSeconds(60));
                collect(reader, answers, scenario.expected(), Duration.ofMinutes(4));
                quiet(reader, answers, Duration.ofSeconds(5));
                System.err.printf("ProcessFaultsIT %s: %s (the heap sampled across both job processes)%n", which,
                        stats.describe(answers));
            }
            sending.get();
            StreamingScenario.Tally t = verify(scenario, answers, suffix, which);
            assertEquals(VALID, t.completions());
        } finally {
            if (job != null) {
                job.close();
            }
            broker.close();
        }
    }

    static ChildProcess startBroker(String name, Path work, int port) throws InterruptedException {
        ChildProcess b = ChildProcess.start(name, work, List.of("-Xmx384m"), "broker", "--port", String.valueOf(port),
                "--log-dir", work.resolve("kafka").toString());
        b.awaitLine("Kafka broker listening on", Duration.ofSeconds(90));
        return b;
    }

    static ChildProcess startJob(String name, Path work, List<String> args) throws InterruptedException {
        return startJob(name, work, List.of("-Xmx768m"), args);
    }

    static ChildProcess startJob(String name, Path work, List<String> jvm, List<String> args) throws InterruptedException {
        ChildProcess j = ChildProcess.start(name, work, jvm, ChildProcess.array(args));
        j.awaitLine("switched from state \\w+ to RUNNING", Duration.ofSeconds(120));
        return j;
    }

    static CompletableFuture<Void> sendInBackground(StreamingScenario scenario, String bootstrap, String topic) {
        return CompletableFuture.runAsync(() -> {
            try {
                scenario.sendPaced(bootstrap, topic, PER_SECOND);
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
    }

    /**
     * Polls until {@code atLeast} distinct output records arrived. The reader keeps no committed offsets, so after a
     * broker restart it rejoins its group and reads from the start again: a record seen again at the same output
     * partition:offset is the same record, not a duplicate, and is kept once. A duplicate answer would be a second
     * record at another offset.
     */
    static void collect(AnswerCollector reader, List<AnswerCollector.Answer> into, int atLeast, Duration timeout) {
        java.util.Set<String> seen = new java.util.HashSet<>();
        into.forEach(a -> seen.add(a.position()));
        long deadline = System.nanoTime() + timeout.toNanos();
        while (into.size() < atLeast && System.nanoTime() < deadline) {
            reader.poll(Duration.ofMillis(200), a -> {
                if (seen.add(a.position())) {
                    into.add(a);
                }
            });
        }
    }

    static void quiet(AnswerCollector reader, List<AnswerCollector.Answer> into, Duration quiet) {
        collect(reader, into, Integer.MAX_VALUE, quiet);
    }

    static StreamingScenario.Tally verify(StreamingScenario scenario, List<AnswerCollector.Answer> answers, String suffix,
            String which) throws Exception {
        System.err.printf("ProcessFaultsIT %s: %s%n", which, scenario.lostAndDuplicated(answers, "completions-" + suffix));
        StreamingScenario.Tally t = scenario.verify(answers, "prompts-" + suffix, "completions-" + suffix,
                "prompts.dlq-" + suffix, null);
        System.err.printf("ProcessFaultsIT %s: %d prompt records in, %d completions and %d dead letters out, "
                + "0 duplicated, 0 lost%n", which, t.records(), t.completions(), t.deadLetters());
        return t;
    }
}
