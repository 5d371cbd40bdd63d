package dev.skipflow.operators.internal;

import dev.skipflow.model.engine.BatchEngine;
import dev.skipflow.model.engine.Scheduler;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.engine.Sequence;
import dev.skipflow.model.routing.TokenRouter;
import dev.skipflow.model.sampling.SamplingParams;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Owns a {@link BatchEngine} on one thread: requests from any thread queue up, join the running batch
 * between decode steps, and complete their future the step they finish. When the engine fails, every
 * pending future fails with the cause, so the caller (Flink) restarts from its checkpoint.
 */
public final class EngineRunner implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(EngineRunner.class);

    private record Pending(Sequence sequence, CompletableFuture<Sequence> future) {}

    private final BatchEngine engine;
    private final LinkedBlockingQueue<Pending> incoming = new LinkedBlockingQueue<>();
    private final Map<Sequence, CompletableFuture<Sequence>> inFlight = new HashMap<>();
    private final Thread thread;
    private volatile boolean running = true;
    private volatile Throwable failure;
    private volatile int batchSize;
    private volatile int queueDepth;

    /**
     * Starts the engine thread; {@code router} and {@code exit} may be null (adaptive requests then run densely);
     * {@code routeDecode} false routes prompts only; {@code stopTokens} are the tokenizer's.
     */
    public EngineRunner(LlamaModel model, int maxBatch, int context, TokenRouter router, boolean routeDecode,
            dev.skipflow.model.exit.ExitClassifier exit, java.util.Set<Integer> stopTokens, String name) {
        this.engine = BatchEngine.builder(model).maxBatch(maxBatch).context(context).router(router)
                .routeDecode(routeDecode).exit(exit).stopTokens(stopTokens).build();
        this.thread = new Thread(this::loop, name);
        this.thread.setDaemon(true);
        this.thread.start();
    }

    public int context() {
        return engine.context();
    }

    /** Sequences in the running batch, as of the last step. */
    public int batchSize() {
        return batchSize;
    }

    /** Sequences waiting for a slot, as of the last step. */
    public int queueDepth() {
        return queueDepth;
    }

    /**
     * Queues a generation. Fails at once (IllegalArgumentException) when the prompt does not fit; fails the
     * future if the engine has stopped.
     */
    public CompletableFuture<Sequence> submit(Object tag, int[] prompt, SamplingParams params, boolean adaptive) {
        String problem = Scheduler.contextProblem(prompt.length, params.maxTokens(), engine.context());
        if (problem != null) {
            throw new IllegalArgumentException(problem);
        }
        CompletableFuture<Sequence> future = new CompletableFuture<>();
        Throwable failed = failure;
        if (failed != null || !running) {
            future.completeExceptionally(new IllegalStateException("generation engine is not running", failed));
            return future;
        }
        incoming.add(new Pending(new Sequence(tag, prompt, params).adaptive(adaptive), future));
        return future;
    }

    private void loop() {
        try {
            while (running) {
                Pending next = engine.isIdle() ? incoming.poll(100, TimeUnit.MILLISECONDS) : incoming.poll();
                while (next != null) {
                    engine.submit(next.sequence());
                    inFlight.put(next.sequence(), next.future());
                    next = incoming.poll();
                }
                if (engine.isIdle()) {
                    continue;
                }
                List<Sequence> done = engine.step();
                batchSize = engine.running();
                queueDepth = engine.waiting();
                for (Sequence s : done) {
                    inFlight.remove(s).complete(s);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Throwable t) {
            LOG.error("generation engine failed; failing {} in-flight requests", inFlight.size(), t);
            failure = t;
        } finally {
            running = false;
            Throwable cause = failure != null ? failure : new IllegalStateException("generation engine stopped");
            List<CompletableFuture<Sequence>> pending = new ArrayList<>(inFlight.values());
            incoming.forEach(p -> pending.add(p.future()));
            pending.forEach(f -> f.completeExceptionally(cause));
        }
    }

    @Override
    public void close() throws InterruptedException {
        running = false;
        thread.interrupt();
        thread.join(10_000);
        engine.close();
    }
}
