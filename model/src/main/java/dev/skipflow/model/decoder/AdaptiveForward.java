package dev.skipflow.model.decoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import dev.skipflow.model.exit.ExitClassifier;
import dev.skipflow.model.exit.ExitFeatures;
import dev.skipflow.model.flops.FlopAccount;
import dev.skipflow.model.flops.FlopCounter;
import dev.skipflow.model.routing.AttentionObserver;
import dev.skipflow.model.routing.TokenRouter;
import java.util.Arrays;

/**
 * One forward pass over a batch (a prefill or a decode step) with per-token block skipping (a router) and
 * early exit (AdaInfer's classifier) together, charging one account per row for exactly what ran.
 *
 * <p>Block by block:
 * <ol>
 *   <li>rows that exited before this block get their keys and values here computed from their exit hidden
 *       state (k/v projections only, CALM's propagation), so later tokens still attend to them; charged as
 *       {@link FlopCounter#kvProjection()};</li>
 *   <li>the block runs on the rows still active that the router keeps (a routed skip is not an exit: the row
 *       stays active, keeps its hidden state and writes no key/value in that block);</li>
 *   <li>after a probed block, the final norm and LM head run on the active rows allowed to exit; a row whose
 *       features the classifier accepts stops, and that probe's logits are its output. Each probe is charged.</li>
 * </ol>
 * Rows still active after the last block get the usual head. With neither router nor exit this is the dense pass.
 */
public final class AdaptiveForward {

    private AdaptiveForward() {}

    /**
     * @param logits per row, its output logits ({@code vocab} floats), null for rows whose output was not asked
     * @param layersRun per row, blocks it ran through before its output (an exit after block l ran l + 1)
     */
    public record Result(float[][] logits, int[] layersRun) {}

    /**
     * @param x the rows' embeddings {@code [n, dim]} in the batch's manager (updated in place)
     * @param router null for none; {@code routable[i]} whether it may skip blocks of row i
     * @param exit null for none; {@code mayExit[i]} whether row i is probed and may stop early
     * @param outputs whether row i's logits are wanted (the head runs and is charged only for those)
     * @param accounts per row, charged for what it ran (rows may share one)
     * @param written per row, keys/values its sequence has per block (updated; rows of one sequence share one)
     */
    public static Result run(LlamaModel model, KvCache cache, TokenBatch batch, NDArray x, TokenRouter router,
            boolean[] routable, ExitClassifier exit, boolean[] mayExit, boolean[] outputs, FlopCounter flops,
            FlopAccount[] accounts, int[][] written) {
        int n = batch.size();
        int layers = model.config().nLayers();
        int v = model.config().vocabSize();
        int[] positions = batch.positions();
        float[][] out = new float[n][];
        int[] layersRun = new int[n];
        Arrays.fill(layersRun, layers);
        boolean[] exited = new boolean[n];
        int exitedCount = 0;
        AttentionObserver observer = router instanceof AttentionObserver r ? r : null;
        if (observer != null && batch.isPrefill()) {
            observer.reset(n);
        } else if (observer != null) {
            observer.resetDecode(n);
        }
        for (int l = 0; l < layers; l++) {
            if (exitedCount > 0 && !exit.propagateKv()) {
                for (int i : rows(exited, true, n)) {
                    accounts[i].add(flops.block(positions[i]), 0, 0, 1); // no key/value here: masked for later tokens
                }
            } else if (exitedCount > 0) {
                int[] gone = rows(exited, true, n);
                model.writeKeysValues(l, x.get(index(batch, gone)), batch.select(gone), cache);
                for (int i : gone) {
                    accounts[i].add(flops.block(positions[i]), flops.kvProjection(), 0, 1);
                    written[i][l]++;
                }
            }
            int[] active = rows(exited, false, n);
            boolean[] ran = keep(router, routable, l, active, positions, batch.isPrefill(), n);
            int[] run = rows(ran, true, n);
            if (run.length == n) {
                x = model.block(l, x, batch, cache, watch(observer, batch.isPrefill(), positions, run));
            } else if (run.length > 0) {
                TokenBatch kept = batch.select(run);
                NDIndex at = index(batch, run);
                x.set(at, model.block(l, x.get(at), kept, cache, watch(observer, batch.isPrefill(), kept.positions(), run)));
            }
            for (int i : active) {
                Prefill.chargeBlock(flops, accounts[i], positions[i], ran[i], written[i], l);
            }
            if (exit != null && exit.probes(l)) {
                int[] probed = probeRows(active, mayExit);
                if (probed.length > 0) {
                    float[] logits = model.logits(x.get(index(batch, probed))).toFloatArray();
                    for (int j = 0; j < probed.length; j++) {
                        int i = probed[j];
                        accounts[i].add(0, flops.probe(), 0, 0);
                        ExitFeatures f = ExitFeatures.of(logits, j * v, v);
                        if (exit.accepts(f, l)) {
                            exited[i] = true;
                            exitedCount++;
                            layersRun[i] = l + 1;
                            out[i] = Arrays.copyOfRange(logits, j * v, (j + 1) * v);
                        }
                    }
                }
            }
        }
        int[] last = new int[n];
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (outputs[i]) {
                accounts[i].add(flops.head(), exited[i] ? 0 : flops.head(), 0, 0);
                if (!exited[i]) {
                    last[k++] = i;
                }
            }
            if (exit != null && mayExit != null && mayExit[i]) {
                accounts[i].exit(layersRun[i], layers);
            }
        }
        if (k > 0) {
            int[] rest = Arrays.copyOf(last, k);
            NDArray h = k == n ? x : x.get(index(batch, rest));
            float[] logits = model.logits(h).toFloatArray();
            for (int j = 0; j < k; j++) {
                out[rest[j]] = Arrays.copyOfRange(logits, j * v, (j + 1) * v);
            }
        }
        return new Result(out, layersRun);
    }

    /** Which rows run block {@code layer}: active ones the router keeps (rows it may not route always run). */
    private static boolean[] keep(TokenRouter router, boolean[] routable, int layer, int[] active, int[] positions,
            boolean prefill, int n) {
        boolean[] ran = new boolean[n];
        int[] activePositions = new int[active.length];
        for (int j = 0; j < active.length; j++) {
            activePositions[j] = positions[active[j]];
        }
        if (router == null || active.length == 0) {
            for (int i : active) {
                ran[i] = true;
            }
            return ran;
        }
        if (prefill) {
            int[] kept = router.keepPrefill(layer, activePositions);
            for (int j : kept) {
                ran[active[j]] = true;
            }
            for (int i : active) {
                ran[i] |= routable != null && !routable[i];
            }
        } else {
            boolean[] keep = router.keepDecode(layer, activePositions, active);
            for (int j = 0; j < active.length; j++) {
                int i = active[j];
                ran[i] = keep == null || keep[j] || (routable != null && !routable[i]);
            }
        }
        return ran;
    }

    /** What hands a block's attention to the router, if it observes: a prefill's rows, or a decode step's. */
    private static java.util.function.Consumer<NDArray> watch(AttentionObserver observer, boolean prefill,
            int[] positions, int[] rows) {
        if (observer == null) {
            return null;
        }
        return prefill ? p -> observer.observe(p, positions) : p -> observer.observeDecode(p, positions, rows);
    }

    private static int[] probeRows(int[] active, boolean[] mayExit) {
        int[] r = new int[active.length];
        int k = 0;
        for (int i : active) {
            if (mayExit == null || mayExit[i]) {
                r[k++] = i;
            }
        }
        return Arrays.copyOf(r, k);
    }

    private static int[] rows(boolean[] flag, boolean value, int n) {
        int[] r = new int[n];
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (flag[i] == value) {
                r[k++] = i;
            }
        }
        return Arrays.copyOf(r, k);
    }

    private static NDIndex index(TokenBatch batch, int[] rows) {
        return new NDIndex("{}", batch.manager().create(LlamaModel.toLongs(rows)));
    }

    /** Every row true. */
    public static boolean[] all(int n) {
        boolean[] b = new boolean[n];
        Arrays.fill(b, true);
        return b;
    }

    /** Only row {@code i} of {@code n} true. */
    public static boolean[] only(int n, int i) {
        boolean[] b = new boolean[n];
        b[i] = true;
        return b;
    }
}
