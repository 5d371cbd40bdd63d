package dev.skipflow.model.engine;

import dev.skipflow.model.decoder.BlockRouter;
import dev.skipflow.model.decoder.ExitPolicy;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Continuous batching: sequences are prefilled as they are admitted and join the running batch between
 * decode steps; finished ones leave at once and their slot is reused. Each {@link #step()} admits what fits,
 * then advances every running sequence by one token in a single batched forward pass. The {@link Scheduler}
 * decides, the {@link ModelRunner} computes. Not thread-safe: one thread owns an engine.
 */
public final class BatchEngine implements AutoCloseable {

    private final Scheduler scheduler;
    private final ModelRunner runner;

    private BatchEngine(Builder b) {
        this.scheduler = new Scheduler(b.maxBatch, b.context, b.model.spec().nLayers(), b.stopTokens);
        this.runner = new ModelRunner(b.model, b.maxBatch, b.context, b.router, b.exit, b.routeDecode);
    }

    public static Builder builder(LlamaModel model) {
        return new Builder(model);
    }

    /** Settings of an engine; the stop tokens must be given (the tokenizer's, or none). */
    public static final class Builder {
        private final LlamaModel model;
        private int maxBatch = 8;
        private int context;
        private BlockRouter router;
        private ExitPolicy exit;
        private Set<Integer> stopTokens;
        private boolean routeDecode = true;

        private Builder(LlamaModel model) {
            this.model = model;
            this.context = model.spec().seqLen();
        }

        /** Sequences decoded together (default 8). */
        public Builder maxBatch(int n) {
            this.maxBatch = n;
            return this;
        }

        /** Positions per sequence, prompt and completion (default: the model's seq_len). */
        public Builder context(int positions) {
            this.context = positions;
            return this;
        }

        /** Decides which tokens of adaptive sequences run each block; null runs everything densely. */
        public Builder router(BlockRouter r) {
            this.router = r;
            return this;
        }

        /** Whether the router also acts on decoding tokens (default); false routes prompts only (FTP's setting). */
        public Builder routeDecode(boolean on) {
            this.routeDecode = on;
            return this;
        }

        /** Stops adaptive sequences' tokens early; null for none. */
        public Builder exit(ExitPolicy e) {
            this.exit = e;
            return this;
        }

        /** Sampled tokens that end a sequence; empty = run every sequence to maxTokens (benchmarks). */
        public Builder stopTokens(Set<Integer> tokens) {
            this.stopTokens = tokens;
            return this;
        }

        /** The tokenizer's stop tokens ({@link Tokenizer#stopTokens()}). */
        public Builder stopTokens(Tokenizer tokenizer) {
            return stopTokens(tokenizer.stopTokens());
        }

        public BatchEngine build() {
            if (stopTokens == null) {
                throw new IllegalStateException("an engine needs its stop tokens: the tokenizer's (stopTokens(tokenizer)) "
                        + "or an empty set to run every sequence to maxTokens");
            }
            return new BatchEngine(this);
        }
    }

    public LlamaModel model() {
        return runner.model();
    }

    public int context() {
        return runner.context();
    }

    /** Number of sequences decoding now. */
    public int running() {
        return scheduler.runningCount();
    }

    /** Number of sequences admitted to the queue but not yet prefilled. */
    public int waiting() {
        return scheduler.waitingCount();
    }

    public boolean isIdle() {
        return scheduler.isIdle();
    }

    /** Queues a sequence; it is prefilled at the next step with a free slot. Refused at once when it cannot fit. */
    public void submit(Sequence s) {
        scheduler.submit(s);
    }

    /** Admits waiting sequences into free slots, then decodes one token for every running one; returns those that finished. */
    public List<Sequence> step() {
        List<Sequence> finished = new ArrayList<>();
        for (Sequence s = scheduler.admit(); s != null; s = scheduler.admit()) {
            int first = runner.prefill(s);
            finished.addAll(apply(scheduler.accept(List.of(s), new int[] {first}, true)));
        }
        List<Sequence> batch = scheduler.running();
        if (!batch.isEmpty()) {
            finished.addAll(apply(scheduler.accept(batch, runner.decode(batch), false)));
        }
        return finished;
    }

    private List<Sequence> apply(Scheduler.Outcome o) {
        runner.apply(o.moves());
        return o.finished();
    }

    @Override
    public void close() {
        runner.close();
    }
}
