package dev.skipflow.model.decoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import dev.skipflow.model.flops.FlopAccount;
import dev.skipflow.model.flops.FlopCounter;
import dev.skipflow.model.nn.Tensors;
import dev.skipflow.model.sampling.Sampler;
import java.util.Arrays;
import java.util.List;

/**
 * The decoder's one forward pass, for every configuration: a prefill (one sequence's prompt) or a decode step
 * (one new token per sequence), dense or routed ({@link BlockRouter}), with early exit ({@link ExitPolicy}),
 * observed or reshaped by a trainer ({@link BlockHook}), on any model the spec describes. FLOPs are charged
 * here and only here, from the model's {@link FlopCounter}, for what actually ran.
 *
 * <p>Block by block:
 * <ol>
 *   <li>rows that exited before this block get keys and values here projected from their exit hidden state
 *       (CALM's propagation), so later tokens still attend to them; or none, when the policy masks them;</li>
 *   <li>the block runs on the active rows the router keeps (gathered, then scattered back); a routed skip is not
 *       an exit: the row stays active, keeps its hidden state and writes no key/value in that block (or, when the
 *       router {@linkplain BlockRouter#propagatesKeys() propagates keys}, one projected from that state, written
 *       before the block runs so the others attend to it);</li>
 *   <li>after a probed block, the final norm and LM head run on the active rows that may exit; a row whose
 *       probe the policy accepts stops there, and that probe's logits are its output.</li>
 * </ol>
 * Rows still active after the last block get the LM head if their logits are wanted.
 */
public final class Forward {

    private Forward() {}

    /**
     * One row of a pass: the token at {@code position} of the sequence in {@code slot}.
     *
     * @param account charged for what the row ran (rows of one sequence share it); null = not counted
     * @param written per block, keys/values the row's sequence has there (updated; rows of one sequence share it)
     * @param routable whether the router may skip blocks for it (false: a dense request in a mixed batch)
     * @param mayExit whether it is probed and may stop early
     * @param wantsLogits whether its output logits are needed (the head runs and is charged only for those)
     */
    public record Row(int slot, int position, int token, FlopAccount account, int[] written, boolean routable,
            boolean mayExit, boolean wantsLogits) {}

    /** What runs besides the dense blocks; any part may be null. */
    public record Plan(BlockRouter router, ExitPolicy exit, BlockHook hook) {
        public static final Plan DENSE = new Plan(null, null, null);

        public Plan {
            if (hook != null && (router != null || exit != null)) {
                throw new IllegalArgumentException("a block hook sees every row; it is not combined with a router or exit");
            }
        }

        public static Plan routed(BlockRouter router) {
            return new Plan(router, null, null);
        }

        public static Plan hooked(BlockHook hook) {
            return new Plan(null, null, hook);
        }
    }

    /**
     * A sequence's consecutive tokens from {@code start} as prefill rows, all routable; {@code exitFrom} = first
     * row that may exit (rows.length for none); logits wanted from row {@code logitsFrom} on.
     */
    public static List<Row> prompt(int slot, int start, int[] tokens, FlopAccount account, int[] written,
            boolean routable, int exitFrom, int logitsFrom) {
        Row[] rows = new Row[tokens.length];
        for (int i = 0; i < tokens.length; i++) {
            rows[i] = new Row(slot, start + i, tokens[i], account, written, routable, i >= exitFrom, i >= logitsFrom);
        }
        return Arrays.asList(rows);
    }

    /** What a pass produced. */
    public static final class Output {
        private final NDArray hidden;
        private final NDArray logits;
        private final int[] logitRows;
        private final float[][] exitLogits;
        private final int[] layersRun;
        private final int vocab;
        private float[] hostLogits;

        Output(NDArray hidden, NDArray logits, int[] logitRows, float[][] exitLogits, int[] layersRun, int vocab) {
            this.hidden = hidden;
            this.logits = logits;
            this.logitRows = logitRows;
            this.exitLogits = exitLogits;
            this.layersRun = layersRun;
            this.vocab = vocab;
        }

        /** Hidden states after the last block each row ran, {@code [rows, dim]}. */
        public NDArray hidden() {
            return hidden;
        }

        /**
         * The device logits {@code [k, vocab]} of the rows that reached the LM head after the last block, in row
         * order ({@link #logitRows()}): for trainers (differentiable) and device-side sampling.
         */
        public NDArray logits() {
            return logits;
        }

        /** Rows whose logits are in {@link #logits()}. */
        public int[] logitRows() {
            return logitRows;
        }

        /** Blocks each row ran before its output (an exit after block l ran l + 1). */
        public int[] layersRun() {
            return layersRun;
        }

        /** Whether row {@code i} stopped at a probe. */
        public boolean exited(int i) {
            return exitLogits[i] != null;
        }

        /** Row {@code i}'s output logits on the host (its probe's when it exited); null when not wanted. */
        public float[] logits(int i) {
            if (exitLogits[i] != null) {
                return exitLogits[i].clone();
            }
            int j = Arrays.binarySearch(logitRows, i);
            if (j < 0) {
                return null;
            }
            return Arrays.copyOfRange(host(), j * vocab, (j + 1) * vocab);
        }

        /** Every row's logits, row-major {@code [rows * vocab]}; every row must have wanted them. */
        public float[] allLogits() {
            int n = exitLogits.length;
            if (logitRows.length == n) {
                return host();
            }
            float[] all = new float[n * vocab];
            for (int i = 0; i < n; i++) {
                float[] row = logits(i);
                if (row == null) {
                    throw new IllegalStateException("row " + i + " did not ask for its logits");
                }
                System.arraycopy(row, 0, all, i * vocab, vocab);
            }
            return all;
        }

        /** Per row, the top-1 token (only N ids cross to the host for rows that reached the head); -1 if not wanted. */
        public int[] argmax() {
            int[] top = new int[exitLogits.length];
            Arrays.fill(top, -1);
            if (logits != null) {
                long[] ids = logits.argMax(-1).toLongArray();
                for (int j = 0; j < logitRows.length; j++) {
                    top[logitRows[j]] = (int) ids[j];
                }
            }
            for (int i = 0; i < exitLogits.length; i++) {
                if (exitLogits[i] != null) {
                    top[i] = Sampler.argmax(exitLogits[i]);
                }
            }
            return top;
        }

        private float[] host() {
            if (hostLogits == null) {
                hostLogits = logits.toFloatArray();
            }
            return hostLogits;
        }
    }

    /**
     * Runs one pass. A prefill's rows are consecutive positions of one slot; a decode step's rows are one per slot.
     *
     * @param manager owns the step's temporaries (and the output)
     */
    public static Output run(LlamaModel model, KvCache cache, NDManager manager, boolean prefill, List<Row> rows,
            Plan plan) {
        int n = rows.size();
        int layers = model.spec().nLayers();
        int vocab = model.spec().vocabSize();
        FlopCounter flops = model.flops();
        BlockRouter router = plan.router();
        ExitPolicy exit = plan.exit();
        BlockHook hook = plan.hook();
        if (exit != null && exit.layers() != layers) {
            throw new IllegalArgumentException("exit policy is for " + exit.layers() + " blocks, the model has " + layers);
        }
        TokenBatch batch = batch(model, manager, prefill, rows);
        int[] positions = batch.positions();
        int[] tokens = new int[n];
        for (int i = 0; i < n; i++) {
            tokens[i] = rows.get(i).token();
        }
        NDArray x = model.embed(batch, tokens);
        if (router != null) {
            router.begin(prefill, n);
        }
        float[][] exitLogits = new float[n][];
        boolean[] exited = new boolean[n];
        int[] layersRun = new int[n];
        Arrays.fill(layersRun, layers);
        long[] mlpFlops = new long[n];
        int[] mlpExperts = new int[n];
        AttentionStats[] seen = new AttentionStats[1];
        ProbeState probes = exit == null ? null : new ProbeState(n, exitLogits, exited, layersRun);
        for (int l = 0; l < layers; l++) {
            Block block = model.block(l);
            int[] gone = null;
            if (probes != null && probes.exitedCount > 0) {
                gone = indices(exited, true);
                if (exit.propagateKv()) {
                    block.writeKeysValues(x.get(at(manager, gone)), batch.select(gone), cache);
                }
                for (int i : gone) {
                    Row r = rows.get(i);
                    if (r.account() != null) {
                        long dense = flops.denseBlock(l, positions[i]);
                        long compressed = flops.blockAttending(l, positions[i] + 1);
                        long kv = exit.propagateKv() ? flops.kvProjection(l) : 0;
                        r.account().charge(dense, dense - compressed, 0, compressed - kv, 0, 1);
                    }
                }
            }
            int[] active = indices(exited, false);
            boolean[] ran = keep(router, l, active, rows, prefill, n);
            int[] run = indices(ran, true);
            // skipped rows' keys first, so the rows that run the block attend to them (causally)
            boolean[] propagated = router != null && router.propagatesKeys() ? skipped(active, ran, n) : null;
            if (propagated != null) {
                int[] p = indices(propagated, true);
                if (p.length > 0) {
                    block.writeKeysValues(x.get(at(manager, p)), batch.select(p), cache);
                } else {
                    propagated = null;
                }
            }
            // saturation compares a block's input with its output; a partial run updates x in place, so copy it
            NDArray before = exit != null && exit.probes(l) && exit.wantsSaturation()
                    ? (run.length == n ? x : x.duplicate()) : null;
            Arrays.fill(mlpFlops, 0);
            Arrays.fill(mlpExperts, -1);
            int layer = l;
            if (run.length == n) {
                seen[0] = null;
                if (hook != null) {
                    hook.before(l, x);
                }
                boolean[] hidden = hook == null ? null : hook.hiddenKeys(l);
                TokenBatch b = hidden == null ? batch : batch.hidingKeys(hidden);
                NDArray out = block.forward(x, b, cache, mlpFlops, mlpExperts, router == null && hook == null ? null
                        : stats -> {
                            seen[0] = stats;
                            if (router != null) {
                                router.attended(layer, new BlockRouter.Candidates(prefill, run, positions), stats);
                            }
                        }, hook == null ? null : hook.mlp(l));
                x = hook == null ? out : hook.after(l, x, out, seen[0]);
            } else if (run.length > 0) {
                TokenBatch kept = batch.select(run);
                NDIndex index = at(manager, run);
                long[] keptFlops = new long[run.length];
                int[] keptExperts = new int[run.length];
                Arrays.fill(keptExperts, -1);
                NDArray out = block.forward(x.get(index), kept, cache, keptFlops, keptExperts, router == null ? null
                        : stats -> router.attended(layer, new BlockRouter.Candidates(prefill, run, kept.positions()), stats),
                        null);
                x.set(index, out); // x is this pass's own tensor (a gather or a block output): update in place
                for (int j = 0; j < run.length; j++) {
                    mlpFlops[run[j]] = keptFlops[j];
                    mlpExperts[run[j]] = keptExperts[j];
                }
            }
            int experts = block.mlp().experts();
            long decision = router == null ? 0 : router.decisionFlops(l, prefill);
            // keys missing from the cache were left by exited tokens only when no router acts here and exits mask
            // their keys; otherwise by a router (this step's, or the prompt's when only prompts are routed)
            boolean keysByExit = router == null && exit != null && !exit.propagateKv();
            // rows in order (a prompt's rows are by position), so each row counts only the keys before its own,
            // an exited row's propagated key included, as causal attention reads them
            for (int i = 0; i < n; i++) {
                if (exited[i]) {
                    if (gone != null && exit.propagateKv() && rows.get(i).written() != null) {
                        rows.get(i).written()[l]++;
                    }
                    continue;
                }
                chargeBlock(flops, rows.get(i), l, positions[i], ran[i], propagated != null && propagated[i],
                        mlpFlops[i], keysByExit, rows.get(i).routable() ? decision : 0);
                if (experts > 0 && ran[i] && mlpExperts[i] >= 0 && rows.get(i).account() != null) {
                    rows.get(i).account().expert(l, mlpExperts[i], layers, experts);
                }
            }
            if (exit != null && exit.probes(l)) {
                probe(model, manager, exit, probes, l, x, before, indices(exited, false), rows);
            }
        }
        int[] finals = new int[n];
        int k = 0;
        for (int i = 0; i < n; i++) {
            Row r = rows.get(i);
            if (r.wantsLogits()) {
                if (r.account() != null) {
                    // the head is never compressed; an exited row's output head was charged with its probe
                    long dense = flops.denseHead();
                    r.account().charge(dense, dense - flops.head(), 0, exited[i] ? flops.head() : 0, 0, 0);
                }
                if (!exited[i]) {
                    finals[k++] = i;
                }
            }
            if (exit != null && r.mayExit() && r.account() != null) {
                r.account().exit(layersRun[i], layers);
            }
        }
        int[] logitRows = Arrays.copyOf(finals, k);
        NDArray logits = k == 0 ? null : model.logits(k == n ? x : x.get(at(manager, logitRows)));
        return new Output(x, logits, logitRows, exitLogits, layersRun, vocab);
    }

    /** Per row of a pass: what its probes so far found (top-1 streak, candidates), and where it stopped. */
    private static final class ProbeState {
        final float[][] exitLogits;
        final boolean[] exited;
        final int[] layersRun;
        final int[] lastTop;
        final int[] streak;
        final int[][] candidates; // the first probe's K best tokens, when the policy uses candidates
        int exitedCount;

        ProbeState(int n, float[][] exitLogits, boolean[] exited, int[] layersRun) {
            this.exitLogits = exitLogits;
            this.exited = exited;
            this.layersRun = layersRun;
            lastTop = new int[n];
            Arrays.fill(lastTop, -1);
            streak = new int[n];
            candidates = new int[n][];
        }

        int observe(int i, int top) {
            streak[i] = top == lastTop[i] ? streak[i] + 1 : 1;
            lastTop[i] = top;
            return streak[i];
        }

        void stop(int i, int layer, float[] logits) {
            exited[i] = true;
            exitedCount++;
            layersRun[i] = layer + 1;
            exitLogits[i] = logits;
        }
    }

    /**
     * Probes the active rows that may exit after block {@code l}: the whole head for a row's first probe (or every
     * probe without candidates), else the head's rows for its candidates; rows the policy accepts stop here, those
     * stopped by a candidate probe after the whole head runs once for their output.
     */
    private static void probe(LlamaModel model, NDManager manager, ExitPolicy exit, ProbeState state, int l, NDArray x,
            NDArray before, int[] active, List<Row> rows) {
        int[] probed = probeRows(active, rows);
        if (probed.length == 0) {
            return;
        }
        FlopCounter flops = model.flops();
        int vocab = model.spec().vocabSize();
        int k = Math.min(exit.candidates(), vocab);
        float[] saturation = null;
        if (before != null) {
            NDIndex index = at(manager, probed);
            NDArray a = before.get(index);
            NDArray b = x.get(index);
            saturation = a.mul(b).sum(new int[] {1})
                    .div(a.square().sum(new int[] {1}).mul(b.square().sum(new int[] {1})).sqrt().add(1e-12f))
                    .toFloatArray();
        }
        int[] full = new int[probed.length];
        int[] cheap = new int[probed.length];
        int nf = 0;
        int nc = 0;
        for (int i : probed) {
            if (k > 0 && state.candidates[i] != null) {
                cheap[nc++] = i;
            } else {
                full[nf++] = i;
            }
        }
        long satFlops = saturation == null ? 0 : flops.saturation();
        if (nf > 0) {
            int[] f = Arrays.copyOf(full, nf);
            float[] logits = model.logits(x.get(at(manager, f))).toFloatArray();
            long cost = flops.head() + exit.decisionFlops(vocab) + satFlops;
            for (int j = 0; j < nf; j++) {
                int i = f[j];
                chargeProbe(rows.get(i), cost);
                int top = argmax(logits, j * vocab, vocab);
                if (k > 0) {
                    state.candidates[i] = topK(logits, j * vocab, vocab, k);
                }
                float sat = saturation == null ? Float.NaN : saturation[indexOf(probed, i)];
                ExitPolicy.Probe p = new ExitPolicy.Probe(logits, j * vocab, vocab, state.observe(i, top), sat);
                if (exit.accepts(p, l)) {
                    state.stop(i, l, Arrays.copyOfRange(logits, j * vocab, (j + 1) * vocab));
                }
            }
        }
        if (nc > 0) {
            int[] c = Arrays.copyOf(cheap, nc);
            int[][] ids = new int[nc][];
            for (int j = 0; j < nc; j++) {
                ids[j] = state.candidates[c[j]];
            }
            float[] scores = model.logitsFor(x.get(at(manager, c)), ids).toFloatArray();
            long cost = flops.candidateHead(k) + exit.decisionFlops(k) + satFlops;
            int[] accepted = new int[nc];
            int na = 0;
            for (int j = 0; j < nc; j++) {
                int i = c[j];
                chargeProbe(rows.get(i), cost);
                int top = ids[j][argmax(scores, j * k, k)];
                float sat = saturation == null ? Float.NaN : saturation[indexOf(probed, i)];
                if (exit.accepts(new ExitPolicy.Probe(scores, j * k, k, state.observe(i, top), sat), l)) {
                    accepted[na++] = i;
                }
            }
            if (na > 0) {
                int[] a = Arrays.copyOf(accepted, na);
                float[] logits = model.logits(x.get(at(manager, a))).toFloatArray();
                for (int j = 0; j < na; j++) {
                    chargeProbe(rows.get(a[j]), flops.head()); // its output head, in place of the last block's
                    state.stop(a[j], l, Arrays.copyOfRange(logits, j * vocab, (j + 1) * vocab));
                }
            }
        }
    }

    private static int argmax(float[] a, int offset, int count) {
        int best = 0;
        for (int i = 1; i < count; i++) {
            if (a[offset + i] > a[offset + best]) {
                best = i;
            }
        }
        return best;
    }

    /** The {@code k} highest of {@code a[offset, offset + count)}, as indices in that range, best first. */
    private static int[] topK(float[] a, int offset, int count, int k) {
        Integer[] order = new Integer[count];
        for (int i = 0; i < count; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (p, q) -> Float.compare(a[offset + q], a[offset + p]));
        int[] top = new int[k];
        for (int i = 0; i < k; i++) {
            top[i] = order[i];
        }
        return top;
    }

    private static int indexOf(int[] sorted, int v) {
        return Arrays.binarySearch(sorted, v);
    }

    private static TokenBatch batch(LlamaModel model, NDManager manager, boolean prefill, List<Row> rows) {
        int n = rows.size();
        if (n == 0) {
            throw new IllegalArgumentException("a forward pass needs at least one row");
        }
        if (prefill) {
            Row first = rows.get(0);
            for (int i = 1; i < n; i++) {
                if (rows.get(i).slot() != first.slot() || rows.get(i).position() != first.position() + i) {
                    throw new IllegalArgumentException("prefill rows must be consecutive positions of one slot");
                }
            }
            return TokenBatch.prefill(model, manager, first.slot(), first.position(), n);
        }
        int[] slots = new int[n];
        int[] positions = new int[n];
        for (int i = 0; i < n; i++) {
            slots[i] = rows.get(i).slot();
            positions[i] = rows.get(i).position();
        }
        return TokenBatch.decode(model, manager, slots, positions);
    }

    /** Which rows run block {@code layer}: active ones the router keeps (rows it may not route always run). */
    private static boolean[] keep(BlockRouter router, int layer, int[] active, List<Row> rows, boolean prefill, int n) {
        boolean[] ran = new boolean[n];
        if (router == null || active.length == 0) {
            for (int i : active) {
                ran[i] = true;
            }
            return ran;
        }
        int[] activePositions = new int[active.length];
        for (int j = 0; j < active.length; j++) {
            activePositions[j] = rows.get(active[j]).position();
        }
        boolean[] keep = router.keep(layer, new BlockRouter.Candidates(prefill, active, activePositions));
        for (int j = 0; j < active.length; j++) {
            ran[active[j]] = keep[j] || !rows.get(active[j]).routable();
        }
        return ran;
    }

    /**
     * One row's block: the dense original's cost, and what ran, attention over the keys it really attended
     * (those its sequence wrote in this block, itself included) plus its MLP; a skipped row is charged nothing
     * and writes nothing. Savings split: the compressed block (its measured MLP, experts included) against the
     * original is compression; a skipped block and keys others did not write are routing (exit, when
     * {@code keysByExit}: no router here and exited rows that write no keys), less the router's own decision.
     * A skipped row whose key and value were {@code propagated} is charged their projection and counts as written.
     */
    private static void chargeBlock(FlopCounter flops, Row r, int layer, int position, boolean ran, boolean propagated,
            long mlp, boolean keysByExit, long decision) {
        if (r.account() != null) {
            long dense = flops.denseBlock(layer, position);
            FlopCounter.BlockCost c = flops.cost(layer);
            if (ran) {
                long full = c.fixed() + c.perKey() * (position + 1L) + mlp;
                long executed = c.fixed() + c.perKey() * (r.written()[layer] + 1L) + mlp;
                long keys = full - executed;
                r.account().charge(dense, dense - full, keysByExit ? -decision : keys - decision, keysByExit ? keys : 0, 0, 1);
            } else {
                long compressed = c.attending(position + 1);
                long kv = propagated ? c.kvProjection() : 0;
                r.account().charge(dense, dense - compressed, compressed - kv - decision, 0, 1, 1);
            }
        }
        if ((ran || propagated) && r.written() != null) {
            r.written()[layer]++;
        }
    }

    /** A probe's head, decision and saturation: work early exit adds. */
    private static void chargeProbe(Row r, long cost) {
        if (r.account() != null) {
            r.account().charge(0, 0, 0, -cost, 0, 0);
        }
    }

    /** Active rows the router did not keep. */
    private static boolean[] skipped(int[] active, boolean[] ran, int n) {
        boolean[] out = new boolean[n];
        for (int i : active) {
            out[i] = !ran[i];
        }
        return out;
    }

    private static int[] probeRows(int[] active, List<Row> rows) {
        int[] r = new int[active.length];
        int k = 0;
        for (int i : active) {
            if (rows.get(i).mayExit()) {
                r[k++] = i;
            }
        }
        return Arrays.copyOf(r, k);
    }

    private static int[] indices(boolean[] flag, boolean value) {
        int[] r = new int[flag.length];
        int k = 0;
        for (int i = 0; i < flag.length; i++) {
            if (flag[i] == value) {
                r[k++] = i;
            }
        }
        return Arrays.copyOf(r, k);
    }

    private static NDIndex at(NDManager manager, int[] rows) {
        return new NDIndex("{}", manager.create(Tensors.toLongs(rows)));
    }
}
