import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.decoder.*;
import dev.skipflow.model.io.ModelLoader;
import dev.skipflow.model.tokenizer.Tokenizers;
import java.nio.file.Path;
import java.util.*;

/**
 * Whether a token's change in one block predicts its change in the next (docs/PERFORMANCE.md, "Decode shares by
 * block influence"): dense prefill of calibration documents, per token and block the relative change
 * |y - x| / |x|, then per block the Spearman correlation with the previous block's and the overlap of the two
 * blocks' 20 % least-changed tokens (chance: 20 %). A router feature would need such a signal before the block runs.
 * Usage, after a build: java -cp "model/target/classes:$(cat job/target/cli.classpath)" scripts/BlockChange.java
 *     MODEL TOKENIZER TEXT DOCS
 */
public class BlockChange {
    public static void main(String[] a) throws Exception {
        var w = ModelLoader.load(Path.of(a[0]));
        var tok = Tokenizers.load(Path.of(a[1]), w.spec().vocabSize());
        List<int[]> docs = Documents.read(Path.of(a[2]), tok, 256, Integer.parseInt(a[3]));
        int layers = w.spec().nLayers();
        List<List<Double>> change = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            change.add(new ArrayList<>());
        }
        try (LlamaModel model = new LlamaModel(w, Device.cpu())) {
            for (int[] doc : docs) {
                int n = doc.length;
                try (KvCache cache = new KvCache(model, 1, n); NDManager step = model.newStepManager()) {
                    Forward.run(model, cache, step, true, Forward.prompt(0, 0, doc, null, null, false, n, n),
                            Forward.Plan.hooked(new BlockHook() {
                                @Override
                                public NDArray after(int l, NDArray x, NDArray y, AttentionStats s) {
                                    float[] v = y.sub(x).norm(new int[] {-1}).div(x.norm(new int[] {-1})).toFloatArray();
                                    for (int i = 1; i < v.length; i++) { // the first token is never skipped
                                        change.get(l).add((double) v[i]);
                                    }
                                    return y;
                                }
                            }));
                }
            }
        }
        System.out.println("| block | mean change | Spearman with the previous block's | overlap of the 20 % least changed |");
        System.out.println("| ---: | ---: | ---: | ---: |");
        for (int l = 1; l < layers; l++) {
            double[] prev = change.get(l - 1).stream().mapToDouble(Double::doubleValue).toArray();
            double[] cur = change.get(l).stream().mapToDouble(Double::doubleValue).toArray();
            int k = cur.length / 5;
            Set<Integer> least = new HashSet<>(Arrays.asList(order(cur)).subList(0, k));
            Integer[] prevOrder = order(prev);
            int both = 0;
            for (int i = 0; i < k; i++) {
                both += least.contains(prevOrder[i]) ? 1 : 0;
            }
            System.out.printf(Locale.ROOT, "| %d | %.3f | %.3f | %.1f%% |%n", l, Arrays.stream(cur).average().orElse(0),
                    pearson(rank(prev), rank(cur)), 100.0 * both / k);
        }
    }

    static Integer[] order(double[] v) {
        Integer[] o = new Integer[v.length];
        for (int i = 0; i < o.length; i++) {
            o[i] = i;
        }
        Arrays.sort(o, Comparator.comparingDouble(i -> v[i]));
        return o;
    }

    static double[] rank(double[] v) {
        Integer[] o = order(v);
        double[] r = new double[v.length];
        for (int i = 0; i < o.length; i++) {
            r[o[i]] = i;
        }
        return r;
    }

    static double pearson(double[] a, double[] b) {
        double ma = Arrays.stream(a).average().orElse(0), mb = Arrays.stream(b).average().orElse(0);
        double s = 0, sa = 0, sb = 0;
        for (int i = 0; i < a.length; i++) {
            s += (a[i] - ma) * (b[i] - mb);
            sa += (a[i] - ma) * (a[i] - ma);
            sb += (b[i] - mb) * (b[i] - mb);
        }
        return s / Math.sqrt(sa * sb);
    }
}
