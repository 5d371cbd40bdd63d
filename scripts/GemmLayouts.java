import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Arrays;
import java.util.function.Supplier;

/**
 * Small-row matmuls (110M shape, gate|up of 1,024 channels per expert): 8 experts on 8 rows each, in three layouts and
 * as one padded batched matmul, against the dense gate|up (2,048 channels) on all 64 rows; median ms, three repeats.
 * Usage (docs/PERFORMANCE.md, "Shared channels"):
 * java -Dai.djl.pytorch.num_threads=1 -cp "model/target/classes:$(cat job/target/cli.classpath)" scripts/GemmLayouts.java
 */
public class GemmLayouts {
    public static void main(String[] a) {
        int K = 768, N = 2048, E = 8, M = 8; // N: gate|up of one expert; the dense map is 2N wide
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray dense = m.randomNormal(new Shape(K, 2 * N));
            NDArray x64 = m.randomNormal(new Shape(E * M, K));
            NDArray[] wt = new NDArray[E], w = new NDArray[E];
            for (int e = 0; e < E; e++) { wt[e] = m.randomNormal(new Shape(K, N)); w[e] = wt[e].transpose(1, 0).duplicate(); }
            NDArray stackT = NDArrays.stack(new NDList(wt));
            NDArray[] xs = new NDArray[E];
            for (int e = 0; e < E; e++) xs[e] = x64.get(e * M + ":" + (e * M + M));
            NDArray xStack = x64.reshape(E, M, K);
            for (int rep = 0; rep < 3; rep++) {
            report("dense 64 rows x 4096", m, () -> x64.matMul(dense));
            report("8 experts NN (x @ Wt[K,N])", m, () -> { NDArray l = null; for (int e = 0; e < E; e++) { l = xs[e].matMul(wt[e]); l.toFloatArray(); } return l; });
            report("8 experts NT (x @ W[N,K]^T)", m, () -> { NDArray l = null; for (int e = 0; e < E; e++) { l = xs[e].matMul(w[e].transpose(1, 0)); l.toFloatArray(); } return l; });
            report("8 experts W @ x^T", m, () -> { NDArray l = null; for (int e = 0; e < E; e++) { l = w[e].matMul(xs[e].transpose(1, 0)); l.toFloatArray(); } return l; });
            report("bmm [8,8,K]@[8,K,N]", m, () -> xStack.matMul(stackT));
            }
        }
    }
    static void report(String name, NDManager m, Supplier<NDArray> f) {
        double[] t = new double[15];
        for (int i = -3; i < t.length; i++) {
            try (NDManager s = m.newSubManager()) {
                long st = System.nanoTime();
                NDArray r = f.get(); r.toFloatArray();
                if (i >= 0) t[i] = (System.nanoTime() - st) / 1e6;
            }
        }
        Arrays.sort(t);
        System.out.printf("%-32s %.2f ms%n", name, t[t.length / 2]);
    }
}
