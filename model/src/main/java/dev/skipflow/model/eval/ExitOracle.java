package dev.skipflow.model.eval;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.decoder.AttentionStats;
import dev.skipflow.model.decoder.BlockHook;
import dev.skipflow.model.decoder.Forward;
import dev.skipflow.model.flops.FlopCounter;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * What can early exit save at all? After every block, the final norm and LM head give each position's top-1;
 * a perfect exit classifier probing from block {@code k} on stops a token at the first probed block whose
 * top-1 already equals the last block's (AdaInfer's positive label). Charges the blocks not run as saved and
 * every probe (an LM-head pass) as spent, so the result bounds what a trained classifier can reach.
 */
public final class ExitOracle {

    /** Per first probed block k: mean blocks run per token, and the FLOP fraction saved net of probes. */
    public record Result(long tokens, double[] meanBlocksRun, double[] savedFraction, double[] settledShare) {}

    private ExitOracle() {}

    public static Result measure(LlamaModel model, List<int[]> docs, IntConsumer progress) {
        int layers = model.spec().nLayers();
        FlopCounter flops = model.flops();
        long tokens = 0;
        double dense = 0;
        double[] spent = new double[layers];
        double[] blocksRun = new double[layers];
        long[] exitAt = new long[layers];
        int maxLen = docs.stream().mapToInt(d -> d.length).max().orElse(1);
        try (KvCache cache = new KvCache(model, 1, maxLen)) {
            int done = 0;
            for (int[] doc : docs) {
                int n = doc.length;
                long[][] top = new long[layers][];
                try (NDManager step = model.newStepManager()) {
                    Forward.run(model, cache, step, true, Forward.prompt(0, 0, doc, null, null, false, n, n),
                            Forward.Plan.hooked(new BlockHook() {
                                @Override
                                public NDArray after(int l, NDArray x, NDArray y, AttentionStats attention) {
                                    top[l] = model.logits(y).argMax(-1).toLongArray(); // a probe after every block
                                    return y;
                                }
                            }));
                }
                for (int p = 0; p < n; p++) {
                    dense += flops.denseAllBlocks(p) + flops.denseHead();
                    for (int k = 0; k < layers; k++) {
                        int exit = layers - 1;
                        for (int l = k; l < layers; l++) {
                            if (top[l][p] == top[layers - 1][p]) {
                                exit = l;
                                break;
                            }
                        }
                        int probes = exit - k + 1; // the last probe's logits are the output
                        spent[k] += flops.blocksThrough(exit, p) + probes * (double) flops.head();
                        blocksRun[k] += exit + 1;
                        if (k == 0) {
                            exitAt[exit]++;
                        }
                    }
                }
                tokens += n;
                progress.accept(++done);
            }
        }
        double[] mean = new double[layers];
        double[] saved = new double[layers];
        double[] settled = new double[layers];
        for (int k = 0; k < layers; k++) {
            mean[k] = blocksRun[k] / tokens;
            saved[k] = 1 - spent[k] / dense;
            settled[k] = exitAt[k] / (double) tokens;
        }
        return new Result(tokens, mean, saved, settled);
    }
}
