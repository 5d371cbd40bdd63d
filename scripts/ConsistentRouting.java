import ai.djl.Device;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.decoder.*;
import dev.skipflow.model.eval.*;
import dev.skipflow.model.io.ModelLoader;
import dev.skipflow.model.routing.*;
import dev.skipflow.model.tokenizer.Tokenizers;
import java.nio.file.*;
import java.util.*;

/**
 * Prompt routing under the serving protocol with untrained routers that differ in how consistent their choices are
 * across blocks (docs/PERFORMANCE.md, "Per-token decisions"): static (sink + the most recent tokens), importance
 * (ranked again in every block by the attention the block before measured), hybrid:R (the most recent share R of
 * each block's budget, the rest by that block's importance: re-ranked per block) and frozen:R:F (blocks 0..F run
 * every token, importance summed over them then fixed: the same ranking in every later block, whose shares are
 * scaled up to keep the mean) and rerank:R (block 0 runs every token, then the same mix re-ranked in every block by
 * the importance the block before measured). hybrid routes block 0 like static (no importance yet), so the tokens
 * it skips there are never measured and it keeps static's choice.
 * sinks:K is the static rule with the first K tokens kept (static = sinks:1).
 * A variant ending in {@code +kv} is the same router with the tokens it skips still writing each block's key and
 * value ({@code TokenRouter.propagatingKeys()}).
 * Usage: java -cp CP scripts/ConsistentRouting.java MODEL TOKENIZER TEXT DOCS SPARSITIES VARIANTS
 *   e.g. ... 0.2,0.4 static,importance,hybrid:0.75,frozen:0.75:0
 */
public class ConsistentRouting {
    /**
     * rerank:R (denseFirst): block 0 runs every token; each later block keeps the sink, the most recent share R of its
     * budget and the rest by the importance the block before it measured (re-ranked per block; skipped tokens keep
     * their last value); shares scaled as frozen's. hybrid:R (not denseFirst): the same from block 0 on, where no
     * importance is known yet, so block 0 keeps static's choice.
     */
    static final class RerankRouter implements TokenRouter {
        final SparsitySchedule schedule; final double recent; final boolean denseFirst; float[] importance = new float[0];
        RerankRouter(SparsitySchedule s, double r, boolean denseFirst) {
            schedule = denseFirst ? s.firstBlockDense() : s; recent = r; this.denseFirst = denseFirst;
        }
        @Override public void attended(int layer, Candidates ran, AttentionStats attention) {
            if (!ran.prefill()) return;
            float[] fresh = RouterFeatures.importance(attention.receivedByKey(), ran.positions(), attention.heads());
            if (importance.length < fresh.length) importance = Arrays.copyOf(importance, fresh.length);
            for (int t = 0; t < fresh.length; t++) if (fresh[t] > 0) importance[t] = fresh[t];
        }
        @Override public void begin(boolean prefill, int rows) { if (prefill) importance = new float[0]; }
        @Override public int[] keepPrefill(int layer, int[] positions) {
            int n = positions.length; int keep = schedule.keep(layer, n);
            if (keep >= n || (denseFirst && importance.length == 0)) return TokenRouter.all(n);
            boolean measured = importance.length > 0;
            return MixedRankRouter.keepRows(positions, measured ? importance : null, keep, measured ? recent : 1);
        }
        @Override public String describe() { return (denseFirst ? "rerank" : "hybrid") + " r=" + recent + " " + schedule; }
    }
    static final class FrozenRouter implements TokenRouter {
        final SparsitySchedule schedule; final double recent; final int freezeAt; float[] importance = new float[0]; boolean frozen;
        FrozenRouter(SparsitySchedule s, double r, int f) { schedule = s; recent = r; freezeAt = f; }
        @Override public void attended(int layer, Candidates ran, AttentionStats attention) {
            if (!ran.prefill() || frozen) return;
            float[] fresh = RouterFeatures.importance(attention.receivedByKey(), ran.positions(), attention.heads());
            if (importance.length < fresh.length) importance = Arrays.copyOf(importance, fresh.length);
            for (int t = 0; t < fresh.length; t++) importance[t] += fresh[t];
            if (layer >= freezeAt) frozen = true;
        }
        @Override public void begin(boolean prefill, int rows) { if (prefill) { importance = new float[0]; frozen = false; } }
        @Override public int[] keepPrefill(int layer, int[] positions) {
            int n = positions.length;
            if (layer <= freezeAt) return TokenRouter.all(n);
            int L = schedule.perLayer().length;
            double s = Math.min(0.95, schedule.perLayer()[layer] * L / (double) (L - freezeAt - 1));
            int keep = Math.max(1, n - (int) Math.round(s * n));
            if (keep >= n) return TokenRouter.all(n);
            return MixedRankRouter.keepRows(positions, importance, keep, recent);
        }
        @Override public String describe() { return "frozen r=" + recent + " f=" + freezeAt + " " + schedule; }
    }
    /** sinks:K — FTP's static rule with the first K tokens kept as sinks (StreamingLLM keeps 4), then the most recent. */
    record SinksRouter(SparsitySchedule schedule, int sinks) implements TokenRouter {
        @Override public int[] keepPrefill(int layer, int[] positions) {
            int n = positions.length; int keep = schedule.keep(layer, n);
            if (keep >= n) return TokenRouter.all(n);
            int first = positions[0] == 0 ? Math.min(sinks, keep - 1) : 0;
            int[] rows = new int[keep];
            for (int i = 0; i < first; i++) rows[i] = i;
            for (int i = first, r = n - (keep - first); i < keep; i++, r++) rows[i] = r;
            return rows;
        }
        @Override public String describe() { return "sinks " + sinks + " " + schedule; }
    }
    public static void main(String[] a) throws Exception {
        var w = ModelLoader.load(Path.of(a[0]));
        var tok = Tokenizers.load(Path.of(a[1]), w.spec().vocabSize());
        List<int[]> docs = Documents.read(Path.of(a[2]), tok, 256, Integer.parseInt(a[3]));
        try (LlamaModel model = new LlamaModel(w, Device.cpu())) {
            int L = model.spec().nLayers();
            for (String sp : a[4].split(",")) {
                double s = Double.parseDouble(sp);
                SparsitySchedule u = SparsitySchedule.uniform(s, L);
                List<PerplexityEvaluator.Variant> vs = new ArrayList<>();
                for (String v : a[5].split(",")) {
                    boolean kv = v.endsWith("+kv");
                    String[] p = (kv ? v.substring(0, v.length() - 3) : v).split(":");
                    TokenRouter r = switch (p[0]) {
                        case "static" -> new StaticRouter(u);
                        case "sinks" -> new SinksRouter(u, Integer.parseInt(p[1]));
                        case "importance" -> new ImportanceRouter(u);
                        case "hybrid" -> new RerankRouter(u, Double.parseDouble(p[1]), false);
                        case "rerank" -> new RerankRouter(u, Double.parseDouble(p[1]), true);
                        case "frozen" -> new FrozenRouter(u, Double.parseDouble(p[1]), Integer.parseInt(p[2]));
                        default -> throw new IllegalArgumentException("unknown variant " + v);
                    };
                    vs.add(new PerplexityEvaluator.Variant(v, kv ? r.propagatingKeys() : r, null));
                }
                var side = new ServingEvaluator(model, false).compare(docs, vs, i -> {});
                for (var v : side.variants())
                    System.out.printf(Locale.ROOT, "%s s=%.2f %-16s agree %.4f greedy %.4f ppl %.4f saved %.4f%n",
                        a[2].replaceAll(".*/", ""), s, v.variant().name(), v.agreement(), v.greedyAgreement(),
                        v.result().perplexity(), v.result().flops().savings().savedFraction());
            }
        }
    }
}
