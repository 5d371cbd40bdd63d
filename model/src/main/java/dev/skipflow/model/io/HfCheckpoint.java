package dev.skipflow.model.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.model.spec.LlamaConfig;
import dev.skipflow.model.weights.LlamaWeights;
import dev.skipflow.model.io.ModelFormatException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Hugging Face LLaMA-family folders: {@code config.json} plus one or more {@code *.safetensors}. HF stores
 * q/k rows permuted for rotate-half RoPE; they are permuted back to llama2.c's adjacent-pair layout on load.
 */
public final class HfCheckpoint {

    private static final ObjectMapper JSON = new ObjectMapper();

    private HfCheckpoint() {}

    /** The config from config.json; biases and tied head are read from the safetensors headers. */
    public static LlamaConfig readConfig(Path dir) {
        return parse(dir).config();
    }

    private record Parsed(LlamaConfig config, Map<String, Safetensors.Entry> tensors) {}

    private static Parsed parse(Path dir) {
        Path configFile = dir.resolve("config.json");
        if (!Files.isRegularFile(configFile)) {
            throw new ModelFormatException(dir, "no config.json (a Hugging Face model folder needs config.json and *.safetensors)");
        }
        JsonNode cfg;
        try {
            cfg = JSON.readTree(configFile.toFile());
        } catch (IOException e) {
            throw new ModelFormatException(configFile, "not valid JSON: " + e.getMessage(), e);
        }
        Map<String, Safetensors.Entry> tensors = new HashMap<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList()) {
                tensors.putAll(Safetensors.index(f));
            }
        } catch (IOException e) {
            throw new ModelFormatException(dir, "cannot list: " + e.getMessage(), e);
        }
        if (tensors.isEmpty()) {
            throw new ModelFormatException(dir, "no *.safetensors files");
        }
        int dim = requiredInt(configFile, cfg, "hidden_size");
        int heads = requiredInt(configFile, cfg, "num_attention_heads");
        int layers = requiredInt(configFile, cfg, "num_hidden_layers");
        LlamaConfig config;
        try {
            config = new LlamaConfig(
                    dim,
                    requiredInt(configFile, cfg, "intermediate_size"),
                    layers,
                    heads,
                    cfg.path("num_key_value_heads").asInt(heads),
                    requiredInt(configFile, cfg, "vocab_size"),
                    cfg.path("max_position_embeddings").asInt(2048),
                    !tensors.containsKey("lm_head.weight") || cfg.path("tie_word_embeddings").asBoolean(false),
                    (float) cfg.path("rope_theta").asDouble(10000.0),
                    (float) cfg.path("rms_norm_eps").asDouble(1e-6),
                    tensors.containsKey("model.layers.0.self_attn.q_proj.bias"));
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(configFile, e.getMessage());
        }
        return new Parsed(config, tensors);
    }

    public static LlamaWeights read(Path dir) {
        Parsed parsed = parse(dir);
        LlamaConfig config = parsed.config();
        Map<String, Safetensors.Entry> tensors = parsed.tensors();
        int dim = config.dim();
        int heads = config.nHeads();
        int layers = config.nLayers();
        Loader l = new Loader(dir, tensors, config);
        int kv = config.kvDim();
        int hidden = config.hiddenDim();
        int v = config.vocabSize();
        float[] emb = l.get("model.embed_tokens.weight", v, dim);
        float[] cls = config.sharedClassifier() ? emb : l.get("lm_head.weight", v, dim);
        float[][] rmsAtt = new float[layers][];
        float[][] wq = new float[layers][];
        float[][] wk = new float[layers][];
        float[][] wv = new float[layers][];
        float[][] wo = new float[layers][];
        float[][] bq = config.qkvBias() ? new float[layers][] : null;
        float[][] bk = config.qkvBias() ? new float[layers][] : null;
        float[][] bv = config.qkvBias() ? new float[layers][] : null;
        float[][] rmsFfn = new float[layers][];
        float[][] w1 = new float[layers][];
        float[][] w2 = new float[layers][];
        float[][] w3 = new float[layers][];
        int hd = config.headSize();
        for (int i = 0; i < layers; i++) {
            String p = "model.layers." + i + ".";
            rmsAtt[i] = l.get(p + "input_layernorm.weight", dim);
            wq[i] = ropeRowsToPairs(l.get(p + "self_attn.q_proj.weight", dim, dim), heads, hd, dim);
            wk[i] = ropeRowsToPairs(l.get(p + "self_attn.k_proj.weight", kv, dim), config.nKvHeads(), hd, dim);
            wv[i] = l.get(p + "self_attn.v_proj.weight", kv, dim);
            wo[i] = l.get(p + "self_attn.o_proj.weight", dim, dim);
            if (config.qkvBias()) {
                bq[i] = ropeRowsToPairs(l.get(p + "self_attn.q_proj.bias", dim), heads, hd, 1);
                bk[i] = ropeRowsToPairs(l.get(p + "self_attn.k_proj.bias", kv), config.nKvHeads(), hd, 1);
                bv[i] = l.get(p + "self_attn.v_proj.bias", kv);
            }
            rmsFfn[i] = l.get(p + "post_attention_layernorm.weight", dim);
            w1[i] = l.get(p + "mlp.gate_proj.weight", hidden, dim);
            w2[i] = l.get(p + "mlp.down_proj.weight", dim, hidden);
            w3[i] = l.get(p + "mlp.up_proj.weight", hidden, dim);
        }
        float[] norm = l.get("model.norm.weight", dim);
        return new LlamaWeights(config, emb, rmsAtt, wq, wk, wv, wo, bq, bk, bv, rmsFfn, w1, w2, w3, norm, cls,
                dir.toString());
    }

    /** Writes weights as a Hugging Face LLaMA folder (Qwen2-style biases when present). */
    public static void write(LlamaWeights w, Path dir, String dtype) throws IOException {
        Files.createDirectories(dir);
        LlamaConfig c = w.config();
        int hd = c.headSize();
        List<Safetensors.Tensor> ts = new ArrayList<>();
        ts.add(new Safetensors.Tensor("model.embed_tokens.weight", shape(c.vocabSize(), c.dim()), w.tokenEmbedding()));
        for (int i = 0; i < c.nLayers(); i++) {
            String p = "model.layers." + i + ".";
            ts.add(new Safetensors.Tensor(p + "input_layernorm.weight", shape(c.dim()), w.rmsAtt()[i]));
            ts.add(new Safetensors.Tensor(p + "self_attn.q_proj.weight", shape(c.dim(), c.dim()),
                    pairsToRopeRows(w.wq()[i], c.nHeads(), hd, c.dim())));
            ts.add(new Safetensors.Tensor(p + "self_attn.k_proj.weight", shape(c.kvDim(), c.dim()),
                    pairsToRopeRows(w.wk()[i], c.nKvHeads(), hd, c.dim())));
            ts.add(new Safetensors.Tensor(p + "self_attn.v_proj.weight", shape(c.kvDim(), c.dim()), w.wv()[i]));
            if (c.qkvBias()) {
                ts.add(new Safetensors.Tensor(p + "self_attn.q_proj.bias", shape(c.dim()),
                        pairsToRopeRows(w.bq()[i], c.nHeads(), hd, 1)));
                ts.add(new Safetensors.Tensor(p + "self_attn.k_proj.bias", shape(c.kvDim()),
                        pairsToRopeRows(w.bk()[i], c.nKvHeads(), hd, 1)));
                ts.add(new Safetensors.Tensor(p + "self_attn.v_proj.bias", shape(c.kvDim()), w.bv()[i]));
            }
            ts.add(new Safetensors.Tensor(p + "self_attn.o_proj.weight", shape(c.dim(), c.dim()), w.wo()[i]));
            ts.add(new Safetensors.Tensor(p + "post_attention_layernorm.weight", shape(c.dim()), w.rmsFfn()[i]));
            ts.add(new Safetensors.Tensor(p + "mlp.gate_proj.weight", shape(c.hiddenDim(), c.dim()), w.w1()[i]));
            ts.add(new Safetensors.Tensor(p + "mlp.down_proj.weight", shape(c.dim(), c.hiddenDim()), w.w2()[i]));
            ts.add(new Safetensors.Tensor(p + "mlp.up_proj.weight", shape(c.hiddenDim(), c.dim()), w.w3()[i]));
        }
        ts.add(new Safetensors.Tensor("model.norm.weight", shape(c.dim()), w.rmsFinal()));
        if (!c.sharedClassifier()) {
            ts.add(new Safetensors.Tensor("lm_head.weight", shape(c.vocabSize(), c.dim()), w.classifier()));
        }
        Safetensors.write(dir.resolve("model.safetensors"), ts, dtype);
        ObjectNode cfg = JSON.createObjectNode();
        cfg.put("model_type", c.qkvBias() ? "qwen2" : "llama");
        cfg.put("hidden_size", c.dim());
        cfg.put("intermediate_size", c.hiddenDim());
        cfg.put("num_hidden_layers", c.nLayers());
        cfg.put("num_attention_heads", c.nHeads());
        cfg.put("num_key_value_heads", c.nKvHeads());
        cfg.put("vocab_size", c.vocabSize());
        cfg.put("max_position_embeddings", c.seqLen());
        cfg.put("rope_theta", c.ropeTheta());
        cfg.put("rms_norm_eps", c.normEps());
        cfg.put("tie_word_embeddings", c.sharedClassifier());
        cfg.put("torch_dtype", switch (dtype) {
            case "F16" -> "float16";
            case "BF16" -> "bfloat16";
            default -> "float32";
        });
        JSON.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("config.json").toFile(), cfg);
    }

    /** HF row order within a head is (half, i); llama2.c's is (i, half): row 2i+j comes from row j*hd/2+i. */
    static float[] ropeRowsToPairs(float[] w, int heads, int hd, int cols) {
        float[] out = new float[w.length];
        int half = hd / 2;
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < half; i++) {
                for (int j = 0; j < 2; j++) {
                    System.arraycopy(w, (h * hd + j * half + i) * cols, out, (h * hd + 2 * i + j) * cols, cols);
                }
            }
        }
        return out;
    }

    static float[] pairsToRopeRows(float[] w, int heads, int hd, int cols) {
        float[] out = new float[w.length];
        int half = hd / 2;
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < half; i++) {
                for (int j = 0; j < 2; j++) {
                    System.arraycopy(w, (h * hd + 2 * i + j) * cols, out, (h * hd + j * half + i) * cols, cols);
                }
            }
        }
        return out;
    }

    private static long[] shape(long... dims) {
        return dims;
    }

    private static int requiredInt(Path file, JsonNode cfg, String key) {
        JsonNode n = cfg.get(key);
        if (n == null || !n.canConvertToInt()) {
            throw new ModelFormatException(file, "missing or non-integer \"" + key + "\"");
        }
        return n.asInt();
    }

    private record Loader(Path dir, Map<String, Safetensors.Entry> tensors, LlamaConfig config) {
        float[] get(String name, long... expectedShape) {
            Safetensors.Entry e = tensors.get(name);
            if (e == null) {
                throw new ModelFormatException(dir, "tensor " + name + " is missing");
            }
            if (!java.util.Arrays.equals(e.shape(), expectedShape)) {
                throw new ModelFormatException(e.file(), "tensor " + name + " has shape "
                        + java.util.Arrays.toString(e.shape()) + ", config.json implies "
                        + java.util.Arrays.toString(expectedShape));
            }
            return Safetensors.readFloats(e);
        }
    }
}
