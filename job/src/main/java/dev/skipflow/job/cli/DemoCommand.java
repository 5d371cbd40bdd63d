package dev.skipflow.job.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.job.JobOptions;
import dev.skipflow.model.ShippedArtifacts;
import dev.skipflow.model.weights.Fingerprint;
import dev.skipflow.job.local.AnswerCollector;
import dev.skipflow.job.local.LocalRunner;
import dev.skipflow.job.options.ModelOptions;
import dev.skipflow.job.options.RoutingOptions;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"Starts the embedded Kafka broker and the streaming job on a local MiniCluster (web UI on "
                + "http://127.0.0.1:8081), feeds sample prompts and prints each completion JSON line to stdout.",
            "Without --once it keeps running (send more prompts to the printed broker address) until Ctrl-C."})
public final class DemoCommand implements Callable<Integer> {

    static final List<String> SAMPLE_PROMPTS = List.of("Once upon a time", "Lily and Tom went to the park",
            "The little dog", "One day, a girl named Sue", "There was a big red ball");

    @Mixin
    ModelOptions modelOptions = new ModelOptions();

    @Mixin
    RoutingOptions routing = new RoutingOptions();

    @Option(names = "--exit", paramLabel = "PATH", description = "A trained exit-classifier artifact (from train-exit).")
    java.nio.file.Path exit;

    @Option(names = "--dense", description = "Serve the plain dense path: no router and no exit classifier, not even "
            + "the ones shipped for the default model.")
    boolean dense;

    @Option(names = "--once", description = "Exit 0 once every sample prompt is answered.")
    boolean once;

    @Option(names = "--prompts", defaultValue = "5", description = "How many sample prompts to send (default: ${DEFAULT-VALUE}).")
    int prompts;

    @Option(names = "--max-tokens", defaultValue = "64", description = "maxTokens of each sample prompt (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--kafka-port", defaultValue = "9092", description = "Embedded broker port on 127.0.0.1; 0 = any free port (default: ${DEFAULT-VALUE}).")
    int kafkaPort;

    @Option(names = "--web-ui-port", defaultValue = "8081", description = "Flink web UI port on 127.0.0.1; 0 = no web UI (default: ${DEFAULT-VALUE}).")
    int webUiPort;

    @Option(names = "--timeout-seconds", defaultValue = "300", description = "With --once, give up (exit 1) after this long (default: ${DEFAULT-VALUE}).")
    int timeoutSeconds;

    @Override
    public Integer call() throws Exception {
        if (prompts < 1) {
            throw new IllegalArgumentException("--prompts must be at least 1");
        }
        if (dense && (routing.enabled() || exit != null)) {
            throw new IllegalArgumentException("--dense serves without a router or an exit classifier; drop --router, "
                    + "--baseline or --exit, or drop --dense");
        }
        if (!dense && !routing.enabled() && exit == null) {
            // adaptive by default: a bundle's own artifacts, else those shipped for this model's fingerprint, if any
            ShippedArtifacts.Found bundle = modelOptions.source().synthetic() != null ? new ShippedArtifacts.Found(null, null)
                    : ShippedArtifacts.inBundle(modelOptions.source().modelPath());
            ShippedArtifacts.Found shipped = bundle.any() ? bundle
                    : ShippedArtifacts.forModel(Fingerprint.of(modelOptions.weights()));
            if (shipped.router() != null) {
                routing.useRouter(shipped.router());
            }
            exit = shipped.exit();
            System.err.println("skipflow demo: " + (shipped.any() ? "adaptive:"
                    + (shipped.router() != null ? " router " + shipped.router() : "")
                    + (shipped.exit() != null ? " exit " + shipped.exit() : "")
                    + (bundle.any() ? " (the bundle's own" : " (shipped for this model") + "; --dense for the plain path)"
                    : "no router or exit classifier ships for this model; serving dense (train them with train-router "
                            + "and train-exit, then pass --router and --exit)"));
        }
        JobOptions options = new JobOptions();
        options.model = modelOptions;
        options.routing = routing;
        options.exit = exit;
        options.checkpointIntervalMs = 1000; // completions become visible at checkpoints: keep the demo snappy
        options.maxBatch = 16;
        options.maxInFlight = 64;
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        ObjectMapper json = new ObjectMapper();
        System.err.println("skipflow demo: starting the embedded Kafka broker and the job (model " + modelOptions.describeModel() + ")...");
        kafkaPort = Workdirs.portOrFree(kafkaPort, "Kafka");
        webUiPort = Workdirs.portOrFree(webUiPort, "web UI");
        try (LocalRunner runner = LocalRunner.start(options, Workdirs.local(), kafkaPort, 1, webUiPort);
                AnswerCollector answers = runner.answers()) {
            System.err.println("skipflow demo: broker " + runner.bootstrapServers() + (webUiPort > 0
                    ? ", web UI http://127.0.0.1:" + webUiPort : ", no web UI (--web-ui-port 0)") + ", job "
                    + runner.job().getJobID());
            List<byte[]> values = new ArrayList<>();
            Set<String> pending = new HashSet<>();
            for (int i = 0; i < prompts; i++) {
                ObjectNode req = json.createObjectNode();
                String id = "demo-" + (i + 1);
                req.put("id", id);
                req.put("prompt", SAMPLE_PROMPTS.get(i % SAMPLE_PROMPTS.size()));
                req.put("maxTokens", maxTokens);
                values.add(LocalRunner.utf8(req.toString()));
                pending.add(id);
            }
            runner.send(values);
            System.err.println("skipflow demo: sent " + prompts + " prompts to topic " + options.promptsTopic
                    + "; completions follow (read_committed, visible at each checkpoint)");
            long sentNanos = System.nanoTime();
            DemoSummary summary = new DemoSummary(prompts);
            return AnswerPrinter.printUntilAnswered("demo", answers, pending, once, timeoutSeconds, a -> {
                if (!a.topic().equals(options.completionsTopic)) {
                    System.err.println("dead letter: " + a.value());
                    return null;
                }
                out.println(a.value());
                try {
                    if (summary.add(json.readTree(a.value()))) {
                        summary.print(out, (System.nanoTime() - sentNanos) / 1e9);
                    }
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
                return a.key();
            });
        }
    }
}
