package dev.skipflow.model.bench;

import dev.skipflow.model.ModelPaths;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.exit.ExitClassifier;
import dev.skipflow.model.routing.TokenRouter;
import dev.skipflow.model.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * What {@code bench} measures on one model: dense decode and prefill, then, side by side with dense, prefill with
 * the router and decode with each adaptive configuration at every batch size.
 */
public final class BenchRunner {

    /**
     * @param report dense decode and prefill, with the routed prefill when a router was given
     * @param adaptiveDecode per exit classifier and batch size, it alone then with the router; the router alone
     *     per batch size when there are no exit classifiers
     */
    public record Result(ThroughputBench.Report report, List<ThroughputBench.AdaptiveDecode> adaptiveDecode) {}

    private BenchRunner() {}

    /**
     * @param router null for none
     * @param routeDecode whether the router also acts on decoding tokens (false: prompts only)
     * @param exits exit classifiers to decode with; may be empty
     * @param promptText prompts for the adaptive decode, the first {@code promptTokens} tokens of each line; null
     *     for the valid sample
     * @param tokenizer asked for only to read those prompts, so a dense bench needs no tokenizer
     */
    public static Result run(LlamaModel model, ThroughputBench.Options options, TokenRouter router, boolean routeDecode,
            List<ExitClassifier> exits, Path promptText, Supplier<Tokenizer> tokenizer, Consumer<String> log) {
        var bench = new ThroughputBench(model, options);
        ThroughputBench.Report dense = bench.run(log);
        ThroughputBench.RoutedPrefill routed = router == null ? null : bench.prefillSideBySide(router, log);
        List<ThroughputBench.AdaptiveDecode> decode = new ArrayList<>();
        if (!exits.isEmpty() || router != null) {
            List<int[]> prompts = Documents.read(promptText != null ? promptText
                    : ModelPaths.sharedData("tinystories-valid-sample.txt"), tokenizer.get(), options.promptTokens(), 0);
            if (exits.isEmpty()) {
                // decoding tokens routed alone (learned routers skip in decode; FTP's static router never does)
                for (int b : options.batchSizes()) {
                    decode.add(bench.decodeSideBySide(router, null, prompts, b, routeDecode, log));
                }
            }
            for (ExitClassifier exit : exits) {
                for (int b : options.batchSizes()) {
                    decode.add(bench.decodeSideBySide(null, exit, prompts, b, routeDecode, log));
                    if (router != null) {
                        decode.add(bench.decodeSideBySide(router, exit, prompts, b, routeDecode, log));
                    }
                }
            }
        }
        return new Result(new ThroughputBench.Report(dense.decode(), dense.prefill(), routed), decode);
    }
}
