package dev.skipflow.job.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.job.JobOptions;
import dev.skipflow.job.local.EmbeddedKafkaBroker;
import dev.skipflow.job.local.StreamBench;
import dev.skipflow.job.options.ExitOptions;
import dev.skipflow.job.options.ModelOptions;
import dev.skipflow.job.options.OriginalOptions;
import dev.skipflow.job.options.RoutingOptions;
import dev.skipflow.model.spec.ModelSpec;
import dev.skipflow.model.bench.BenchRunner;
import dev.skipflow.model.bench.ThroughputBench;
import dev.skipflow.model.decoder.LlamaModel;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Measured decode throughput at several batch sizes and prefill throughput (medians of rounds).")
public final class BenchCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--batch-sizes", split = ",", defaultValue = "1,8,64",
            description = "Decode batch sizes (default: ${DEFAULT-VALUE}).")
    int[] batchSizes;

    @Option(names = "--steps", defaultValue = "128", description = "Tokens each sequence decodes per round (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--prompt-tokens", defaultValue = "8", description = "Prompt length for decode rounds (default: ${DEFAULT-VALUE}).")
    int promptTokens;

    @Option(names = "--prefill-tokens", defaultValue = "256", description = "Prompt length for prefill (default: ${DEFAULT-VALUE}).")
    int prefillTokens;

    @Option(names = "--rounds", defaultValue = "3", description = "Measured rounds per point; the median is reported (default: ${DEFAULT-VALUE}).")
    int rounds;

    @Option(names = "--warmup-seconds", defaultValue = "5", description = "Unmeasured warm-up before the rounds (default: ${DEFAULT-VALUE}).")
    double warmupSeconds;

    @Option(names = "--json", description = "Print one JSON object instead of a table.")
    boolean json;

    @Mixin
    RoutingOptions routing = new RoutingOptions();

    @Mixin
    ExitOptions exitOptions = new ExitOptions();

    @Mixin
    OriginalOptions original = new OriginalOptions();

    @Option(names = "--text", paramLabel = "FILE",
            description = "With --exit: prompts for the side-by-side decode, the first --prompt-tokens tokens of each line "
                    + "(default: ../shared/data/tinystories-valid-sample.txt).")
    java.nio.file.Path promptText;

    @Option(names = "--stream", description = "Also measure through Kafka and Flink: the job on a local MiniCluster "
            + "and embedded broker, with --concurrency requests outstanding, against the engine alone at the same batch.")
    boolean stream;

    @Option(names = "--sql", description = "With --stream: also run the same generation as a Flink SQL job (ML_PREDICT on a "
            + "'skipflow' model, same model, batch, in-flight limit, checkpoint interval and client) and compare the two "
            + "in --sql-pairs pairs of runs, the order alternating (DataStream first, then SQL first, ...).")
    boolean sql;

    @Option(names = "--sql-pairs", defaultValue = "2", description = "--sql: pairs of DataStream and SQL runs; the median "
            + "ratio is reported (default: ${DEFAULT-VALUE}).")
    int sqlPairs;

    @Option(names = "--delivery-pairs", defaultValue = "0", description = "With --stream: also compare the job's "
            + "--delivery exactly-once and at-least-once in this many pairs of runs, order alternating, same client and "
            + "settings (default: ${DEFAULT-VALUE} = no comparison).")
    int deliveryPairs;

    @Option(names = "--concurrency", defaultValue = "64", description = "--stream: requests kept outstanding (default: ${DEFAULT-VALUE}).")
    int concurrency;

    @Option(names = "--stream-max-batch", defaultValue = "64", description = "--stream: the job's --max-batch (default: ${DEFAULT-VALUE}).")
    int streamMaxBatch;

    @Option(names = "--checkpoint-interval-ms", defaultValue = "200",
            description = "--stream: checkpoint interval; completions become visible at checkpoints (default: ${DEFAULT-VALUE}).")
    long checkpointIntervalMs;

    @Option(names = "--duration-seconds", defaultValue = "30", description = "--stream: measured window (default: ${DEFAULT-VALUE}).")
    double durationSeconds;

    /** The job's settings for one streamed run: this bench's batch, in-flight limit and checkpoints, its own topics. */
    private JobOptions streamOptions(String bootstrap, String name) {
        JobOptions jo = new JobOptions();
        jo.bootstrapServers = bootstrap;
        jo.model = modelOptions;
        jo.maxBatch = streamMaxBatch;
        jo.maxInFlight = Math.max(concurrency, streamMaxBatch);
        jo.checkpointIntervalMs = checkpointIntervalMs;
        jo.promptsTopic = name + "-prompts";
        jo.completionsTopic = name + "-completions";
        jo.dlqTopic = name + "-dlq";
        jo.metricsTopic = name + "-metrics";
        jo.groupId = name;
        jo.transactionalIdPrefix = name;
        return jo;
    }

    private static double median(double[] values) {
        double[] v = values.clone();
        java.util.Arrays.sort(v);
        return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    }

    private static double engineTokensPerSecond(ThroughputBench.Report r, int batch) {
        return r.decode().stream().filter(d -> d.batch() == batch).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("--batch-sizes must include --stream-max-batch " + batch))
                .tokensPerSecond();
    }

    /** This model and its original in alternating rounds: decode per batch size and prefill, speed-ups paired. */
    private int againstOriginal() throws Exception {
        var options = new ThroughputBench.Options(batchSizes, steps, promptTokens, prefillTokens, rounds, 1234L,
                warmupSeconds);
        var originalWeights = original.weights(modelOptions, w -> System.err.println("bench: warning: " + w));
        String originalName = original.source(modelOptions).describe();
        ThroughputBench.Comparison cmp;
        long params = modelOptions.weights().parameterCount();
        long originalParams = originalWeights.parameterCount();
        String device;
        double flopsSaved;
        double prefillSaved;
        try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device());
                LlamaModel reference = new LlamaModel(originalWeights, modelOptions.device())) {
            device = model.device().toString();
            var f = model.flops();
            int at = promptTokens + steps / 2; // a decoding token midway through a round
            flopsSaved = 1 - (double) (f.allBlocks(at) + f.head()) / (f.denseAllBlocks(at) + f.denseHead());
            long ran = f.head();
            long dense = f.denseHead(); // a prefill's head runs for its last position only
            for (int p = 0; p < prefillTokens; p++) {
                ran += f.allBlocks(p);
                dense += f.denseAllBlocks(p);
            }
            prefillSaved = 1 - (double) ran / dense;
            cmp = new ThroughputBench(model, options).againstOriginal(reference, msg -> System.err.println("bench: " + msg));
        }
        if (json) {
            ObjectMapper m = new ObjectMapper();
            ObjectNode o = m.createObjectNode();
            o.put("model", modelOptions.describeModel());
            o.put("original", originalName);
            o.put("parameters", params);
            o.put("originalParameters", originalParams);
            o.put("decodeFlopsSavedPerToken", flopsSaved);
            o.put("prefillFlopsSaved", prefillSaved);
            o.put("device", device);
            o.put("cores", Runtime.getRuntime().availableProcessors());
            o.put("steps", steps);
            o.put("promptTokens", promptTokens);
            o.put("rounds", rounds);
            o.set("decode", m.valueToTree(cmp.decode()));
            o.set("prefill", m.valueToTree(cmp.prefill()));
            System.out.println(m.writerWithDefaultPrettyPrinter().writeValueAsString(o));
        } else {
            System.out.printf("%s (%,d parameters) vs its original %s (%,d), %.1f%% fewer parameters, %.1f%% of a decode "
                            + "token's FLOPs saved; %s, %d cores%n", modelOptions.describeModel(), params, originalName,
                    originalParams, 100.0 * (originalParams - params) / originalParams, 100 * flopsSaved, device,
                    Runtime.getRuntime().availableProcessors());
            System.out.printf("%-22s %16s %16s %9s %12s %14s%n", "", "original tok/s", "this tok/s", "speedup",
                    "FLOPs saved", "ideal (share)");
            for (var p : cmp.decode()) {
                System.out.printf("%-22s %,16.0f %,16.0f %8.3fx %11.1f%% %7.2fx (%.0f%%)%n", "decode batch " + p.size(),
                        p.originalTokensPerSecond(), p.tokensPerSecond(), p.speedup(), 100 * flopsSaved,
                        1 / (1 - flopsSaved), 100 * p.speedup() * (1 - flopsSaved));
            }
            var p = cmp.prefill();
            System.out.printf("%-22s %,16.0f %,16.0f %8.3fx %11.1f%% %7.2fx (%.0f%%)%n", "prefill " + p.size() + " tokens",
                    p.originalTokensPerSecond(), p.tokensPerSecond(), p.speedup(), 100 * prefillSaved,
                    1 / (1 - prefillSaved), 100 * p.speedup() * (1 - prefillSaved));
            System.out.println("(ideal = 1 / (1 - FLOPs saved); share = measured speed-up / ideal)");
            System.out.printf("(medians of %d rounds alternating between the models; speedup = median of the paired "
                    + "ratios; %d decode steps per round from %d-token prompts)%n", rounds, steps, promptTokens);
        }
        return 0;
    }

    @Override
    public Integer call() throws Exception {
        if (rounds < 1 || steps < 1 || promptTokens < 1 || prefillTokens < 1) {
            throw new IllegalArgumentException("--rounds, --steps, --prompt-tokens and --prefill-tokens must be positive");
        }
        if (original.enabled()) {
            if (routing.enabled() || exitOptions.enabled() || stream) {
                throw new IllegalArgumentException("--original compares the two models' dense paths; drop --router/"
                        + "--baseline, --exit and --stream");
            }
            return againstOriginal();
        }
        BenchRunner.Result measured;
        ModelSpec c;
        String device;
        try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device())) {
            c = model.spec();
            device = model.device().toString();
            var router = routing.enabled() ? routing.router(model, modelOptions.tokenizer()) : null;
            measured = BenchRunner.run(model, new ThroughputBench.Options(batchSizes, steps, promptTokens, prefillTokens,
                            rounds, 1234L, warmupSeconds), router, routing.routeDecode(), exitOptions.sweep(model), promptText,
                    modelOptions::tokenizer, msg -> System.err.println("bench: " + msg));
        }
        ThroughputBench.Report r = measured.report();
        ThroughputBench.RoutedPrefill routed = r.routedPrefill();
        List<ThroughputBench.AdaptiveDecode> exitDecode = measured.adaptiveDecode();
        if (sql && (!stream || sqlPairs < 1)) {
            throw new IllegalArgumentException("--sql compares with the DataStream job: give --stream too, and --sql-pairs >= 1");
        }
        StreamBench.Result streamed = null;
        List<StreamBench.Result[]> pairs = new java.util.ArrayList<>(); // {datastream, sql}
        List<StreamBench.Result[]> deliveries = new java.util.ArrayList<>(); // {exactly-once, at-least-once}
        if (deliveryPairs > 0 && !stream) {
            throw new IllegalArgumentException("--delivery-pairs compares streamed runs: give --stream too");
        }
        if (stream) {
            // one broker for every run, fresh topics per run
            try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start(0,
                    Workdirs.local().resolve("kafka-bench-" + System.nanoTime()), true)) {
                int run = 0;
                for (int pair = 0; pair < (sql ? sqlPairs : 1); pair++) {
                    StreamBench.Result[] both = new StreamBench.Result[2];
                    // alternate which path runs first, so warm-up and machine drift do not favour one side
                    for (int side : pair % 2 == 0 ? new int[] {0, 1} : new int[] {1, 0}) {
                        JobOptions jo = streamOptions(broker.bootstrapServers(), "bench-" + run++);
                        if (side == 0) {
                            both[0] = StreamBench.run(jo, Workdirs.local(), concurrency, steps, warmupSeconds + 5,
                                    durationSeconds, msg -> System.err.println("bench --stream: " + msg));
                        } else if (sql) {
                            both[1] = StreamBench.runSql(jo, Workdirs.local(), concurrency, steps, warmupSeconds + 5,
                                    durationSeconds, msg -> System.err.println("bench --sql: " + msg));
                        }
                    }
                    streamed = streamed == null ? both[0] : streamed;
                    pairs.add(both);
                }
                for (int pair = 0; pair < deliveryPairs; pair++) {
                    StreamBench.Result[] both = new StreamBench.Result[2]; // {exactly-once, at-least-once}
                    for (int side : pair % 2 == 0 ? new int[] {0, 1} : new int[] {1, 0}) {
                        JobOptions jo = streamOptions(broker.bootstrapServers(), "bench-" + run++);
                        jo.delivery = side == 0 ? "exactly-once" : "at-least-once";
                        both[side] = StreamBench.run(jo, Workdirs.local(), concurrency, steps, warmupSeconds + 5,
                                durationSeconds, msg -> System.err.println("bench --delivery " + jo.delivery + ": " + msg));
                    }
                    deliveries.add(both);
                }
            }
        }
        double sqlVsStream = sql ? median(pairs.stream().mapToDouble(p -> p[1].tokensPerSecond() / p[0].tokensPerSecond())
                .toArray()) : Double.NaN;
        if (json) {
            ObjectMapper m = new ObjectMapper();
            ObjectNode o = m.createObjectNode();
            o.put("model", modelOptions.describeModel());
            o.put("parameters", c.parameterCount());
            o.put("device", device);
            o.put("cores", Runtime.getRuntime().availableProcessors());
            o.put("jvm", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
            o.put("path", "dense");
            o.put("steps", steps);
            o.put("promptTokens", promptTokens);
            o.put("rounds", rounds);
            ArrayNode decode = o.putArray("decode");
            for (var p : r.decode()) {
                ObjectNode d = decode.addObject();
                d.put("batch", p.batch());
                d.put("tokensPerSecond", p.tokensPerSecond());
                d.put("msPerStep", p.msPerStep());
                ArrayNode rs = d.putArray("roundTokensPerSecond");
                for (double v : p.roundTokensPerSecond()) {
                    rs.add(v);
                }
            }
            ObjectNode pf = o.putObject("prefill");
            pf.put("tokens", r.prefill().tokens());
            pf.put("tokensPerSecond", r.prefill().tokensPerSecond());
            pf.put("msPerPrompt", r.prefill().msPerPrompt());
            if (routed != null) {
                o.set("routedPrefill", m.valueToTree(routed));
            }
            if (!exitDecode.isEmpty()) {
                o.set("exitDecode", m.valueToTree(exitDecode));
            }
            if (streamed != null) {
                o.set("stream", m.valueToTree(streamed));
                o.put("streamVsEngine", streamed.tokensPerSecond() / engineTokensPerSecond(r, streamMaxBatch));
            }
            if (sql) {
                ArrayNode ps = o.putArray("sqlPairs");
                for (StreamBench.Result[] p : pairs) {
                    ObjectNode po = ps.addObject();
                    po.set("datastream", m.valueToTree(p[0]));
                    po.set("sql", m.valueToTree(p[1]));
                    po.put("sqlVsStream", p[1].tokensPerSecond() / p[0].tokensPerSecond());
                }
                o.put("sqlVsStream", sqlVsStream);
            }
            if (!deliveries.isEmpty()) {
                ArrayNode ds = o.putArray("deliveryPairs");
                for (StreamBench.Result[] p : deliveries) {
                    ObjectNode po = ds.addObject();
                    po.set("exactlyOnce", m.valueToTree(p[0]));
                    po.set("atLeastOnce", m.valueToTree(p[1]));
                }
            }
            System.out.println(m.writerWithDefaultPrettyPrinter().writeValueAsString(o));
        } else {
            System.out.printf("%s (%,d parameters) on %s, %d cores, dense path%n", modelOptions.describeModel(),
                    c.parameterCount(), device, Runtime.getRuntime().availableProcessors());
            System.out.printf("%-22s %14s %12s%n", "decode", "tokens/s", "ms/step");
            for (var p : r.decode()) {
                System.out.printf("%-22s %,14.0f %12.2f%n", "batch " + p.batch(), p.tokensPerSecond(), p.msPerStep());
            }
            System.out.printf("%-22s %,14.0f %12.2f ms/prompt%n", "prefill " + r.prefill().tokens() + " tokens",
                    r.prefill().tokensPerSecond(), r.prefill().msPerPrompt());
            System.out.printf("(medians of %d rounds; %d decode steps per round from %d-token prompts)%n", rounds, steps,
                    promptTokens);
            if (routed != null) {
                System.out.printf("prefill %d tokens, %s: %,.0f tokens/s vs dense %,.0f in alternating rounds = %.2fx "
                                + "(%.1f%% of FLOPs saved)%n", routed.routed().tokens(), routed.router(),
                        routed.routed().tokensPerSecond(), routed.dense().tokensPerSecond(), routed.speedup(),
                        100 * routed.savedFraction());
            }
            for (var e : exitDecode) {
                String exits = e.meanExitLayer() == 0 ? "" : String.format(", mean exit layer %.2f, %.1f%% of tokens "
                        + "exited early", e.meanExitLayer(), 100 * e.earlyExitShare());
                String bound = e.matmulBound() == null ? "" : String.format("; matrix products alone allow %.2fx "
                        + "at %.1f%% of token-blocks skipped", e.matmulBound(), 100 * e.skippedShare());
                System.out.printf("decode batch %d, %s: %,.0f tokens/s vs dense %,.0f in alternating rounds = %.2fx "
                                + "(%.1f%% of decode FLOPs saved, ideal %.2fx%s%s)%n", e.batch(), e.adaptive(),
                        e.adaptiveTokensPerSecond(), e.denseTokensPerSecond(), e.speedup(), 100 * e.savedFraction(),
                        1 / (1 - e.savedFraction()), bound, exits);
            }
            if (streamed != null) {
                double engine = engineTokensPerSecond(r, streamMaxBatch);
                System.out.printf("through Kafka + Flink (exactly-once, checkpoint every %d ms), %d requests outstanding, "
                                + "max batch %d, maxTokens %d, %.0f s measured:%n", streamed.checkpointIntervalMs(),
                        streamed.concurrency(), streamMaxBatch, streamed.maxTokens(), streamed.seconds());
                System.out.printf("  %.1f completions/s, %,.0f completion tokens/s = %.0f%% of the engine's batch-%d decode; "
                                + "latency p50 %.0f ms, p99 %.0f ms%n", streamed.completionsPerSecond(),
                        streamed.tokensPerSecond(), 100 * streamed.tokensPerSecond() / engine, streamMaxBatch,
                        streamed.latencyP50Ms(), streamed.latencyP99Ms());
                System.out.printf("  inside the job (parse to completion): latency p50 %.0f ms, time to first token p50 %.0f ms%n",
                        streamed.jobLatencyP50Ms(), streamed.jobTimeToFirstTokenP50Ms());
            }
            if (!deliveries.isEmpty()) {
                System.out.printf("--delivery exactly-once vs at-least-once, %d requests outstanding, checkpoint every %d ms, "
                        + "%d pairs of runs, order alternating:%n", concurrency, checkpointIntervalMs, deliveries.size());
                System.out.printf("  %-4s %-14s %14s %18s %14s %14s%n", "pair", "delivery", "completions/s",
                        "completion tok/s", "latency p50", "latency p99");
                for (int i = 0; i < deliveries.size(); i++) {
                    for (int side = 0; side < 2; side++) {
                        StreamBench.Result x = deliveries.get(i)[side];
                        System.out.printf("  %-4d %-14s %14.1f %,18.0f %11.0f ms %11.0f ms%n", i + 1,
                                side == 0 ? "exactly-once" : "at-least-once", x.completionsPerSecond(), x.tokensPerSecond(),
                                x.latencyP50Ms(), x.latencyP99Ms());
                    }
                }
            }
            if (sql) {
                System.out.printf("DataStream job vs Flink SQL (ML_PREDICT on a 'skipflow' model), same settings, %d pairs of "
                        + "runs, order alternating:%n", pairs.size());
                System.out.printf("  %-4s %-11s %14s %18s %14s %14s%n", "pair", "path", "completions/s", "completion tok/s",
                        "latency p50", "latency p99");
                for (int i = 0; i < pairs.size(); i++) {
                    for (StreamBench.Result x : pairs.get(i)) {
                        System.out.printf("  %-4d %-11s %14.1f %,18.0f %11.0f ms %11.0f ms%n", i + 1, x.path(),
                                x.completionsPerSecond(), x.tokensPerSecond(), x.latencyP50Ms(), x.latencyP99Ms());
                    }
                }
                System.out.printf("  SQL / DataStream completion tokens/s, median of the pairs' ratios: %.0f%%%n",
                        100 * sqlVsStream);
            }
        }
        return 0;
    }
}
