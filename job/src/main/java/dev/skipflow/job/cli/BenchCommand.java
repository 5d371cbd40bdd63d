package dev.skipflow.job.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.model.LlamaConfig;
import dev.skipflow.model.bench.ThroughputBench;
import dev.skipflow.model.decoder.LlamaModel;
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

    @Override
    public Integer call() throws Exception {
        if (rounds < 1 || steps < 1 || promptTokens < 1 || prefillTokens < 1) {
            throw new IllegalArgumentException("--rounds, --steps, --prompt-tokens and --prefill-tokens must be positive");
        }
        ThroughputBench.Report r;
        LlamaConfig c;
        String device;
        try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device())) {
            c = model.config();
            device = model.device().toString();
            r = new ThroughputBench(model, new ThroughputBench.Options(batchSizes, steps, promptTokens, prefillTokens,
                    rounds, 1234L, warmupSeconds)).run(msg -> System.err.println("bench: " + msg));
        }
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
        }
        return 0;
    }
}
