package dev.skipflow.job.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.eval.Documents;
import dev.skipflow.model.eval.PerplexityEvaluator;
import dev.skipflow.model.flops.Savings;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "eval", mixinStandardHelpOptions = true,
        description = "Perplexity of a text file: each non-empty line is a document (BOS + encoding, truncated to "
                + "--max-len); NLL summed over every predicted position; perplexity = exp(NLL / predicted tokens).")
public final class EvalCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--text", required = true, paramLabel = "FILE", description = "Text file, one document per line.")
    Path text;

    @Option(names = "--max-len", defaultValue = "256", description = "Tokens per document, BOS included (default: ${DEFAULT-VALUE}).")
    int maxLen;

    @Option(names = "--max-docs", defaultValue = "0", description = "Keep the first N documents; 0 = all (default).")
    int maxDocs;

    @Option(names = "--json", description = "Print one JSON object instead of text.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        List<int[]> docs = Documents.read(text, modelOptions.tokenizer(), maxLen, maxDocs);
        if (docs.isEmpty()) {
            throw new IllegalArgumentException(text + " has no non-empty lines to evaluate");
        }
        PerplexityEvaluator.Result r;
        try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device());
                ProgressBar bar = new ProgressBarBuilder().setTaskName("eval").setInitialMax(docs.size())
                        .setStyle(ProgressBarStyle.ASCII).setConsumer(Progress.stderrConsumer()).build()) {
            r = new PerplexityEvaluator(model).evaluate(docs, bar::stepTo);
        }
        Savings s = r.flops().savings();
        if (json) {
            ObjectMapper m = new ObjectMapper();
            ObjectNode o = m.createObjectNode();
            o.put("model", modelOptions.describeModel());
            o.put("text", text.toString());
            o.put("maxLen", maxLen);
            o.put("documents", r.documents());
            o.put("predictedTokens", r.predictedTokens());
            o.put("nll", r.nll());
            o.put("perplexity", r.perplexity());
            o.put("denseFlops", s.denseFlops());
            o.put("executedFlops", s.executedFlops());
            o.put("savedFraction", s.savedFraction());
            o.put("seconds", r.seconds());
            o.put("tokensPerSecond", (r.predictedTokens() + r.documents()) / r.seconds());
            System.out.println(m.writeValueAsString(o));
        } else {
            System.out.printf("%s on %s: %d documents, %d predicted tokens, NLL %.4f, perplexity %.4f (%.1f s)%n",
                    modelOptions.describeModel(), text, r.documents(), r.predictedTokens(), r.nll(), r.perplexity(),
                    r.seconds());
        }
        return 0;
    }
}
