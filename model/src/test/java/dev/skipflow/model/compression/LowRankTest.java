package dev.skipflow.model.compression;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.skipflow.model.TestModels;
import dev.skipflow.model.compression.lowrank.Crossover;
import dev.skipflow.model.compression.lowrank.LowRank;
import dev.skipflow.model.compression.lowrank.LowRankOptions;
import dev.skipflow.model.compression.lowrank.Svd;
import dev.skipflow.model.compression.lowrank.SvdCache;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.flops.FlopCounter;
import dev.skipflow.model.io.CompressedCheckpoint;
import dev.skipflow.model.io.ModelLoader;
import dev.skipflow.model.nn.DenseLinear;
import dev.skipflow.model.nn.LowRankLinear;
import dev.skipflow.model.nn.SoftThresholdLinear;
import dev.skipflow.model.weights.Fingerprint;
import dev.skipflow.model.weights.LinearWeights;
import dev.skipflow.model.weights.ModelWeights;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * SoftLMs on the real stories260K: the SVD reconstructs the matrices, the threshold's gradient is the finite
 * difference's, the budget is met by both methods, a low-rank checkpoint round-trips and serves with FLOPs against
 * the original, a factored layer equals its dense reconstruction, and bad input is refused with a reason.
 */
class LowRankTest {

    @TempDir
    Path dir;

    static ModelWeights dense() {
        return ModelWeights.of(TestModels.weights());
    }

    static List<int[]> calibration() {
        return Documents.read(TestModels.shared().resolve("data/tinystories-train-sample.txt"), TestModels.tokenizer(), 32,
                40);
    }

    static LowRankOptions options(double ratio, LowRankOptions.Method method, int steps) {
        return new LowRankOptions(ratio, method, 4, 32, steps, 2, 1, 0.003f, 0.02f, false, 1e-4f, false, true, 42);
    }

    static LowRank.Result run(ModelWeights w, LowRankOptions o, Path cache) {
        return LowRank.run(w, calibration(), o, Crossover.params(), cache, false, Map.of(), Device.cpu(), PruneTest.QUIET);
    }

    @Test
    void svdReconstructsTheMatrixAndTruncationErrorIsTheDroppedSingularValues() {
        LinearWeights.Dense up = (LinearWeights.Dense) ((dev.skipflow.model.weights.MlpWeights.Gated) dense().blocks().get(2)
                .mlp()).up(); // [172, 64]
        Svd s = Svd.of(up.weight(), up.out(), up.in());
        assertEquals(64, s.k());
        for (int i = 1; i < s.k(); i++) {
            assertTrue(s.s()[i] <= s.s()[i - 1] && s.s()[i] >= 0, "decreasing singular values");
        }
        double norm = 0;
        double err = 0;
        float[] full = s.reconstruct(s.k(), s.s());
        for (int i = 0; i < full.length; i++) {
            norm += up.weight()[i] * (double) up.weight()[i];
            err += Math.pow(full[i] - up.weight()[i], 2);
        }
        assertTrue(Math.sqrt(err / norm) < 1e-4, "full-rank reconstruction, relative error " + Math.sqrt(err / norm));
        int r = 20;
        float[] t = s.reconstruct(r, s.s());
        double truncErr = 0;
        for (int i = 0; i < t.length; i++) {
            truncErr += Math.pow(t[i] - up.weight()[i], 2);
        }
        double dropped = 0;
        for (int i = r; i < s.k(); i++) {
            dropped += s.s()[i] * (double) s.s()[i];
        }
        assertEquals(Math.sqrt(dropped), Math.sqrt(truncErr), 1e-3 * Math.sqrt(norm), "Eckart-Young: the dropped energy");
    }

    @Test
    void thresholdGradientMatchesFiniteDifferences() {
        SplittableRandom rnd = new SplittableRandom(3);
        int out = 12;
        int in = 9;
        float[] w = new float[out * in];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) rnd.nextGaussian();
        }
        Svd s = Svd.of(w, out, in);
        float t0 = 0.37f; // between singular values, not at one
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            float[] xs = new float[5 * in];
            for (int i = 0; i < xs.length; i++) {
                xs[i] = (float) rnd.nextGaussian();
            }
            NDArray x = m.create(xs, new Shape(5, in));
            NDArray probe = m.arange(5f * out).reshape(5, out).sin();
            SoftThresholdLinear layer = SoftThresholdLinear.of(m, s.u(), s.s(), s.vt(), out, in, s.k(), null, t0);
            layer.threshold().setRequiresGradient(true);
            float analytic;
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray loss = layer.forward(x).mul(probe).sum();
                gc.backward(loss);
                analytic = layer.threshold().getGradient().getFloat();
            }
            double h = 1e-3;
            double plus = loss(m, s, x, probe, t0 + h);
            double minus = loss(m, s, x, probe, t0 - h);
            double numeric = (plus - minus) / (2 * h);
            assertTrue(Math.abs(analytic) > 1e-2, "the threshold moves the output: " + analytic);
            assertEquals(numeric, analytic, 1e-2 * Math.max(1, Math.abs(numeric)), "dL/dt, autograd vs finite difference");
            // the soft gate and the soft rank are differentiable too
            layer.gate(0.05f);
            Gradients.zero(layer.threshold().getGradient());
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray r = layer.softRank(0.05f);
                gc.backward(r);
                assertTrue(layer.threshold().getGradient().getFloat() < 0, "a higher threshold, a lower soft rank");
            }
        }
    }

    private static double loss(NDManager m, Svd s, NDArray x, NDArray probe, double t) {
        SoftThresholdLinear l = SoftThresholdLinear.of(m, s.u(), s.s(), s.vt(), s.out(), s.in(), s.k(), null, (float) t);
        float[] w = new LinearWeights.Svd(s.out(), s.in(), s.k(), s.u(), s.s(), s.vt(), null, (float) t).toDense();
        double viaHost = DenseLinear.of(m, w, s.out(), s.in(), null).forward(x).mul(probe).sum().getFloat();
        double viaDevice = l.forward(x).mul(probe).sum().getFloat();
        assertEquals(viaHost, viaDevice, 1e-3 * Math.max(1, Math.abs(viaHost)), "host reconstruction = device layer");
        return viaDevice;
    }

    @Test
    void bothMethodsMeetTheBudgetAndLearnedRanksDiffer() {
        ModelWeights w = dense();
        for (double ratio : new double[] {0.5, 0.7}) {
            LowRank.Result u = run(w, options(ratio, LowRankOptions.Method.UNIFORM, 0), dir.resolve("svd"));
            assertTrue(u.rankedParameters() <= u.budget() && u.rankedParameters() > 0.95 * u.budget(),
                    "uniform: " + u.rankedParameters() + " of " + u.budget());
            LowRank.Result l = run(w, options(ratio, LowRankOptions.Method.LEARNED, 4), dir.resolve("svd"));
            assertTrue(l.rankedParameters() <= l.budget() && l.rankedParameters() > 0.98 * l.budget(),
                    "learned: " + l.rankedParameters() + " of " + l.budget());
            assertEquals(l.storedParameters(), l.rankedParameters(), "params crossover: every map below break-even factored");
            assertEquals((long) Math.floor(ratio * 226_560), l.budget());
            long distinctQ = l.layers().stream().filter(x -> x.name().equals("wq")).mapToInt(LowRank.Layer::rank).distinct()
                    .count();
            assertTrue(l.layers().stream().anyMatch(x -> x.stored() == LowRank.Stored.FACTORED));
            assertTrue(distinctQ >= 1);
        }
    }

    @Test
    void aLowRankCheckpointRoundTripsAndServesWithFlopsAgainstTheOriginal() throws Exception {
        ModelWeights w = dense();
        LowRank.Result r = run(w, options(0.5, LowRankOptions.Method.UNIFORM, 0), null);
        Path out = dir.resolve("ckpt");
        CheckpointOutput.write(r.weights(), CheckpointOutput.provenance(w, null, "stories260K", r.step()), out, false,
                List.of());
        CompressedCheckpoint.Loaded back = CompressedCheckpoint.read(out);
        for (int l = 0; l < 5; l++) {
            var a = (LinearWeights.LowRank) r.weights().blocks().get(l).wv();
            var b = (LinearWeights.LowRank) back.weights().blocks().get(l).wv();
            assertEquals(a.rank(), b.rank());
            assertEquals(java.util.Arrays.toString(a.b()), java.util.Arrays.toString(b.b()), "same factors back");
        }
        assertTrue(back.weights().blocks().get(0).wq() instanceof LinearWeights.LowRank q && q.rank() == 16,
                "q kept rank 16 of 64, stored as factors");
        assertEquals("lowrank", back.provenance().steps().get(0).method());
        assertEquals(Fingerprint.of(w), back.provenance().originalFingerprint());
        int[] doc = calibration().get(0);
        try (LlamaModel inMemory = new LlamaModel(r.weights(), Device.cpu());
                LlamaModel loaded = new LlamaModel(ModelLoader.load(out), Device.cpu())) {
            float[] a = TestModels.prefillLogits(inMemory, doc);
            float[] b = TestModels.prefillLogits(loaded, doc);
            for (int i = 0; i < a.length; i++) {
                assertEquals(a[i], b[i], TestModels.LOGIT_TOLERANCE);
            }
            FlopCounter f = loaded.flops();
            FlopCounter original = FlopCounter.of(ModelLoader.spec(out).original());
            double saved = 1 - f.allBlocks(10) / (double) original.allBlocks(10);
            assertTrue(saved > 0.4 && saved < 0.56, "the blocks' linear maps cost about half: " + saved);
        }
    }

    @Test
    void aFactoredLayerMatchesItsDenseReconstruction() {
        LinearWeights.Dense gate = (LinearWeights.Dense) ((dev.skipflow.model.weights.MlpWeights.Gated) dense().blocks().get(1)
                .mlp()).gate();
        Svd s = Svd.of(gate.weight(), gate.out(), gate.in());
        int r = 23;
        var low = new LinearWeights.LowRank(gate.out(), gate.in(), r, s.vtRows(r), s.scaledU(r, s.s()), null);
        float[] recon = low.toDense();
        float[] direct = s.reconstruct(r, s.s());
        for (int i = 0; i < recon.length; i++) {
            assertEquals(direct[i], recon[i], 1e-5);
        }
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray x = m.randomNormal(new Shape(7, gate.in()));
            LowRankLinear f = (LowRankLinear) low.build(m);
            DenseLinear d = DenseLinear.of(m, recon, gate.out(), gate.in(), null);
            float[] a = f.forward(x).toFloatArray();
            float[] b = d.forward(x).toFloatArray();
            for (int i = 0; i < a.length; i++) {
                assertEquals(b[i], a[i], 1e-4 * Math.max(1, Math.abs(b[i])));
            }
            assertTrue(f.flops(7) < d.flops(7), "two thin matmuls cost less");
        }
    }

    @Test
    void badInputIsRefusedWithAReason() throws Exception {
        ModelWeights w = dense();
        for (double bad : new double[] {0, -0.5, 1.01, Double.NaN}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> options(bad, LowRankOptions.Method.LEARNED, 1));
            assertTrue(e.getMessage().contains("must be in (0, 1]"), e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> run(w, options(0.02, LowRankOptions.Method.UNIFORM, 0), null));
        assertTrue(e.getMessage().contains("cannot be met: even rank 1"), e.getMessage());
        // a cache made for these weights, then the model changes under it
        Path cache = dir.resolve("svd-cache");
        SvdCache.load(w, cache, false, i -> {});
        assertTrue(Files.isRegularFile(cache.resolve(SvdCache.MANIFEST)));
        float[] emb = w.tokenEmbedding().clone();
        emb[0] += 1f;
        ModelWeights changed = new ModelWeights(w.spec(), emb, w.blocks(), w.rmsFinal(), emb, w.source());
        SvdCache.StaleCacheException stale = assertThrows(SvdCache.StaleCacheException.class,
                () -> SvdCache.load(changed, cache, false, i -> {}));
        assertTrue(stale.getMessage().contains("the model changed since the cache was made")
                && stale.getMessage().contains(Fingerprint.of(changed)), stale.getMessage());
        assertEquals(7 * 5, SvdCache.load(changed, cache, true, i -> {}).size() * 7, "refreshed on request");
    }

    @Test
    void crossoverIsCappedByTheBreakEvenAndMeasuresEachShapeOnce() {
        assertEquals(31, Crossover.breakEven(64, 64));
        assertEquals(46, Crossover.breakEven(64, 172));
        Crossover c = Crossover.measured(Device.cpu(), new int[] {8});
        int r = c.maxFactoredRank(64, 32);
        assertTrue(r >= 0 && r <= Crossover.breakEven(64, 32), "measured " + r);
        assertEquals(r, c.maxFactoredRank(64, 32));
        assertEquals(1, ((List<?>) c.describe().get("shapes")).size());
    }
}
