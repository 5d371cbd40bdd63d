import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.skipflow.model.nn.DenseLinear;
import dev.skipflow.model.nn.GatedMlp;
import dev.skipflow.model.nn.MoeMlp;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * One 110M-shape MLP (dim 768, 2,048 channels) against a mixture of E experts of 1,024 channels each, random weights,
 * on N rows: median milliseconds of the dense SwiGLU, of MoeMlp (router, grouping, experts), and of the experts'
 * matmuls alone on N/E rows each. With S > 0 the experts share S of their channels, run once over all rows.
 * Usage (docs/PERFORMANCE.md, "Shared channels"):
 * java -Dai.djl.pytorch.num_threads=1 -cp "model/target/classes:$(cat job/target/cli.classpath)" scripts/MoeMlpMicro.java E S
 */
public class MoeMlpMicro {

    public static void main(String[] args) {
        int experts = Integer.parseInt(args[0]);
        double share = Double.parseDouble(args[1]);
        int dim = 768;
        int hidden = 2048;
        int size = hidden / 2;
        int common = (int) (size * share);
        Random g = new Random(1);
        try (NDManager m = NDManager.newBaseManager()) {
            GatedMlp dense = swiglu(m, g, dim, hidden);
            List<GatedMlp> whole = new ArrayList<>();
            List<GatedMlp> own = new ArrayList<>();
            for (int e = 0; e < experts; e++) {
                whole.add(swiglu(m, g, dim, size));
                own.add(common == size ? null : swiglu(m, g, dim, size - common));
            }
            DenseLinear router = DenseLinear.of(m, random(g, experts * dim), experts, dim, null);
            MoeMlp moe = common == 0 ? new MoeMlp(router, whole, hidden)
                    : new MoeMlp(router, swiglu(m, g, dim, common), own, hidden);
            for (int n : new int[] {64, 256}) {
                NDArray x = m.create(random(g, n * dim), new Shape(n, dim));
                NDArray slice = m.create(random(g, (n / experts) * dim), new Shape(n / experts, dim));
                double d = median(m, x, xs -> dense.forward(xs, null));
                double mo = median(m, x, xs -> moe.forward(xs, null));
                double ex = median(m, slice, xs -> {
                    NDArray last = null;
                    for (GatedMlp e : whole) {
                        last = e.forward(xs, null);
                        last.toFloatArray();
                    }
                    return last;
                });
                System.out.printf("E=%d shared=%.2f rows=%d: dense %.2f ms, mixture %.2f ms (%.2fx), %d unshared experts "
                        + "on %d rows each %.2f ms%n", experts, share, n, d, mo, d / mo, experts, n / experts, ex);
            }
        }
    }

    private static double median(NDManager m, NDArray x, java.util.function.Function<NDArray, NDArray> f) {
        double[] t = new double[21];
        for (int i = -3; i < t.length; i++) {
            try (NDManager s = m.newSubManager()) {
                x.tempAttach(s);
                long start = System.nanoTime();
                f.apply(x).toFloatArray();
                if (i >= 0) {
                    t[i] = (System.nanoTime() - start) / 1e6;
                }
            }
        }
        Arrays.sort(t);
        return t[t.length / 2];
    }

    private static GatedMlp swiglu(NDManager m, Random g, int dim, int channels) {
        return new GatedMlp(DenseLinear.of(m, random(g, 2 * channels * dim), 2 * channels, dim, null),
                DenseLinear.of(m, random(g, dim * channels), dim, channels, null));
    }

    private static float[] random(Random g, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) g.nextGaussian() * 0.02f;
        }
        return a;
    }
}
