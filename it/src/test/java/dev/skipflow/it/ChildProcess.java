package dev.skipflow.it;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * A `./skipflow COMMAND ...` in its own JVM (this test JVM's classpath, so no shell script and no rebuild), its
 * stdout and stderr in one log file under target/. {@link #kill()} is {@code kill -9}. Every child still alive
 * when the test JVM exits is killed by a shutdown hook, so a failing or interrupted test leaves nothing behind.
 */
final class ChildProcess implements AutoCloseable {

    private static final Set<Process> LIVE = ConcurrentHashMap.newKeySet();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> LIVE.forEach(Process::destroyForcibly), "kill-children"));
    }

    final String name;
    final Path log;
    private final Process process;

    private ChildProcess(String name, Path log, Process process) {
        this.name = name;
        this.log = log;
        this.process = process;
        LIVE.add(process);
    }

    /** Starts {@code SkipflowCli args...} with {@code jvmArgs}; output goes to {@code logDir/name.log} (appended). */
    static ChildProcess start(String name, Path logDir, List<String> jvmArgs, String... args) {
        try {
            Files.createDirectories(logDir);
            Path log = logDir.resolve(name + ".log");
            List<String> cmd = new ArrayList<>();
            cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
            cmd.add("-Djava.awt.headless=true");
            cmd.add("-Dai.djl.offline=true");
            cmd.add("-Djava.io.tmpdir=" + Path.of("target", "tmp").toAbsolutePath());
            cmd.add("-Dlog4j2.configurationFile=" + logConfig(logDir));
            cmd.addAll(jvmArgs);
            cmd.add("-cp");
            cmd.add(System.getProperty("java.class.path"));
            cmd.add("dev.skipflow.job.cli.SkipflowCli");
            cmd.addAll(List.of(args));
            Files.writeString(log, "\n=== start " + String.join(" ", args) + "\n", StandardCharsets.UTF_8,
                    java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
            return new ChildProcess(name, log, p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Our INFO lines and Flink's job state changes, to the process's output (no secrets: the tests check). */
    private static Path logConfig(Path dir) throws IOException {
        Path f = dir.resolve("log4j2-child.xml");
        Files.writeString(f, """
                <?xml version="1.0" encoding="UTF-8"?>
                <Configuration status="WARN">
                  <Appenders>
                    <Console name="out" target="SYSTEM_ERR">
                      <PatternLayout pattern="%d{HH:mm:ss.SSS} %-5level %c{1} - %msg%n"/>
                    </Console>
                  </Appenders>
                  <Loggers>
                    <Logger name="dev.skipflow" level="INFO"/>
                    <Logger name="org.apache.kafka" level="${sys:skipflow.child.kafka.level:-ERROR}"/>
                    <Logger name="kafka" level="ERROR"/>
                    <Logger name="org.apache.flink" level="${sys:skipflow.child.flink.level:-ERROR}"/>
                    <Logger name="org.apache.flink.runtime.executiongraph.ExecutionGraph" level="INFO"/>
                    <Logger name="org.apache.flink.runtime.checkpoint.CheckpointCoordinator" level="INFO"/>
                    <Logger name="ai.djl" level="WARN"/>
                    <Logger name="ai.djl.util.cuda" level="ERROR"/>
                    <Root level="WARN"><AppenderRef ref="out"/></Root>
                  </Loggers>
                </Configuration>
                """, StandardCharsets.UTF_8);
        return f.toAbsolutePath();
    }

    long pid() {
        return process.pid();
    }

    boolean isAlive() {
        return process.isAlive();
    }

    String output() {
        try {
            return Files.readString(log, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Waits until the log has a line matching {@code regex}; fails when the process exits or time runs out. */
    void awaitLine(String regex, Duration timeout) throws InterruptedException {
        Pattern p = Pattern.compile(regex);
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (p.matcher(output()).find()) {
                return;
            }
            if (!process.isAlive()) {
                throw new AssertionError(name + " exited (" + process.exitValue() + ") before printing /" + regex
                        + "/; its log " + log + " ends:\n" + tail(40));
            }
            Thread.sleep(100);
        }
        throw new AssertionError(name + " did not print /" + regex + "/ within " + timeout + "; log " + log + " ends:\n"
                + tail(40));
    }

    /** Waits for the process to exit by itself; returns its exit code or null when it is still running. */
    Integer awaitExit(Duration timeout) throws InterruptedException {
        return process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS) ? process.exitValue() : null;
    }

    String tail(int lines) {
        List<String> all = output().lines().toList();
        return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
    }

    /** {@code kill -9}: no shutdown hooks, no flush, no cancellation; waits until it is gone. */
    void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
        LIVE.remove(process);
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            process.destroy(); // SIGTERM: the CLI's shutdown hooks stop the broker cleanly
            try {
                if (!process.waitFor(20, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                    process.waitFor(10, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                process.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
        LIVE.remove(process);
    }

    static int freePort() {
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static Path shared() {
        return StreamingScenario.shared();
    }

    /** The job's arguments every process test shares: the model, small batches, frequent checkpoints. */
    static List<String> jobArgs(String bootstrap, String suffix) {
        Path model = shared().resolve("models/stories260K");
        return new ArrayList<>(List.of("job", "--bootstrap-servers", bootstrap,
                "--model", model.resolve("stories260K.bin").toAbsolutePath().toString(),
                "--tokenizer", model.resolve("tok512.bin").toAbsolutePath().toString(), "--device", "cpu",
                "--prompts-topic", "prompts-" + suffix, "--completions-topic", "completions-" + suffix,
                "--dlq-topic", "prompts.dlq-" + suffix, "--metrics-topic", "metrics-" + suffix,
                "--group-id", "skipflow-" + suffix, "--transactional-id-prefix", "skipflow-" + suffix,
                "--checkpoint-interval-ms", "500", "--metrics-window-ms", "2000", "--max-batch", "16",
                "--max-in-flight", "64", "--max-payload-bytes", String.valueOf(StreamingScenario.MAX_PAYLOAD)));
    }

    static String[] array(List<String> l) {
        return l.toArray(new String[0]);
    }

    static Duration seconds(long s) {
        return Duration.ofSeconds(s);
    }
}
