package dev.skipflow.job.cli;

import dev.skipflow.job.options.ModelOptions;
import dev.skipflow.model.engine.BatchEngine;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.engine.Sequence;
import dev.skipflow.model.flops.Savings;
import dev.skipflow.model.sampling.SamplingParams;
import dev.skipflow.model.tokenizer.Tokenizer;
import dev.skipflow.model.tokenizer.Utf8Stream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Print the completion of one prompt (generated text only) to stdout; statistics go to stderr.")
public final class GenerateCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--prompt", required = true, description = "The prompt text.")
    String prompt;

    @Option(names = "--max-tokens", defaultValue = "64", description = "Most tokens to generate (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "0", description = "0 = greedy (default: ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = "--top-p", defaultValue = "1", description = "Nucleus sampling mass in (0,1] (default: ${DEFAULT-VALUE}).")
    float topP;

    @Option(names = "--seed", description = "RNG seed for sampling (default: random).")
    Long seed;

    @Override
    public Integer call() {
        SamplingParams params = new SamplingParams(maxTokens, temperature, topP, seed);
        Tokenizer tokenizer = modelOptions.tokenizer();
        if (prompt.isEmpty()) {
            throw new IllegalArgumentException("--prompt must not be empty");
        }
        int[] tokens = tokenizer.encode(prompt, true);
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device());
                BatchEngine engine = BatchEngine.builder(model).maxBatch(1).stopTokens(tokenizer).build()) {
            Sequence s = new Sequence(prompt, tokens, params);
            engine.submit(s);
            Utf8Stream text = new Utf8Stream();
            int printed = 0;
            int prev = tokens[tokens.length - 1];
            while (!s.isFinished()) {
                engine.step();
                int[] gen = s.generated();
                for (; printed < gen.length; printed++) {
                    out.print(text.push(tokenizer.pieceBytes(prev, gen[printed])));
                    prev = gen[printed];
                }
            }
            out.println(text.flush());
            double total = (s.finishedNanos() - s.submittedNanos()) / 1e9;
            double ttft = (s.firstTokenNanos() - s.submittedNanos()) / 1e9;
            Savings sv = s.account().savings();
            System.err.printf("prompt tokens %d, completion tokens %d, finish %s, time to first token %.1f ms, "
                            + "%.1f tokens/s after it, %.3f GFLOP%n",
                    tokens.length, s.generatedCount(), s.finishReason().name().toLowerCase(), ttft * 1e3,
                    s.generatedCount() > 1 ? (s.generatedCount() - 1) / (total - ttft) : 0.0,
                    sv.executedFlops() / 1e9);
        }
        return 0;
    }
}
