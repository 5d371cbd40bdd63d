package dev.skipflow.operators;

import dev.skipflow.model.ModelSource;
import dev.skipflow.model.engine.Sequence;
import dev.skipflow.model.exit.ExitArtifact;
import dev.skipflow.model.flops.Savings;
import dev.skipflow.model.routing.RouterSpec;
import dev.skipflow.model.tokenizer.Tokenizer;
import dev.skipflow.operators.internal.EngineRunner;
import dev.skipflow.operators.internal.EngineSlot;
import java.util.Collections;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.metrics.MeterView;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.metrics.DescriptiveStatisticsHistogram;
import org.apache.flink.streaming.api.functions.async.ResultFuture;
import org.apache.flink.streaming.api.functions.async.RichAsyncFunction;

/**
 * Generation behind Flink's async I/O: each parallel instance (task slot) loads the model once in
 * {@link #open}, runs one continuous-batching engine on its own thread, and completes each request's
 * future when its sequence finishes. Async I/O checkpoints requests still in flight and replays them on
 * recovery; its capacity bounds what is in flight, so a full engine backpressures the Kafka source.
 */
public final class GenerateFunction extends RichAsyncFunction<PromptRequest, GenerationOutcome> {

    private final ModelSource source;
    private final int maxBatch;
    private final int maxContext;
    private final int engineThreads;
    private final RouterSpec routerSpec;
    private final ExitArtifact exitArtifact;
    private String failGenerationOf;
    private transient EngineSlot slot;
    private transient Tokenizer tokenizer;
    private transient EngineRunner runner;
    private transient Counter requests;
    private transient Counter completionTokens;
    private transient Counter failedRequests;
    private transient Histogram latency;
    private transient Histogram timeToFirstToken;
    private transient volatile double lastSavedFraction;
    private final dev.skipflow.model.flops.FlopAccount totalFlops = new dev.skipflow.model.flops.FlopAccount();

    /**
     * @param engineThreads PyTorch intra-op threads on CPU (0 leaves PyTorch's default); ignored on GPU
     * @param routerSpec token routing for requests with {@code adaptive: true}; null for dense only
     */
    public GenerateFunction(ModelSource source, int maxBatch, int maxContext, int engineThreads, RouterSpec routerSpec) {
        this(source, maxBatch, maxContext, engineThreads, routerSpec, null);
    }

    /** @param exitArtifact early exit for requests with {@code adaptive: true}; null for none */
    public GenerateFunction(ModelSource source, int maxBatch, int maxContext, int engineThreads, RouterSpec routerSpec,
            ExitArtifact exitArtifact) {
        this.exitArtifact = exitArtifact;
        this.source = source;
        this.maxBatch = maxBatch;
        this.maxContext = maxContext;
        this.engineThreads = engineThreads;
        this.routerSpec = routerSpec;
    }

    /**
     * Test hook (the job's hidden {@code --fail-generation-of}, never set in production): a decode step with a
     * request whose id starts with {@code idPrefix} throws, as a kernel failing on that request would. The id is
     * the only thing a request controls here, and only a job configured with the hook reacts to it.
     */
    public GenerateFunction failingGenerationOf(String idPrefix) {
        this.failGenerationOf = idPrefix;
        return this;
    }

    @Override
    public void open(OpenContext openContext) {
        int subtask = getRuntimeContext().getTaskInfo().getIndexOfThisSubtask();
        String prefix = failGenerationOf;
        java.util.function.Predicate<Object> hook = prefix == null || prefix.isEmpty() ? null
                : tag -> tag instanceof String id && id.startsWith(prefix);
        slot = EngineSlot.open(source, maxBatch, maxContext, engineThreads, routerSpec, exitArtifact,
                "skipflow-engine-" + subtask, hook);
        tokenizer = slot.tokenizer();
        runner = slot.runner();
        MetricGroup group = getRuntimeContext().getMetricGroup().addGroup("skipflow");
        requests = group.counter("requests");
        completionTokens = group.counter("completionTokens");
        failedRequests = group.counter("failedRequests");
        group.meter("tokensPerSecond", new MeterView(completionTokens));
        group.meter("requestsPerSecond", new MeterView(requests));
        latency = group.histogram("latencyMs", new DescriptiveStatisticsHistogram(1000));
        timeToFirstToken = group.histogram("timeToFirstTokenMs", new DescriptiveStatisticsHistogram(1000));
        group.gauge("batchSize", runner::batchSize);
        group.gauge("queueDepth", runner::queueDepth);
        group.gauge("savedFraction", () -> lastSavedFraction);
        // since the subtask started, over every completion: the split DESIGN §4 gives completions, per vertex
        group.gauge("totalSavedFraction", () -> totalSavings().savedFraction());
        group.gauge("compressionSavedFraction", () -> totalSavings().byMethod().compression());
        group.gauge("routingSavedFraction", () -> totalSavings().byMethod().routing());
        group.gauge("exitSavedFraction", () -> totalSavings().byMethod().exit());
    }

    @Override
    public void asyncInvoke(PromptRequest request, ResultFuture<GenerationOutcome> result) {
        long submitted = System.currentTimeMillis();
        try {
            runner.submit(request.id(), request.promptTokens(), request.samplingParams(), request.adaptive()).whenComplete((s, error) -> {
                if (error != null) {
                    Throwable cause = error instanceof java.util.concurrent.CompletionException && error.getCause() != null
                            ? error.getCause() : error;
                    if (cause instanceof EngineRunner.RequestFailedException) {
                        // This request broke generation by itself (the rest of its batch was re-run and went on).
                        failedRequests.inc();
                        result.complete(Collections.singleton(GenerationOutcome.failed(new DeadLetter(
                                "generation failed on this request: " + cause.getMessage() + " (request " + request.id()
                                        + "); the rest of its batch was re-run without it. Report it with this record "
                                        + "if it persists", request.topic(), request.partition(), request.offset(), requestJson(request)))));
                        return;
                    }
                    // The engine itself failed: fail the job so it restarts from the last checkpoint.
                    result.completeExceptionally(error);
                    return;
                }
                result.complete(Collections.singleton(GenerationOutcome.of(completion(request, s, submitted))));
            });
        } catch (IllegalArgumentException e) {
            failedRequests.inc();
            result.complete(Collections.singleton(GenerationOutcome.failed(new DeadLetter(
                    e.getMessage() + " (request " + request.id() + ")", request.topic(), request.partition(), request.offset(), requestJson(request)))));
        }
    }

    private Completion completion(PromptRequest request, Sequence s, long submittedMillis) {
        long now = System.currentTimeMillis();
        long queued = submittedMillis - request.receivedAtMillis();
        long ttft = queued + (s.firstTokenNanos() == 0 ? s.finishedNanos() - s.submittedNanos()
                : s.firstTokenNanos() - s.submittedNanos()) / 1_000_000;
        int[] prompt = request.promptTokens();
        String text = tokenizer.decode(prompt[prompt.length - 1], s.generated());
        Savings savings = s.account().savings();
        requests.inc();
        completionTokens.inc(s.generatedCount());
        latency.update(now - request.receivedAtMillis());
        timeToFirstToken.update(ttft);
        lastSavedFraction = savings.savedFraction();
        synchronized (totalFlops) {
            totalFlops.addAll(s.account());
        }
        return new Completion(request.id(), text, s.finishReason().name().toLowerCase(), prompt.length,
                s.generatedCount(), now - request.receivedAtMillis(), ttft, savings);
    }

    private Savings totalSavings() {
        synchronized (totalFlops) {
            return totalFlops.savings();
        }
    }

    private static String requestJson(PromptRequest r) {
        var o = Json.MAPPER.createObjectNode();
        o.put("id", r.id());
        o.put("prompt", r.prompt());
        o.put("maxTokens", r.maxTokens());
        return o.toString();
    }

    @Override
    public void timeout(PromptRequest request, ResultFuture<GenerationOutcome> result) {
        failedRequests.inc();
        result.complete(Collections.singleton(GenerationOutcome.failed(new DeadLetter(
                "generation did not finish within the job's async timeout (request " + request.id()
                        + "); raise --request-timeout-ms or lower maxTokens", request.topic(), request.partition(), request.offset(), requestJson(request)))));
    }

    @Override
    public void close() throws Exception {
        if (slot != null) {
            slot.close();
        }
    }
}
