package dev.skipflow.model.decoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import dev.skipflow.model.exit.ExitClassifier;
import dev.skipflow.model.flops.FlopAccount;
import dev.skipflow.model.flops.FlopCounter;
import dev.skipflow.model.routing.AttentionObserver;
import dev.skipflow.model.routing.TokenRouter;
import dev.skipflow.model.tokenizer.Tokenizer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Continuous batching: sequences are prefilled as they are admitted and join the running batch between
 * decode steps; finished ones leave at once and their slot is reused. Each {@link #step()} admits what fits,
 * then advances every running sequence by one token in a single batched forward pass.
 *
 * <p>The running batch always occupies slots {@code 0..n-1} (a leaving sequence's slot is refilled by
 * moving the last one down), so a decode step reads the KV cache as one strided view. Not thread-safe:
 * one thread owns an engine.
 */
public final class BatchEngine implements AutoCloseable {

    private final LlamaModel model;
    private final KvCache cache;
    private final FlopCounter flops;
    private final int maxBatch;
    private final TokenRouter router;
    private final ExitClassifier exit;
    private final ArrayDeque<Sequence> waiting = new ArrayDeque<>();
    private final List<Sequence> running = new ArrayList<>();
    private boolean stopOnEos = true;

    public BatchEngine(LlamaModel model, int maxBatch, int context) {
        this(model, maxBatch, context, null);
    }

    /**
     * @param router decides which tokens of adaptive sequences run each block; null runs everything densely
     */
    public BatchEngine(LlamaModel model, int maxBatch, int context, TokenRouter router) {
        this(model, maxBatch, context, router, null);
    }

    /**
     * @param router decides which tokens of adaptive sequences run each block; null runs everything densely
     * @param exit stops adaptive sequences' tokens early (each generated token, and the last prompt position);
     *     null for none
     */
    public BatchEngine(LlamaModel model, int maxBatch, int context, TokenRouter router, ExitClassifier exit) {
        if (exit != null && exit.layers() != model.config().nLayers()) {
            throw new IllegalArgumentException("exit classifier is for " + exit.layers() + " blocks, the model has "
                    + model.config().nLayers());
        }
        this.model = model;
        this.maxBatch = maxBatch;
        this.router = router;
        this.exit = exit;
        this.cache = new KvCache(model, maxBatch, context, router != null || (exit != null && !exit.propagateKv()));
        this.flops = new FlopCounter(model.config());
    }

    public LlamaModel model() {
        return model;
    }

    public int context() {
        return cache.context();
    }

    /** Benchmarks turn this off so every sequence runs to maxTokens and the batch stays full. */
    public void stopOnEos(boolean stop) {
        this.stopOnEos = stop;
    }

    /** Number of sequences decoding now. */
    public int running() {
        return running.size();
    }

    /** Number of sequences admitted to the queue but not yet prefilled. */
    public int waiting() {
        return waiting.size();
    }

    public boolean isIdle() {
        return running.isEmpty() && waiting.isEmpty();
    }

    /**
     * Why a prompt of this length cannot run with {@code maxTokens}, for a person; null when it fits.
     * The last generated token is never fed back, so it needs no cache position.
     */
    public static String contextProblem(int promptTokens, int maxTokens, int context) {
        if (promptTokens + maxTokens - 1 > context) {
            return "prompt has " + promptTokens + " tokens; with maxTokens " + maxTokens + " it needs "
                    + (promptTokens + maxTokens - 1) + " positions but the context holds " + context
                    + " (shorten the prompt or lower maxTokens)";
        }
        return null;
    }

    /** Queues a sequence; it is prefilled at the next step with a free slot. */
    public void submit(Sequence s) {
        String problem = contextProblem(s.promptLength(), s.params().maxTokens(), cache.context());
        if (problem != null) {
            throw new IllegalArgumentException(problem);
        }
        waiting.add(s);
    }

    /** Admits waiting sequences into free slots, then decodes one token for every running one. */
    public List<Sequence> step() {
        List<Sequence> finished = new ArrayList<>();
        while (!waiting.isEmpty() && running.size() < maxBatch) {
            Sequence s = waiting.poll();
            s.slot = running.size();
            s.written = new int[model.config().nLayers()];
            cache.clearSlot(s.slot);
            running.add(s);
            prefill(s);
            if (s.isFinished()) {
                finished.add(s);
                release(List.of(s));
            }
        }
        if (!running.isEmpty()) {
            List<Sequence> done = decode();
            finished.addAll(done);
            release(done);
        }
        return finished;
    }

    private void prefill(Sequence s) {
        int n = s.promptLength();
        if (exit != null && s.isAdaptive()) {
            try (NDManager step = model.newStepManager()) {
                TokenBatch batch = TokenBatch.prefill(model, step, s.slot, 0, n);
                FlopAccount[] accounts = new FlopAccount[n];
                int[][] written = new int[n][];
                Arrays.fill(accounts, s.account());
                Arrays.fill(written, s.written);
                boolean[] last = AdaptiveForward.only(n, n - 1);
                var r = AdaptiveForward.run(model, cache, batch, model.embed(batch, s.promptTokens()), router,
                        AdaptiveForward.all(n), exit, last, last, flops, accounts, written);
                s.position = n;
                accept(s, s.sampler().sample(r.logits()[n - 1]));
            }
            return;
        }
        try (NDManager step = model.newStepManager()) {
            TokenBatch batch = TokenBatch.prefill(model, step, s.slot, 0, n);
            NDArray x = Prefill.run(model, cache, batch, s.promptTokens(), s.isAdaptive() ? router : null, flops,
                    s.account(), s.written);
            NDArray last = x.get(new NDIndex().addSliceDim(n - 1, n));
            float[] logits = model.logits(last).toFloatArray();
            s.account().add(flops.head(), flops.head(), 0, 0); // logits for the last position only
            s.position = n;
            accept(s, s.sampler().sample(logits));
        }
    }

    private List<Sequence> decode() {
        int n = running.size();
        int[] slots = new int[n];
        int[] positions = new int[n];
        int[] tokens = new int[n];
        boolean allGreedy = true;
        for (int i = 0; i < n; i++) {
            Sequence s = running.get(i);
            slots[i] = s.slot;
            positions[i] = s.position;
            tokens[i] = s.lastToken();
            allGreedy &= s.params().isGreedy();
        }
        int[] next = new int[n];
        if (exit != null) {
            decodeExiting(slots, positions, tokens, next);
        } else {
            decodeDense(slots, positions, tokens, next, allGreedy);
        }
        List<Sequence> done = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Sequence s = running.get(i);
            if (exit == null) {
                s.account().add(flops.head(), flops.head(), 0, 0);
            }
            s.position++;
            accept(s, next[i]);
            if (s.isFinished()) {
                done.add(s);
            }
        }
        return done;
    }

    /** A decode step with early exit (and routing) for adaptive sequences; charges heads and probes itself. */
    private void decodeExiting(int[] slots, int[] positions, int[] tokens, int[] next) {
        int n = slots.length;
        boolean[] adaptive = new boolean[n];
        FlopAccount[] accounts = new FlopAccount[n];
        int[][] written = new int[n][];
        for (int i = 0; i < n; i++) {
            Sequence s = running.get(i);
            adaptive[i] = s.isAdaptive();
            accounts[i] = s.account();
            written[i] = s.written;
        }
        try (NDManager step = model.newStepManager()) {
            TokenBatch batch = TokenBatch.decode(model, step, slots, positions);
            var r = AdaptiveForward.run(model, cache, batch, model.embed(batch, tokens), router, adaptive, exit, adaptive,
                    AdaptiveForward.all(n), flops, accounts, written);
            for (int i = 0; i < n; i++) {
                next[i] = running.get(i).sampler().sample(r.logits()[i]);
            }
        }
    }

    private void decodeDense(int[] slots, int[] positions, int[] tokens, int[] next, boolean allGreedy) {
        int n = slots.length;
        try (NDManager step = model.newStepManager()) {
            TokenBatch batch = TokenBatch.decode(model, step, slots, positions);
            NDArray x = model.embed(batch, tokens);
            AttentionObserver observer = router instanceof AttentionObserver o ? o : null;
            if (observer != null) {
                observer.resetDecode(n);
            }
            int[] everyRow = TokenRouter.all(n);
            for (int l = 0; l < model.config().nLayers(); l++) {
                int[] rows = decodeRows(l, positions, everyRow);
                if (rows == null) {
                    x = model.block(l, x, batch, cache,
                            observer == null ? null : p -> observer.observeDecode(p, positions, everyRow));
                } else if (rows.length > 0) {
                    NDIndex at = new NDIndex("{}", step.create(LlamaModel.toLongs(rows)));
                    TokenBatch kept = batch.select(rows);
                    x.set(at, model.block(l, x.get(at), kept, cache,
                            observer == null ? null : p -> observer.observeDecode(p, kept.positions(), rows)));
                }
                chargeDecode(l, rows);
            }
            NDArray logits = model.logits(x);
            if (allGreedy) {
                long[] ids = logits.argMax(-1).toLongArray(); // only N ids cross to the host
                for (int i = 0; i < n; i++) {
                    next[i] = (int) ids[i];
                }
            } else {
                int v = model.config().vocabSize();
                float[] all = logits.toFloatArray();
                float[] row = new float[v];
                for (int i = 0; i < n; i++) {
                    System.arraycopy(all, i * v, row, 0, v);
                    next[i] = running.get(i).sampler().sample(row);
                }
            }
        }
    }

    /** Rows of the running batch that run block {@code layer}; null = all ({@code all} = every row index). Dense sequences always run. */
    private int[] decodeRows(int layer, int[] positions, int[] all) {
        if (router == null) {
            return null;
        }
        boolean[] keep = router.keepDecode(layer, positions, all);
        if (keep == null) {
            return null;
        }
        int[] rows = new int[positions.length];
        int k = 0;
        for (int i = 0; i < positions.length; i++) {
            if (keep[i] || !running.get(i).isAdaptive()) {
                rows[k++] = i;
            }
        }
        return k == positions.length ? null : java.util.Arrays.copyOf(rows, k);
    }

    /** Charges each running sequence for block {@code layer}: what ran, over the keys it attended. */
    private void chargeDecode(int layer, int[] rows) {
        boolean[] ran = Prefill.ranRows(running.size(), rows);
        for (int i = 0; i < running.size(); i++) {
            Sequence s = running.get(i);
            Prefill.chargeBlock(flops, s.account(), s.position, ran[i], s.written, layer);
        }
    }

    /** Records a sampled token, or finishes on BOS/EOS (which are not part of the completion) or length. */
    private void accept(Sequence s, int token) {
        if (stopOnEos && (token == Tokenizer.BOS || token == Tokenizer.EOS)) {
            s.finish(Sequence.FinishReason.STOP);
            return;
        }
        s.append(token);
        if (s.generatedCount() >= s.params().maxTokens()) {
            s.finish(Sequence.FinishReason.LENGTH);
        }
    }

    /** Removes finished sequences and moves the highest-slot survivors into the holes. */
    private void release(List<Sequence> done) {
        if (done.isEmpty()) {
            return;
        }
        running.removeAll(done);
        List<Integer> holes = new ArrayList<>();
        for (Sequence s : done) {
            if (s.slot < running.size()) {
                holes.add(s.slot);
            }
            s.slot = -1;
        }
        holes.sort(Comparator.naturalOrder());
        for (int hole : holes) {
            Sequence mover = running.stream().max(Comparator.comparingInt(q -> q.slot)).orElseThrow();
            cache.copySlot(mover.slot, hole, mover.position);
            mover.slot = hole;
        }
        running.sort(Comparator.comparingInt(q -> q.slot));
    }

    @Override
    public void close() {
        cache.close();
    }
}
