package dev.skipflow.job.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skipflow.job.options.ExitOptions;
import dev.skipflow.job.options.ModelOptions;
import dev.skipflow.job.options.RoutingOptions;
import dev.skipflow.model.engine.BatchEngine;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.engine.Sequence;
import dev.skipflow.model.eval.Fluency;
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
        description = {"Print the completion of one prompt (generated text only) to stdout; statistics go to stderr. "
                + "With --router/--baseline and --exit the generation is adaptive, as the job serves it.",
            "--fluency instead generates the demo's sample prompts greedily, dense and adaptive side by side, and "
                    + "prints each pair with its repetition (seq-rep-4: the share of 4-grams that repeat an earlier one)."})
public final class GenerateCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    RoutingOptions routing = new RoutingOptions();

    @Mixin
    ExitOptions exitOptions = new ExitOptions();

    @Option(names = "--prompt", description = "The prompt text (required unless --fluency).")
    String prompt;

    @Option(names = "--fluency", description = "Greedy generations of the demo prompts, dense and with the router and "
            + "exit classifier given, side by side, with their repetition.")
    boolean fluency;

    @Option(names = "--json", description = "With --fluency: print one JSON object instead of text.")
    boolean json;

    @Option(names = "--max-tokens", defaultValue = "64", description = "Most tokens to generate (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "0", description = "0 = greedy (default: ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = "--top-p", defaultValue = "1", description = "Nucleus sampling mass in (0,1] (default: ${DEFAULT-VALUE}).")
    float topP;

    @Option(names = "--seed", description = "RNG seed for sampling (default: random).")
    Long seed;

    @Override
    public Integer call() throws Exception {
        if (fluency) {
            return fluency();
        }
        if (json) {
            throw new IllegalArgumentException("--json goes with --fluency");
        }
        SamplingParams params = new SamplingParams(maxTokens, temperature, topP, seed);
        Tokenizer tokenizer = modelOptions.tokenizer();
        if (prompt == null || prompt.isEmpty()) {
            throw new IllegalArgumentException("--prompt is required and must not be empty (or give --fluency)");
        }
        int[] tokens = tokenizer.encode(prompt, true);
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device());
                BatchEngine engine = BatchEngine.builder(model).maxBatch(1).router(routing.router(model, tokenizer))
                        .routeDecode(routing.routeDecode()).exit(exitOptions.classifier(model)).stopTokens(tokenizer)
                        .build()) {
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

    private int fluency() throws Exception {
        if (prompt != null) {
            throw new IllegalArgumentException("--fluency generates the demo prompts: give it without --prompt");
        }
        if (temperature != 0) {
            throw new IllegalArgumentException("--fluency compares greedy generations: give it without --temperature");
        }
        if (!routing.enabled() && !exitOptions.enabled()) {
            throw new IllegalArgumentException("--fluency compares dense with adaptive generation: give --router or "
                    + "--baseline, and/or --exit");
        }
        Tokenizer tokenizer = modelOptions.tokenizer();
        Fluency.Result r;
        try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device())) {
            r = Fluency.compare(model, tokenizer, DemoCommand.SAMPLE_PROMPTS, maxTokens, routing.router(model, tokenizer),
                    routing.routeDecode(), exitOptions.classifier(model));
        }
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        if (json) {
            out.println(new ObjectMapper().writeValueAsString(r));
            return 0;
        }
        for (Fluency.Pair p : r.pairs()) {
            out.printf("prompt: %s%n  dense    (seq-rep-4 %.3f): %s%n  adaptive (seq-rep-4 %.3f, %.1f%% of FLOPs saved, "
                            + "first %d tokens as dense): %s%n", p.prompt(), p.dense().repeated(),
                    p.dense().text().replace('\n', ' '), p.adaptive().repeated(), 100 * p.adaptive().savedFraction(),
                    p.commonPrefix(), p.adaptive().text().replace('\n', ' '));
        }
        out.printf("mean seq-rep-4 over %d demo prompts, %d tokens at most: dense %.3f, adaptive %.3f%n",
                r.pairs().size(), maxTokens, r.denseRepeated(), r.adaptiveRepeated());
        return 0;
    }
}
