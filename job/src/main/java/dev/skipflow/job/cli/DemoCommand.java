package dev.skipflow.job.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.model.decoder.BatchEngine;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.decoder.Sequence;
import dev.skipflow.model.sampling.SamplingParams;
import dev.skipflow.model.tokenizer.Tokenizer;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Runs the sample prompts through the batching engine and prints one completion JSON line each. "
                + "(Until the streaming job lands, this runs in-process without Kafka.)")
public final class DemoCommand implements Callable<Integer> {

    static final List<String> SAMPLE_PROMPTS = List.of("Once upon a time", "Lily and Tom went to the park",
            "The little dog", "One day, a girl named Sue", "There was a big red ball");

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--once", description = "Exit after all prompts are answered (the in-process demo always does).")
    boolean once;

    @Option(names = "--prompts", defaultValue = "5", description = "How many sample prompts to send (default: ${DEFAULT-VALUE}).")
    int prompts;

    @Override
    public Integer call() throws Exception {
        Tokenizer tokenizer = modelOptions.tokenizer();
        ObjectMapper json = new ObjectMapper();
        try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device());
                BatchEngine engine = new BatchEngine(model, 8, model.config().seqLen())) {
            for (int i = 0; i < prompts; i++) {
                String p = SAMPLE_PROMPTS.get(i % SAMPLE_PROMPTS.size());
                engine.submit(new Sequence(new String[] {"demo-" + (i + 1), p}, tokenizer.encode(p, true),
                        SamplingParams.greedy(64)));
            }
            while (!engine.isIdle()) {
                for (Sequence s : engine.step()) {
                    String[] tag = (String[]) s.tag();
                    ObjectNode o = json.createObjectNode();
                    o.put("id", tag[0]);
                    o.put("prompt", tag[1]);
                    o.put("text", tokenizer.decode(s.prompt()[s.promptLength() - 1], s.generated()));
                    o.put("finishReason", s.finishReason().name().toLowerCase());
                    o.put("promptTokens", s.promptLength());
                    o.put("completionTokens", s.generatedCount());
                    o.put("latencyMs", (s.finishedNanos() - s.submittedNanos()) / 1e6);
                    System.out.println(json.writeValueAsString(o));
                }
            }
        }
        return 0;
    }
}
