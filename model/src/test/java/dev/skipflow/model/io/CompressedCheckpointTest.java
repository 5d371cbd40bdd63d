package dev.skipflow.model.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.model.TestModels;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.flops.FlopCounter;
import dev.skipflow.model.routing.RouterArtifact;
import dev.skipflow.model.routing.RouterFeatures;
import dev.skipflow.model.routing.SparsitySchedule;
import dev.skipflow.model.spec.BlockSpec;
import dev.skipflow.model.spec.ModelSpec;
import dev.skipflow.model.weights.BlockWeights;
import dev.skipflow.model.weights.LinearWeights;
import dev.skipflow.model.weights.MlpWeights;
import dev.skipflow.model.weights.ModelWeights;
import dev.skipflow.model.weights.Slicing;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Per-block structure through a compressed checkpoint: a model whose blocks differ (fewer heads, a narrower MLP,
 * low-rank and LoRA maps, a mixture of experts) is written, read back, and runs as its weights say.
 */
class CompressedCheckpointTest {

    @TempDir
    Path dir;

    /** stories260K with block 1 pruned (1 of 4 kv heads and its 2 query heads, half the MLP), block 2 low rank in q
     * and w2 with a LoRA o, block 3 a mixture of 3 experts over its MLP channels. */
    static ModelWeights mixed() {
        ModelWeights dense = ModelWeights.of(TestModels.weights());
        int hd = dense.spec().headSize();
        List<BlockWeights> blocks = new ArrayList<>(dense.blocks());
        BlockWeights b1 = blocks.get(1);
        int[] keptQ = range(0, 6 * hd); // query heads 0-5 (kv heads 0-2, groups of 2)
        int[] keptKv = range(0, 3 * hd);
        int[] keptMlp = range(0, 86);
        MlpWeights.Gated g1 = (MlpWeights.Gated) b1.mlp();
        blocks.set(1, new BlockWeights(b1.rmsAtt(), Slicing.rows(b1.wq(), keptQ), Slicing.rows(b1.wk(), keptKv),
                Slicing.rows(b1.wv(), keptKv), Slicing.columns(b1.wo(), keptQ), b1.rmsFfn(),
                new MlpWeights.Gated(Slicing.rows(g1.gate(), keptMlp), Slicing.rows(g1.up(), keptMlp),
                        Slicing.columns(g1.down(), keptMlp))));
        BlockWeights b2 = blocks.get(2);
        MlpWeights.Gated g2 = (MlpWeights.Gated) b2.mlp();
        LinearWeights.Dense wo = (LinearWeights.Dense) b2.wo();
        blocks.set(2, new BlockWeights(b2.rmsAtt(), lowRank(b2.wq(), 5), b2.wk(), b2.wv(),
                new LinearWeights.Lora(wo, 2, filled(2 * wo.in(), 0.01f), filled(wo.out() * 2, 0.02f), 0.5f), b2.rmsFfn(),
                new MlpWeights.Gated(g2.gate(), g2.up(), lowRank(g2.down(), 7))));
        BlockWeights b3 = blocks.get(3);
        MlpWeights.Gated g3 = (MlpWeights.Gated) b3.mlp();
        int dim = dense.spec().dim();
        float[] router = new float[3 * dim];
        for (int i = 0; i < router.length; i++) {
            router[i] = (float) Math.sin(i * 0.37);
        }
        blocks.set(3, new BlockWeights(b3.rmsAtt(), b3.wq(), b3.wk(), b3.wv(), b3.wo(), b3.rmsFfn(),
                new MlpWeights.Moe(g3, new LinearWeights.Dense(3, dim, router),
                        new int[][] {range(0, 100), range(60, 172), range(0, 172)})));
        List<BlockSpec> specs = new ArrayList<>();
        for (BlockWeights b : blocks) {
            specs.add(b.spec(dim, hd));
        }
        ModelSpec s = dense.spec();
        ModelSpec spec = new ModelSpec(s.dim(), hd, s.vocabSize(), s.seqLen(), s.sharedClassifier(), s.ropeTheta(),
                s.normEps(), s.qkvBias(), specs, s);
        return new ModelWeights(spec, dense.tokenEmbedding(), blocks, dense.rmsFinal(), dense.classifier(), "test:mixed");
    }

    /** A truncated SVD stand-in: the first {@code rank} rows of W as A, and B picking them (exact on those rows). */
    static LinearWeights.LowRank lowRank(LinearWeights w, int rank) {
        float[] a = Slicing.rows(w, range(0, rank)).toDense();
        float[] b = new float[w.out() * rank];
        for (int i = 0; i < rank; i++) {
            b[i * rank + i] = 1f;
        }
        return new LinearWeights.LowRank(w.out(), w.in(), rank, a, b, w.bias());
    }

    static int[] range(int from, int to) {
        int[] r = new int[to - from];
        for (int i = 0; i < r.length; i++) {
            r[i] = from + i;
        }
        return r;
    }

    static float[] filled(int n, float v) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = v * ((i % 7) - 3);
        }
        return a;
    }

    static CompressedCheckpoint.Provenance provenance() {
        return new CompressedCheckpoint.Provenance("0123456789abcdef", "stories260K.bin",
                List.of(new CompressedCheckpoint.Step("test", Map.of("what", "hand-made blocks"))));
    }

    @Test
    void aModelWithPerBlockShapesRoundTripsAndRunsAsItsWeightsSay() throws Exception {
        ModelWeights w = mixed();
        Path folder = dir.resolve("mixed");
        CompressedCheckpoint.write(w, provenance(), folder);
        assertEquals(w.spec(), ModelLoader.spec(folder), "the manifest alone gives the spec");
        var loaded = CompressedCheckpoint.read(folder);
        assertEquals(w.spec(), loaded.weights().spec());
        assertEquals(provenance(), loaded.provenance());
        assertEquals(BlockSpec.MlpKind.MOE, loaded.weights().spec().block(3).mlp());
        assertEquals(6, loaded.weights().spec().block(1).heads());
        assertEquals(LinearWeights.LowRank.class, loaded.weights().blocks().get(2).wq().getClass());
        assertArrayEquals(((LinearWeights.LowRank) w.blocks().get(2).wq()).a(),
                ((LinearWeights.LowRank) loaded.weights().blocks().get(2).wq()).a());

        int[] tokens = TestModels.tokenizer().encode("Once upon a time there was a dog", true);
        try (LlamaModel original = new LlamaModel(w, Device.cpu());
                LlamaModel back = new LlamaModel(ModelLoader.load(folder), Device.cpu())) {
            assertEquals(original.fingerprint(), back.fingerprint(), "the same weights, the same identity");
            assertNotEquals(TestModels.model().fingerprint(), back.fingerprint(), "not the dense model's identity");
            float[] a = TestModels.prefillLogits(original, tokens);
            float[] b = TestModels.prefillLogits(back, tokens);
            assertArrayEquals(a, b, 1e-5f, "loaded logits");
            float[] dense = TestModels.prefillLogits(TestModels.model(), tokens);
            float diff = 0;
            for (int i = 0; i < a.length; i++) {
                diff = Math.max(diff, Math.abs(a[i] - dense[i]));
            }
            assertTrue(diff > 1e-2, "the compressed blocks really run: max logit change " + diff);

            // FLOPs: counted from the layers that run, against the original dense model
            FlopCounter f = back.flops();
            FlopCounter d = TestModels.model().flops();
            assertEquals(d.denseBlock(1, 9), f.denseBlock(1, 9), "savings are counted against the original");
            assertTrue(f.blockAttending(1, 10) < d.blockAttending(1, 10), "a pruned block costs less");
            assertEquals(d.blockAttending(0, 10), f.blockAttending(0, 10), "an untouched block costs the same");

            // an artifact trained for the dense model is refused on the compressed one
            var router = new RouterArtifact(TestModels.model().fingerprint(), "stories260K", SparsitySchedule.uniform(0.2, 5),
                    new float[RouterFeatures.COUNT * RouterArtifact.HIDDEN], new float[RouterArtifact.HIDDEN],
                    new float[RouterArtifact.HIDDEN], 0f, "test");
            router.routerFor(TestModels.model(), Path.of("router.json"));
            var e = assertThrows(ModelFormatException.class, () -> router.routerFor(back, Path.of("router.json")));
            assertTrue(e.getMessage().contains(TestModels.model().fingerprint()), e.getMessage());
        }
    }

    @Test
    void aManifestThatDisagreesWithTheTensorsIsRefusedNamingTheTensorAndBothShapes() throws Exception {
        Path folder = dir.resolve("bad");
        CompressedCheckpoint.write(mixed(), provenance(), folder);
        ObjectMapper json = new ObjectMapper();
        Path manifest = folder.resolve(CompressedCheckpoint.MANIFEST);
        ObjectNode root = (ObjectNode) json.readTree(manifest.toFile());
        ((ObjectNode) root.withArray("blocks").get(1)).put("heads", 4); // the tensors have 6 heads
        ((ObjectNode) root.withArray("blocks").get(1)).put("kvHeads", 2);
        json.writeValue(manifest.toFile(), root);
        var e = assertThrows(ModelFormatException.class, () -> ModelLoader.load(folder));
        assertTrue(e.getMessage().contains("tensor layers.1.attention.wq.weight has shape [48, 64]"), e.getMessage());
        assertTrue(e.getMessage().contains("implies [32, 64]"), e.getMessage());

        Files.writeString(manifest, "{\"format\": \"skipflow-compressed\", \"version\": 99}");
        assertTrue(assertThrows(ModelFormatException.class, () -> ModelLoader.load(folder)).getMessage()
                .contains("version 99"));
    }

    @Test
    void mergingALoraUpdateServesTheSameMap() {
        LinearWeights.Dense base = new LinearWeights.Dense(3, 2, new float[] {1, 2, 3, 4, 5, 6});
        var lora = new LinearWeights.Lora(base, 1, new float[] {1, -1}, new float[] {2, 0, 1}, 0.5f);
        // W + 0.5 * B A, with B A = [[2, -2], [0, 0], [1, -1]]
        assertArrayEquals(new float[] {2, 1, 3, 4, 5.5f, 5.5f}, lora.merged().weight());
        assertEquals(6 + 2 + 3, lora.parameters());
    }
}
