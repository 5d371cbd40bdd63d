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
 * between decode steps, and complete their future the step they finish.
 *
 * <p>When a step throws, the runner does not know which sequence broke it, so it rebuilds the engine and re-runs
 * every sequence that was in flight alone, one after the other. A sequence that fails alone fails its own future
 * with {@link RequestFailedException} (the caller dead-letters that request); the others complete normally.
 * If a trivial one-token canary fails too, the engine itself is broken (device lost, native library gone): then
 * every pending future fails with the cause, so the caller (Flink) restarts from its checkpoint. Errors
 * ({@link OutOfMemoryError}, ...) are always treated as the engine's.
 */
public final class EngineRunner implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(EngineRunner.class);

    /** The engine failed on this request alone (re-run by itself after its batch failed); the engine is fine. */
    public static final class RequestFailedException extends RuntimeException {
        RequestFailedException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    private record Pending(Sequence sequence, CompletableFuture<Sequence> future) {}

    private final java.util.function.Supplier<BatchEngine> engines;
    private final int context;
    private final java.util.function.Predicate<Object> faultHook;
    private BatchEngine engine;
    private final LinkedBlockingQueue<Pending> incoming = new LinkedBlockingQueue<>();
    private final Map<Sequence, CompletableFuture<Sequence>> inFlight = new HashMap<>();
    private final Thread thread;
    private volatile boolean running = true;
    private volatile Throwable failure;
    private volatile int batchSize;
    private volatile int queueDepth;
    private volatile long isolatedFailures;

    /**
     * Starts the engine thread; {@code router} and {@code exit} may be null (adaptive requests then run densely);
     * {@code routeDecode} false routes prompts only; {@code stopTokens} are the tokenizer's.
     */
    public EngineRunner(LlamaModel model, int maxBatch, int context, TokenRouter router, boolean routeDecode,
            dev.skipflow.model.exit.ExitClassifier exit, java.util.Set<Integer> stopTokens, String name) {
        this(model, maxBatch, context, router, routeDecode, exit, stopTokens, name, null);
    }

    /**
     * @param faultHook test hook, null in production: a step with a sequence whose tag it accepts throws, as a
     *     kernel failing on that request would
     */
    public EngineRunner(LlamaModel model, int maxBatch, int context, TokenRouter router, boolean routeDecode,
            dev.skipflow.model.exit.ExitClassifier exit, java.util.Set<Integer> stopTokens, String name,
            java.util.function.Predicate<Object> faultHook) {
        this.engines = () -> BatchEngine.builder(model).maxBatch(maxBatch).context(context).router(router)
                .routeDecode(routeDecode).exit(exit).stopTokens(stopTokens).build();
        this.engine = engines.get();
        this.context = engine.context();
        this.faultHook = faultHook;
        this.thread = new Thread(this::loop, name);
        this.thread.setDaemon(true);
        this.thread.start();
    }

    public int context() {
        return context;
    }

    /** Sequences in the running batch, as of the last step. */
    public int batchSize() {
        return batchSize;
    }

    /** Sequences waiting for a slot, as of the last step. */
    public int queueDepth() {
        return queueDepth;
    }

    /** Requests that failed alone (each failed its own future) since the start. */
    public long isolatedFailures() {
        return isolatedFailures;
    }

    /**
     * Queues a generation. Fails at once (IllegalArgumentException) when the prompt does not fit; fails the
     * future if the engine has stopped.
     */
    public CompletableFuture<Sequence> submit(Object tag, int[] prompt, SamplingParams params, boolean adaptive) {
        String problem = Scheduler.contextProblem(prompt.length, params.maxTokens(), context);
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
                List<Sequence> done;
                try {
                    done = step(inFlight.keySet());
                } catch (RuntimeException e) {
                    isolate(e);
                    continue;
                }
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

    private List<Sequence> step(java.util.Collection<Sequence> present) {
        if (faultHook != null) {
            for (Sequence s : present) {
                if (faultHook.test(s.tag())) {
                    throw new IllegalStateException("injected kernel failure for request " + s.tag()
                            + " (test hook --fail-generation-of)");
                }
            }
        }
        return engine.step();
    }

    /**
     * After a failed step: a fresh engine, then each sequence that was in flight alone. Those that fail alone fail
     * their own future; a failing canary means the engine is broken, and that is thrown (fatal).
     */
    private void isolate(RuntimeException batchFailure) {
        LOG.warn("a generation step failed with {} sequences in flight; re-running each alone to find the request it "
                + "fails on", inFlight.size(), batchFailure);
        List<Pending> suspects = new ArrayList<>();
        inFlight.forEach((s, f) -> suspects.add(new Pending(
                new Sequence(s.tag(), s.prompt(), s.params()).adaptive(s.isAdaptive()), f)));
        inFlight.clear();
        // keep them where the finally block fails them if the engine turns out to be broken
        suspects.forEach(p -> inFlight.put(p.sequence(), p.future()));
        rebuild();
        for (Pending p : suspects) {
            if (!running) {
                return;
            }
            try {
                Sequence s = runAlone(p.sequence());
                inFlight.remove(p.sequence());
                p.future().complete(s);
            } catch (RuntimeException alone) {
                rebuild();
                Sequence canary = new Sequence("engine-canary", new int[] {1}, new SamplingParams(1, 0f, 1f, null));
                try {
                    runAlone(canary);
                } catch (RuntimeException broken) {
                    broken.addSuppressed(alone);
                    throw new IllegalStateException("the generation engine fails even on a one-token canary after "
                            + "failing on request " + p.sequence().tag(), broken);
                }
                isolatedFailures++;
                LOG.warn("request {} fails generation on its own ({}); failing that request only",
                        p.sequence().tag(), alone.toString());
                inFlight.remove(p.sequence());
                p.future().completeExceptionally(new RequestFailedException(describe(alone), alone));
            }
        }
    }

    private Sequence runAlone(Sequence s) {
        engine.submit(s);
        List<Sequence> only = List.of(s);
        while (!s.isFinished()) {
            step(only);
        }
        return s;
    }

    private void rebuild() {
        try {
            engine.close();
        } catch (RuntimeException e) {
            LOG.debug("closing the failed engine: {}", e.toString());
        }
        engine = engines.get();
    }

    private static String describe(Throwable t) {
        String m = t.getMessage();
        return t.getClass().getSimpleName() + (m == null ? "" : ": " + m.lines().findFirst().orElse(""));
    }

    @Override
    public void close() throws InterruptedException {
        running = false;
        thread.interrupt();
        thread.join(10_000);
        engine.close();
    }
}
