package dev.skipflow.job.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.job.local.LocalRunner;
import dev.skipflow.job.local.LocalSqlRunner;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "sql", mixinStandardHelpOptions = true,
        description = {"Runs a Flink SQL script whose INSERTs become one streaming job on a local MiniCluster; ML_PREDICT "
                + "over a CREATE MODEL ... WITH ('provider' = 'skipflow') generates in-process (docs/SQL.md).",
            "By default it starts the embedded Kafka broker, feeds sample prompts to $${prompts-topic} and prints each "
                + "record of $${completions-topic} to stdout; without --once it keeps running until Ctrl-C.",
            "The script's placeholders $${bootstrap-servers}, $${prompts-topic} and $${completions-topic} are filled in; "
                + "--define adds more."})
public final class SqlCommand implements Callable<Integer> {

    @Option(names = "--file", required = true, paramLabel = "FILE", description = "The SQL script, e.g. examples/sql/prompts.sql.")
    Path file;

    @Option(names = {"-D", "--define"}, paramLabel = "NAME=VALUE", description = "A value for $${NAME} in the script (repeatable).")
    Map<String, String> defines = new LinkedHashMap<>();

    @Option(names = "--bootstrap-servers", paramLabel = "HOST:PORT",
            description = "An existing Kafka instead of the embedded broker; sample prompts are then sent only with --prompts.")
    String bootstrapServers;

    @Option(names = "--prompts-topic", paramLabel = "TOPIC", defaultValue = "prompts", description = "$${prompts-topic} (default: ${DEFAULT-VALUE}).")
    String promptsTopic;

    @Option(names = "--completions-topic", paramLabel = "TOPIC", defaultValue = "completions",
            description = "$${completions-topic}, printed to stdout (default: ${DEFAULT-VALUE}).")
    String completionsTopic;

    @Option(names = "--prompts", paramLabel = "N",
            description = "Sample prompts to send ({\"id\", \"prompt\"} records; default: 5 with the embedded broker, else 0).")
    Integer prompts;

    @Option(names = "--once", description = "Exit 0 once every sample prompt has its record on $${completions-topic}.")
    boolean once;

    @Option(names = "--kafka-port", paramLabel = "PORT", defaultValue = "9092",
            description = "Embedded broker port on 127.0.0.1; 0 = any free port (default: ${DEFAULT-VALUE}).")
    int kafkaPort;

    @Option(names = "--web-ui-port", paramLabel = "PORT", defaultValue = "8081",
            description = "Flink web UI port on 127.0.0.1; 0 = no web UI (default: ${DEFAULT-VALUE}).")
    int webUiPort;

    @Option(names = "--parallelism", paramLabel = "N", defaultValue = "1", description = "Job parallelism: task slots, one engine each (default: ${DEFAULT-VALUE}).")
    int parallelism;

    @Option(names = "--checkpoint-interval-ms", paramLabel = "MS", defaultValue = "1000",
            description = "Checkpoint interval; exactly-once Kafka sinks make rows visible at checkpoints (default: ${DEFAULT-VALUE}).")
    long checkpointIntervalMs;

    @Option(names = "--timeout-seconds", paramLabel = "SECONDS", defaultValue = "300", description = "With --once, give up (exit 1) after this long (default: ${DEFAULT-VALUE}).")
    int timeoutSeconds;

    @Override
    public Integer call() throws Exception {
        int samples = prompts != null ? prompts : bootstrapServers == null ? 5 : 0;
        if (samples < 0 || parallelism < 1 || checkpointIntervalMs < 100) {
            throw new IllegalArgumentException("--prompts must be >= 0, --parallelism >= 1, --checkpoint-interval-ms >= 100");
        }
        if (once && samples == 0) {
            throw new IllegalArgumentException("--once waits for the sample prompts' answers; give --prompts N (N >= 1)");
        }
        String script;
        try {
            script = Files.readString(file);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read the SQL script " + file + ": " + e);
        }
        if (bootstrapServers == null) {
            kafkaPort = Workdirs.portOrFree(kafkaPort, "Kafka");
        }
        webUiPort = Workdirs.portOrFree(webUiPort, "web UI");
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        System.err.println("skipflow sql: " + (bootstrapServers == null ? "starting the embedded Kafka broker and " : "")
                + "running " + file + "...");
        var settings = new LocalSqlRunner.Settings(script, defines, bootstrapServers, promptsTopic, completionsTopic, kafkaPort,
                parallelism, webUiPort, checkpointIntervalMs);
        try (LocalSqlRunner runner = LocalSqlRunner.start(settings, Workdirs.local(), System.err::println);
                var answers = runner.answers()) {
            System.err.println("skipflow sql: broker " + runner.bootstrapServers()
                    + (webUiPort > 0 ? ", web UI http://127.0.0.1:" + webUiPort : "") + ", job " + runner.job().getJobID());
            Set<String> pending = sendSamples(runner, samples);
            ObjectMapper json = new ObjectMapper();
            return AnswerPrinter.printUntilAnswered("sql", answers, pending, once, timeoutSeconds, a -> {
                out.println(a.value());
                return a.key() != null ? a.key() : idOf(json, a.value());
            });
        }
    }

    private Set<String> sendSamples(LocalSqlRunner runner, int samples) {
        ObjectMapper json = new ObjectMapper();
        List<byte[]> values = new ArrayList<>();
        Set<String> ids = new HashSet<>();
        for (int i = 0; i < samples; i++) {
            ObjectNode r = json.createObjectNode();
            String id = "sql-" + (i + 1);
            r.put("id", id);
            r.put("prompt", DemoCommand.SAMPLE_PROMPTS.get(i % DemoCommand.SAMPLE_PROMPTS.size()));
            values.add(LocalRunner.utf8(r.toString()));
            ids.add(id);
        }
        if (samples > 0) {
            runner.send(values);
            System.err.println("skipflow sql: sent " + samples + " prompts to " + promptsTopic + "; records of "
                    + completionsTopic + " follow (read_committed: visible at each checkpoint)");
        }
        return ids;
    }

    /** The id field of a record whose script did not key it. */
    private static String idOf(ObjectMapper json, String value) {
        try {
            return json.readTree(value).path("id").asText(null);
        } catch (IOException e) {
            return null;
        }
    }
}
