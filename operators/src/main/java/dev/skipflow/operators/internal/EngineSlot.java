package dev.skipflow.operators.internal;

import dev.skipflow.model.ModelSource;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.engine.EngineThreads;
import dev.skipflow.model.exit.ExitArtifact;
import dev.skipflow.model.exit.ExitClassifier;
import dev.skipflow.model.routing.RouterSpec;
import dev.skipflow.model.routing.TokenRouter;
import dev.skipflow.model.spec.ModelSpec;
import dev.skipflow.model.tokenizer.Tokenizer;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What one task slot runs generation with, for the DataStream job and for SQL's ML_PREDICT alike: the model on
 * its device, the tokenizer, and one continuous-batching {@link EngineRunner} with the slot's router and exit
 * classifier. Loaded once when the function opens; closing stops the engine and frees the model.
 */
public final class EngineSlot implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(EngineSlot.class);

    private final LlamaModel model;
    private final Tokenizer tokenizer;
    private final EngineRunner runner;

    private EngineSlot(LlamaModel model, Tokenizer tokenizer, EngineRunner runner) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.runner = runner;
    }

    /**
     * Loads the model and starts the engine thread {@code name}.
     *
     * @param maxContext cap on positions per sequence; 0 = the model's seq_len
     * @param engineThreads PyTorch intra-op threads on CPU (0 leaves PyTorch's default); ignored on GPU
     * @param routerSpec token routing for adaptive sequences; null for dense only
     * @param exitArtifact early exit for adaptive sequences; null for none
     */
    public static EngineSlot open(ModelSource source, int maxBatch, int maxContext, int engineThreads, RouterSpec routerSpec,
            ExitArtifact exitArtifact, String name) {
        return open(source, maxBatch, maxContext, engineThreads, routerSpec, exitArtifact, name, null);
    }

    /** As above, with a test hook that makes a step fail while a sequence it accepts is in it (null: none). */
    public static EngineSlot open(ModelSource source, int maxBatch, int maxContext, int engineThreads, RouterSpec routerSpec,
            ExitArtifact exitArtifact, String name, java.util.function.Predicate<Object> faultHook) {
        long start = System.nanoTime();
        var weights = source.loadWeights();
        var device = source.resolveDevice();
        int threads = device.isGpu() ? EngineThreads.set(0) : EngineThreads.set(engineThreads);
        LlamaModel model = new LlamaModel(weights, device);
        try {
            Tokenizer tokenizer = source.loadTokenizer(weights.spec().vocabSize());
            int context = contextOf(weights.spec(), maxContext);
            TokenRouter router = routerSpec == null ? null : routerSpec.build(model, tokenizer);
            ExitClassifier exit = exitArtifact == null ? null : exitArtifact.classifierFor(model, Path.of("exit artifact"));
            EngineRunner runner = new EngineRunner(model, maxBatch, context, router, routerSpec == null || routerSpec.routeDecode(),
                    exit, tokenizer.stopTokens(), name, faultHook);
            LOG.info("{} loaded {} ({} parameters) on {} ({} intra-op threads) in {} ms; max batch {}, context {}, "
                            + "routing {}, early exit {}", name, source.describe(), weights.parameterCount(), model.device(),
                    threads, (System.nanoTime() - start) / 1_000_000, maxBatch, context,
                    router == null ? "off" : router.describe() + (routerSpec.routeDecode() ? "" : " (prompts only)"),
                    exit == null ? "off" : exit.describe());
            return new EngineSlot(model, tokenizer, runner);
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
    }

    /** The context the engine gives a sequence: {@code maxContext} capped at the model's seq_len (0 = seq_len). */
    public static int contextOf(ModelSpec spec, int maxContext) {
        return maxContext > 0 ? Math.min(maxContext, spec.seqLen()) : spec.seqLen();
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    public EngineRunner runner() {
        return runner;
    }

    @Override
    public void close() throws InterruptedException {
        try {
            runner.close();
        } finally {
            model.close();
        }
    }
}
