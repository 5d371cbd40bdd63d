package dev.skipflow.model.engine;

import ai.djl.ndarray.NDManager;
import dev.skipflow.model.decoder.BlockRouter;
import dev.skipflow.model.decoder.ExitPolicy;
import dev.skipflow.model.decoder.Forward;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs what the {@link Scheduler} planned on the model: a sequence's prefill or a batched decode step, through
 * the one {@link Forward} pass, then sampling. Owns the KV cache. Adaptive sequences get the router and the exit
 * policy (early exit for each generated token and the last prompt position); the others run densely in the
 * same batch.
 */
public final class ModelRunner implements AutoCloseable {

    private final LlamaModel model;
    private final KvCache cache;
    private final BlockRouter router;
    private final ExitPolicy exit;
    private final boolean routeDecode;

    /** @param routeDecode whether the router also acts on decoding tokens (false: prefill only, FTP's own setting) */
    public ModelRunner(LlamaModel model, int slots, int context, BlockRouter router, ExitPolicy exit, boolean routeDecode) {
        if (exit != null && exit.layers() != model.spec().nLayers()) {
            throw new IllegalArgumentException("exit classifier is for " + exit.layers() + " blocks, the model has "
                    + model.spec().nLayers());
        }
        this.model = model;
        this.router = router;
        this.exit = exit;
        this.routeDecode = routeDecode;
        this.cache = new KvCache(model, slots, context, router != null || (exit != null && !exit.propagateKv()));
    }

    public LlamaModel model() {
        return model;
    }

    public int context() {
        return cache.context();
    }

    private Forward.Plan plan(boolean adaptive, boolean routed) {
        BlockRouter r = routed ? router : null;
        return adaptive && (r != null || exit != null) ? new Forward.Plan(r, exit, null) : Forward.Plan.DENSE;
    }

    /** The prompt through every block into the sequence's (fresh) slot; returns its first sampled token. */
    public int prefill(Sequence s) {
        int n = s.promptLength();
        boolean adaptive = s.isAdaptive();
        cache.clearSlot(s.slot);
        try (NDManager step = model.newStepManager()) {
            List<Forward.Row> rows = Forward.prompt(s.slot, 0, s.promptTokens(), s.account(), s.written,
                    adaptive && router != null, adaptive && exit != null ? n - 1 : n, n - 1);
            Forward.Output out = Forward.run(model, cache, step, true, rows, plan(adaptive, true));
            return s.sampler().argmaxOnly() ? out.argmax()[n - 1] : s.sampler().sample(out.logits(n - 1));
        }
    }

    /** One token for every running sequence (slot i holds {@code batch.get(i)}); returns each one's next token. */
    public int[] decode(List<Sequence> batch) {
        int n = batch.size();
        List<Forward.Row> rows = new ArrayList<>(n);
        boolean anyAdaptive = false;
        boolean allArgmax = true;
        for (Sequence s : batch) {
            boolean adaptive = s.isAdaptive();
            anyAdaptive |= adaptive;
            allArgmax &= s.sampler().argmaxOnly();
            rows.add(new Forward.Row(s.slot, s.position, s.lastToken(), s.account(), s.written, adaptive,
                    adaptive && exit != null, true));
        }
        try (NDManager step = model.newStepManager()) {
            Forward.Output out = Forward.run(model, cache, step, false, rows, plan(anyAdaptive, routeDecode));
            if (allArgmax) {
                return out.argmax();
            }
            int[] next = new int[n];
            for (int i = 0; i < n; i++) {
                next[i] = batch.get(i).sampler().sample(out.logits(i));
            }
            return next;
        }
    }

    /** Applies the scheduler's slot moves to the cache, in order. */
    public void apply(List<Scheduler.SlotMove> moves) {
        for (Scheduler.SlotMove m : moves) {
            cache.copySlot(m.from(), m.to(), m.length());
        }
    }

    @Override
    public void close() {
        cache.close();
    }
}
