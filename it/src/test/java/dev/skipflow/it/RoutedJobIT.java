package dev.skipflow.it;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.routing.RouterArtifact;
import dev.skipflow.model.routing.SparsitySchedule;
import dev.skipflow.model.training.RouterRecipe;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The job with token routing on: adaptive requests report real savings; adaptive=false is the exact dense path. */
class RoutedJobIT {

    @Test
    void adaptiveRequestsSaveComputeAndDenseRequestsMatchGenerate() throws Exception {
        StreamingScenario.adaptiveAndDense(o -> o.routing = routing("--baseline", "static", "--sparsity", "0.3"), 12,
                (v, s) -> {
                    assertTrue(s.get("tokenBlocksSkipped").asLong() > 0, v.toString());
                    assertTrue(s.get("savedFraction").asDouble() > 0.05, v.toString());
                    assertTrue(s.get("executedFlops").asLong() < s.get("denseFlops").asLong(), v.toString());
                });
    }

    /**
     * A trained router (FTP's recipe, briefly) routes prompts and decoding tokens: with 24 generated tokens after a
     * short prompt, more token-blocks are skipped than the prompt has, so decode skips too.
     */
    @Test
    void aTrainedRouterSkipsBlocksInDecodeToo() throws Exception {
        Path artifact = Path.of("target", "it-router-" + System.nanoTime() + ".json");
        trainTinyRouter(artifact);
        SparsitySchedule schedule = RouterArtifact.load(artifact).schedule();
        StreamingScenario.adaptiveAndDense(o -> o.routing = routing("--router", artifact.toString()), 24, (v, s) -> {
            assertTrue(v.get("completionTokens").asInt() > 8, v.toString());
            assertTrue(s.get("executedFlops").asLong() < s.get("denseFlops").asLong(), v.toString());
            int prompt = v.get("promptTokens").asInt();
            long promptAtMost = 0;
            for (int l = 0; l < schedule.perLayer().length; l++) {
                promptAtMost += prompt - schedule.keep(l, prompt);
            }
            assertTrue(s.get("tokenBlocksSkipped").asLong() > promptAtMost,
                    "more skipped than the prompt's " + promptAtMost + " at most, so decoding tokens skip too: " + v);
        });
    }

    static dev.skipflow.job.options.RoutingOptions routing(String... args) {
        Holder h = new Holder();
        new picocli.CommandLine(h).parseArgs(args);
        return h.routing;
    }

    /** Parses routing options the way the CLI does. */
    @picocli.CommandLine.Command(name = "holder")
    static final class Holder {
        @picocli.CommandLine.Mixin
        dev.skipflow.job.options.RoutingOptions routing = new dev.skipflow.job.options.RoutingOptions();
    }

    /** FTP's recipe with a tiny budget, for the job's default model (stories260K). */
    static void trainTinyRouter(Path artifact) throws Exception {
        var model = StreamingScenario.options("127.0.0.1:1", "x").model;
        try (LlamaModel m = new LlamaModel(model.weights(), Device.cpu())) {
            RouterRecipe.Options d = RouterRecipe.Options.defaults(0.3);
            RouterRecipe.Options tiny = new RouterRecipe.Options(0.3, null, 20, 2, 32, 12, 4, 64, 4, 1, d.learningRate(),
                    d.sparsityWeight(), d.scheduleJitter(), d.guideFraction(), RouterRecipe.Guide.STATIC, 0,
                    d.distillationWeight(), 7L);
            var docs = Documents.read(StreamingScenario.shared().resolve("data/tinystories-train-sample.txt"),
                    model.tokenizer(), tiny.longestDocument(), tiny.documentsNeeded());
            RouterRecipe.run(m, "stories260K", docs, tiny, (name, total) -> new RouterRecipe.Phase() {
                @Override
                public void accept(int done) {}

                @Override
                public void close() {}
            }, line -> { }).save(artifact);
        }
    }
}
