package dev.skipflow.model.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.model.spec.BlockSpec;
import dev.skipflow.model.spec.ModelSpec;
import dev.skipflow.model.weights.BlockWeights;
import dev.skipflow.model.weights.LinearWeights;
import dev.skipflow.model.weights.MlpWeights;
import dev.skipflow.model.weights.ModelWeights;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A compressed model as a folder (DESIGN §7): {@code model.safetensors}, whose tensor shapes carry the per-block
 * structure, and the manifest {@code skipflow.json}: format and version, the original model's fingerprint and
 * source, the compression steps with their settings, the original's and this model's per-block shapes, and each
 * linear map's kind. Tensors keep llama2.c's layout (q/k rows in adjacent-pair RoPE order) and Meta's names:
 * <pre>
 *   tok_embeddings.weight, norm.weight, output.weight (unless shared)
 *   layers.L.attention_norm.weight, layers.L.ffn_norm.weight
 *   layers.L.attention.{wq,wk,wv,wo}.*, layers.L.feed_forward.{w1,w3,w2}.*   (w1 gate, w3 up, w2 down)
 *     dense: .weight [out, in]; low rank: .a [rank, in], .b [out, rank]; LoRA: .weight, .lora_a, .lora_b; .bias
 *   layers.L.feed_forward.router.weight [experts, dim], layers.L.feed_forward.experts.E.channels [k]
 * </pre>
 * Expert channel indices are stored as F32 (exact below 2^24). Loading checks every tensor against the manifest
 * and refuses a mismatch naming the tensor and both shapes.
 */
public final class CompressedCheckpoint {

    public static final String MANIFEST = "skipflow.json";
    public static final String TENSORS = "model.safetensors";
    public static final String FORMAT = "skipflow-compressed";
    public static final int VERSION = 1;

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** One compression step: what was done, with which settings (recorded as given). */
    public record Step(String method, Map<String, Object> settings) {}

    /**
     * What the manifest says besides the shapes.
     *
     * @param originalFingerprint fingerprint of the model the chain started from
     * @param originalSource where that model was read from
     * @param steps every step from the original to this model, in order
     */
    public record Provenance(String originalFingerprint, String originalSource, List<Step> steps) {
        public Provenance {
            steps = List.copyOf(steps);
        }

    }

    /** A loaded compressed model: its weights and where they came from. */
    public record Loaded(ModelWeights weights, Provenance provenance) {}

    private CompressedCheckpoint() {}

    public static boolean isCompressed(Path dir) {
        return Files.isRegularFile(dir.resolve(MANIFEST));
    }

    public static void write(ModelWeights w, Provenance provenance, Path dir) throws IOException {
        Files.createDirectories(dir);
        ModelSpec s = w.spec();
        ObjectNode root = JSON.createObjectNode();
        root.put("format", FORMAT);
        root.put("version", VERSION);
        ObjectNode original = root.putObject("original");
        original.put("fingerprint", provenance.originalFingerprint());
        original.put("source", provenance.originalSource());
        ArrayNode steps = root.putArray("steps");
        for (Step step : provenance.steps()) {
            ObjectNode o = steps.addObject();
            o.put("method", step.method());
            o.set("settings", JSON.valueToTree(step.settings()));
        }
        ObjectNode model = root.putObject("model");
        model.put("dim", s.dim());
        model.put("headSize", s.headSize());
        model.put("vocabSize", s.vocabSize());
        model.put("seqLen", s.seqLen());
        model.put("sharedClassifier", s.sharedClassifier());
        model.put("ropeTheta", s.ropeTheta());
        model.put("normEps", s.normEps());
        model.put("qkvBias", s.qkvBias());
        ArrayNode originalBlocks = root.putArray("originalBlocks");
        for (BlockSpec b : s.original().blocks()) {
            shape(originalBlocks.addObject(), b);
        }
        List<Safetensors.Tensor> tensors = new ArrayList<>();
        tensors.add(tensor("tok_embeddings.weight", w.tokenEmbedding(), s.vocabSize(), s.dim()));
        ArrayNode blocks = root.putArray("blocks");
        for (int l = 0; l < s.nLayers(); l++) {
            BlockWeights b = w.blocks().get(l);
            ObjectNode o = blocks.addObject();
            shape(o, s.block(l));
            ObjectNode linears = o.putObject("linears");
            String p = "layers." + l + ".";
            tensors.add(tensor(p + "attention_norm.weight", b.rmsAtt(), s.dim()));
            tensors.add(tensor(p + "ffn_norm.weight", b.rmsFfn(), s.dim()));
            linear(tensors, linears, p + "attention.", "wq", b.wq());
            linear(tensors, linears, p + "attention.", "wk", b.wk());
            linear(tensors, linears, p + "attention.", "wv", b.wv());
            linear(tensors, linears, p + "attention.", "wo", b.wo());
            MlpWeights.Gated g = b.mlp() instanceof MlpWeights.Moe m ? m.channels() : (MlpWeights.Gated) b.mlp();
            linear(tensors, linears, p + "feed_forward.", "w1", g.gate());
            linear(tensors, linears, p + "feed_forward.", "w3", g.up());
            linear(tensors, linears, p + "feed_forward.", "w2", g.down());
            if (b.mlp() instanceof MlpWeights.Moe m) {
                tensors.add(tensor(p + "feed_forward.router.weight", m.router().weight(), m.experts().length, s.dim()));
                for (int e = 0; e < m.experts().length; e++) {
                    int[] c = m.experts()[e];
                    float[] f = new float[c.length];
                    for (int i = 0; i < c.length; i++) {
                        f[i] = c[i];
                    }
                    tensors.add(tensor(p + "feed_forward.experts." + e + ".channels", f, c.length));
                }
            }
        }
        tensors.add(tensor("norm.weight", w.rmsFinal(), s.dim()));
        if (!s.sharedClassifier()) {
            tensors.add(tensor("output.weight", w.classifier(), s.vocabSize(), s.dim()));
        }
        Safetensors.write(dir.resolve(TENSORS), tensors, "F32");
        JSON.writeValue(dir.resolve(MANIFEST).toFile(), root);
    }

    private static void shape(ObjectNode o, BlockSpec b) {
        o.put("heads", b.heads());
        o.put("kvHeads", b.kvHeads());
        o.put("mlpHidden", b.mlpHidden());
        o.put("mlp", b.mlp().name().toLowerCase(java.util.Locale.ROOT));
        o.put("experts", b.experts());
    }

    private static void linear(List<Safetensors.Tensor> out, ObjectNode kinds, String prefix, String name,
            LinearWeights w) {
        String p = prefix + name;
        if (w instanceof LinearWeights.Dense d) {
            kinds.put(name, "dense");
            out.add(tensor(p + ".weight", d.weight(), d.out(), d.in()));
        } else if (w instanceof LinearWeights.LowRank r) {
            kinds.put(name, "lowrank:" + r.rank());
            out.add(tensor(p + ".a", r.a(), r.rank(), r.in()));
            out.add(tensor(p + ".b", r.b(), r.out(), r.rank()));
        } else if (w instanceof LinearWeights.Svd) {
            throw new IllegalArgumentException(p + " is in SVD form (SoftLMs training only); truncate it to low rank or "
                    + "dense before writing a checkpoint");
        } else {
            LinearWeights.Lora l = (LinearWeights.Lora) w;
            kinds.put(name, "lora:" + l.rank() + ":" + l.scale());
            out.add(tensor(p + ".weight", l.base().weight(), l.out(), l.in()));
            out.add(tensor(p + ".lora_a", l.a(), l.rank(), l.in()));
            out.add(tensor(p + ".lora_b", l.b(), l.out(), l.rank()));
        }
        if (w.bias() != null) {
            out.add(tensor(p + ".bias", w.bias(), w.out()));
        }
    }

    private static Safetensors.Tensor tensor(String name, float[] values, long... shape) {
        return new Safetensors.Tensor(name, shape, values);
    }

    /** The per-block spec from the manifest alone, without reading tensors. */
    public static ModelSpec readSpec(Path dir) {
        return spec(dir.resolve(MANIFEST), manifest(dir));
    }

    private static JsonNode manifest(Path dir) {
        Path manifestFile = dir.resolve(MANIFEST);
        JsonNode root;
        try {
            root = JSON.readTree(manifestFile.toFile());
        } catch (IOException e) {
            throw new ModelFormatException(manifestFile, "not a readable manifest (JSON): " + e.getMessage(), e);
        }
        if (!FORMAT.equals(root.path("format").asText())) {
            throw new ModelFormatException(manifestFile, "\"format\" is not \"" + FORMAT + "\"");
        }
        if (root.path("version").asInt(-1) != VERSION) {
            throw new ModelFormatException(manifestFile, "manifest version " + root.path("version") + "; this build reads "
                    + VERSION);
        }
        return root;
    }

    private static ModelSpec spec(Path manifestFile, JsonNode root) {
        JsonNode m = root.path("model");
        List<BlockSpec> blocks = new ArrayList<>();
        List<BlockSpec> originalBlocks = new ArrayList<>();
        try {
            for (JsonNode b : root.path("blocks")) {
                blocks.add(blockSpec(b));
            }
            for (JsonNode b : root.path("originalBlocks")) {
                originalBlocks.add(blockSpec(b));
            }
            if (originalBlocks.size() != blocks.size()) {
                throw new IllegalArgumentException("manifest lists " + blocks.size() + " blocks but "
                        + originalBlocks.size() + " original blocks");
            }
            ModelSpec original = new ModelSpec(required(manifestFile, m, "dim"), required(manifestFile, m, "headSize"),
                    required(manifestFile, m, "vocabSize"), required(manifestFile, m, "seqLen"),
                    m.path("sharedClassifier").asBoolean(), (float) m.path("ropeTheta").asDouble(10000),
                    (float) m.path("normEps").asDouble(1e-5), m.path("qkvBias").asBoolean(), originalBlocks, null);
            return new ModelSpec(original.dim(), original.headSize(), original.vocabSize(), original.seqLen(),
                    original.sharedClassifier(), original.ropeTheta(), original.normEps(), original.qkvBias(), blocks,
                    original);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(manifestFile, e.getMessage());
        }
    }

    /** What the manifest says was done, without reading tensors. */
    public static Provenance readProvenance(Path dir) {
        return provenance(manifest(dir));
    }

    private static Provenance provenance(JsonNode root) {
        JsonNode o = root.path("original");
        List<Step> steps = new ArrayList<>();
        for (JsonNode s : root.path("steps")) {
            steps.add(new Step(s.path("method").asText(), JSON.convertValue(s.path("settings"), LinkedHashMap.class)));
        }
        return new Provenance(o.path("fingerprint").asText(), o.path("source").asText(), steps);
    }

    public static Loaded read(Path dir) {
        JsonNode root = manifest(dir);
        ModelSpec spec = spec(dir.resolve(MANIFEST), root);
        Path file = dir.resolve(TENSORS);
        if (!Files.isRegularFile(file)) {
            throw new ModelFormatException(dir, "no " + TENSORS + " beside " + MANIFEST);
        }
        Tensors t = new Tensors(file, Safetensors.index(file));
        int d = spec.dim();
        int hd = spec.headSize();
        float[] emb = t.get("tok_embeddings.weight", "the embedding", spec.vocabSize(), d);
        List<BlockWeights> weights = new ArrayList<>();
        for (int l = 0; l < spec.nLayers(); l++) {
            BlockSpec b = spec.block(l);
            JsonNode kinds = root.path("blocks").get(l).path("linears");
            String p = "layers." + l + ".";
            String why = "block " + l + ": " + b.heads() + " heads, " + b.kvHeads() + " kv heads of size " + hd + ", mlp "
                    + b.mlpHidden();
            int q = b.queryDim(hd);
            int kv = b.kvDim(hd);
            int h = b.mlpHidden();
            boolean bias = spec.qkvBias();
            LinearWeights wq = t.linear(p + "attention.wq", kinds.path("wq").asText("dense"), q, d, bias, why);
            LinearWeights wk = t.linear(p + "attention.wk", kinds.path("wk").asText("dense"), kv, d, bias, why);
            LinearWeights wv = t.linear(p + "attention.wv", kinds.path("wv").asText("dense"), kv, d, bias, why);
            LinearWeights wo = t.linear(p + "attention.wo", kinds.path("wo").asText("dense"), d, q, false, why);
            MlpWeights.Gated gated = new MlpWeights.Gated(
                    t.linear(p + "feed_forward.w1", kinds.path("w1").asText("dense"), h, d, false, why),
                    t.linear(p + "feed_forward.w3", kinds.path("w3").asText("dense"), h, d, false, why),
                    t.linear(p + "feed_forward.w2", kinds.path("w2").asText("dense"), d, h, false, why));
            MlpWeights mlp = gated;
            if (b.mlp() == BlockSpec.MlpKind.MOE) {
                float[] router = t.get(p + "feed_forward.router.weight", why, b.experts(), d);
                int[][] experts = new int[b.experts()][];
                for (int e = 0; e < b.experts(); e++) {
                    experts[e] = t.channels(p + "feed_forward.experts." + e + ".channels", why);
                }
                try {
                    mlp = new MlpWeights.Moe(gated, new LinearWeights.Dense(b.experts(), d, router), experts);
                } catch (IllegalArgumentException e) {
                    throw new ModelFormatException(file, "block " + l + ": " + e.getMessage());
                }
            }
            weights.add(new BlockWeights(t.get(p + "attention_norm.weight", why, d), wq, wk, wv, wo,
                    t.get(p + "ffn_norm.weight", why, d), mlp));
        }
        float[] norm = t.get("norm.weight", "the final norm", d);
        float[] cls = spec.sharedClassifier() ? emb : t.get("output.weight", "the LM head", spec.vocabSize(), d);
        t.requireAllRead();
        try {
            return new Loaded(new ModelWeights(spec, emb, weights, norm, cls, dir.toString()), provenance(root));
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(dir, e.getMessage());
        }
    }

    private static BlockSpec blockSpec(JsonNode b) {
        BlockSpec.MlpKind kind = BlockSpec.MlpKind.valueOf(b.path("mlp").asText("gated").toUpperCase(java.util.Locale.ROOT));
        return new BlockSpec(b.path("heads").asInt(), b.path("kvHeads").asInt(), b.path("mlpHidden").asInt(), kind,
                b.path("experts").asInt(0));
    }

    private static int required(Path file, JsonNode n, String key) {
        if (!n.path(key).canConvertToInt()) {
            throw new ModelFormatException(file, "manifest lacks model." + key);
        }
        return n.path(key).asInt();
    }

    /** The tensors of the file, each checked against the shape the manifest implies. */
    private static final class Tensors {
        private final Path file;
        private final Map<String, Safetensors.Entry> entries;
        private final Set<String> read = new HashSet<>();

        Tensors(Path file, Map<String, Safetensors.Entry> entries) {
            this.file = file;
            this.entries = entries;
        }

        float[] get(String name, String why, long... shape) {
            Safetensors.Entry e = entries.get(name);
            if (e == null) {
                throw new ModelFormatException(file, "tensor " + name + " is missing (" + MANIFEST + " implies "
                        + Arrays.toString(shape) + " for " + why + ")");
            }
            if (!Arrays.equals(e.shape(), shape)) {
                throw new ModelFormatException(file, "tensor " + name + " has shape " + Arrays.toString(e.shape()) + " but "
                        + MANIFEST + " implies " + Arrays.toString(shape) + " (" + why + ")");
            }
            read.add(name);
            return Safetensors.readFloats(e);
        }

        int[] channels(String name, String why) {
            Safetensors.Entry e = entries.get(name);
            if (e == null || e.shape().length != 1) {
                throw new ModelFormatException(file, "tensor " + name + " is missing or not a vector (" + why + ")");
            }
            float[] f = get(name, why, e.shape());
            int[] c = new int[f.length];
            for (int i = 0; i < f.length; i++) {
                c[i] = (int) f[i];
            }
            return c;
        }

        LinearWeights linear(String name, String kind, int out, int in, boolean bias, String why) {
            float[] b = bias ? get(name + ".bias", why, out) : null;
            String[] k = kind.split(":");
            try {
                return switch (k[0]) {
                    case "dense" -> new LinearWeights.Dense(out, in, get(name + ".weight", why, out, in), b);
                    case "lowrank" -> {
                        int r = Integer.parseInt(k[1]);
                        yield new LinearWeights.LowRank(out, in, r, get(name + ".a", why, r, in), get(name + ".b", why, out, r), b);
                    }
                    case "lora" -> {
                        int r = Integer.parseInt(k[1]);
                        yield new LinearWeights.Lora(new LinearWeights.Dense(out, in, get(name + ".weight", why, out, in), b),
                                r, get(name + ".lora_a", why, r, in), get(name + ".lora_b", why, out, r), Float.parseFloat(k[2]));
                    }
                    default -> throw new ModelFormatException(file, "linear " + name + " has unknown kind '" + kind
                            + "' in " + MANIFEST + " (dense, lowrank:R or lora:R:SCALE)");
                };
            } catch (ArrayIndexOutOfBoundsException | NumberFormatException e) {
                throw new ModelFormatException(file, "linear " + name + " has malformed kind '" + kind + "' in " + MANIFEST);
            }
        }

        /** Refuses tensors the manifest does not describe (a manifest that lost track of what was done). */
        void requireAllRead() {
            for (String name : entries.keySet()) {
                if (!read.contains(name)) {
                    throw new ModelFormatException(file, "tensor " + name + " is not described by " + MANIFEST);
                }
            }
        }
    }
}
