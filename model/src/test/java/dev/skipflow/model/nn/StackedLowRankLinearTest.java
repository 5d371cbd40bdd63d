package dev.skipflow.model.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * One matmul for every first factor and dense part, then the second factors on slices: the same outputs and the same
 * FLOPs as the parts run one by one ({@link StackedLinear} of {@link LowRankLinear}s and {@link DenseLinear}s).
 */
class StackedLowRankLinearTest {

    static float[] random(SplittableRandom r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (r.nextGaussian() * 0.1);
        }
        return a;
    }

    /** ranks per part, 0 = dense; outs per part. */
    static void check(int in, int[] outs, int[] ranks, boolean bias, int expectedMatmuls) {
        SplittableRandom r = new SplittableRandom(11);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            List<StackedLowRankLinear.Part> parts = new ArrayList<>();
            List<Linear> separate = new ArrayList<>();
            for (int i = 0; i < outs.length; i++) {
                float[] b = bias && i % 2 == 0 ? random(r, outs[i]) : null;
                if (ranks[i] == 0) {
                    float[] w = random(r, outs[i] * in);
                    parts.add(new StackedLowRankLinear.Part(outs[i], 0, w, null, b));
                    separate.add(DenseLinear.of(m, w, outs[i], in, b));
                } else {
                    float[] a = random(r, ranks[i] * in);
                    float[] bb = random(r, outs[i] * ranks[i]);
                    parts.add(new StackedLowRankLinear.Part(outs[i], ranks[i], a, bb, b));
                    separate.add(LowRankLinear.of(m, a, bb, outs[i], in, ranks[i], b));
                }
            }
            StackedLowRankLinear stacked = StackedLowRankLinear.of(m, in, parts);
            StackedLinear reference = new StackedLinear(separate);
            assertEquals(reference.out(), stacked.out());
            assertEquals(in, stacked.in());
            assertEquals(expectedMatmuls, stacked.matmuls());
            for (int rows : new int[] {1, 5, 64}) {
                assertEquals(reference.flops(rows), stacked.flops(rows), "FLOPs are the parts'");
                NDArray x = m.randomNormal(new Shape(rows, in));
                float[] want = reference.forward(x).toFloatArray();
                float[] got = stacked.forward(x).toFloatArray();
                assertEquals(want.length, got.length);
                for (int i = 0; i < want.length; i++) {
                    assertEquals(want[i], got[i], 1e-5 * Math.max(1, Math.abs(want[i])), "output " + i);
                }
            }
        }
    }

    @Test
    void qkvAllFactored() {
        check(48, new int[] {48, 16, 16}, new int[] {7, 5, 9}, false, 4);
    }

    @Test
    void mixedFactoredAndDenseWithBiases() {
        // q factored, k and v dense (one slice of h), like a low-rank q beside whole k and v
        check(32, new int[] {32, 32, 32}, new int[] {6, 0, 0}, true, 2);
        // dense between factored ones
        check(32, new int[] {32, 32, 32}, new int[] {6, 0, 3}, true, 3);
        // gate|up: one factored, one dense
        check(24, new int[] {64, 64}, new int[] {0, 11}, false, 2);
    }

    @Test
    void oneFactoredPartIsTwoMatmuls() {
        check(20, new int[] {30}, new int[] {4}, true, 2);
    }
}
