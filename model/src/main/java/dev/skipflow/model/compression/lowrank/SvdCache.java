package dev.skipflow.model.compression.lowrank;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.model.io.Safetensors;
import dev.skipflow.model.weights.Fingerprint;
import dev.skipflow.model.weights.ModelWeights;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.IntConsumer;

/**
 * Every linear map's SVD, computed once per model and kept in a folder ({@code svd.safetensors} and {@code svd.json}
 * naming the model's fingerprint and source). A cache made for other weights is refused with both fingerprints: the
 * model file changed since it was made. Written whole or not at all (a temporary file renamed into place).
 */
public final class SvdCache {

    public static final String TENSORS = "svd.safetensors";
    public static final String MANIFEST = "svd.json";

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private SvdCache() {}

    /** Thrown when a cache exists for different weights. */
    public static final class StaleCacheException extends IllegalArgumentException {
        StaleCacheException(String message) {
            super(message);
        }
    }

    /**
     * The SVDs of every block's seven maps ({@link LowRank#NAMES} order), read from {@code dir} when it holds them for
     * these weights, else computed (one tick of {@code progress} per map) and written there; {@code dir} null: no cache.
     *
     * @param refresh recompute and replace a cache made for other weights instead of refusing it
     */
    public static List<Svd[]> load(ModelWeights w, Path dir, boolean refresh, IntConsumer progress) {
        String fingerprint = Fingerprint.of(w);
        if (dir != null && Files.isRegularFile(dir.resolve(MANIFEST))) {
            JsonNode m;
            try {
                m = JSON.readTree(dir.resolve(MANIFEST).toFile());
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read the SVD cache " + dir.resolve(MANIFEST) + ": " + e.getMessage(), e);
            }
            String cached = m.path("fingerprint").asText();
            if (cached.equals(fingerprint) && Files.isRegularFile(dir.resolve(TENSORS))) {
                return read(dir, w);
            }
            if (!refresh) {
                throw new StaleCacheException("the SVD cache " + dir + " was made for model fingerprint " + cached + " ("
                        + m.path("source").asText() + "), but " + w.source() + " now has fingerprint " + fingerprint
                        + ": the model changed since the cache was made. Pass --refresh-svd to recompute it, or choose "
                        + "another --svd-cache");
            }
        }
        List<Svd[]> out = compute(w, progress);
        if (dir != null) {
            write(dir, w, fingerprint, out);
        }
        return out;
    }

    static List<Svd[]> compute(ModelWeights w, IntConsumer progress) {
        List<Svd[]> out = new ArrayList<>();
        int done = 0;
        for (int l = 0; l < w.blocks().size(); l++) {
            var maps = LowRank.maps(w.blocks().get(l), l);
            Svd[] s = new Svd[maps.length];
            for (int i = 0; i < maps.length; i++) {
                s[i] = Svd.of(maps[i].weight(), maps[i].out(), maps[i].in());
                progress.accept(++done);
            }
            out.add(s);
        }
        return out;
    }

    private static List<Svd[]> read(Path dir, ModelWeights w) {
        Path file = dir.resolve(TENSORS);
        Map<String, Safetensors.Entry> index = Safetensors.index(file);
        List<Svd[]> out = new ArrayList<>();
        for (int l = 0; l < w.blocks().size(); l++) {
            var maps = LowRank.maps(w.blocks().get(l), l);
            Svd[] s = new Svd[maps.length];
            for (int i = 0; i < maps.length; i++) {
                String p = "layers." + l + "." + LowRank.NAMES[i];
                int k = Math.min(maps[i].out(), maps[i].in());
                s[i] = new Svd(maps[i].out(), maps[i].in(), k, get(index, file, p + ".u", (long) maps[i].out() * k),
                        get(index, file, p + ".s", k), get(index, file, p + ".vt", (long) k * maps[i].in()));
            }
            out.add(s);
        }
        return out;
    }

    private static float[] get(Map<String, Safetensors.Entry> index, Path file, String name, long n) {
        Safetensors.Entry e = index.get(name);
        if (e == null || e.elements() != n) {
            throw new IllegalArgumentException("the SVD cache " + file + " lacks " + name + " with " + n
                    + " values; delete the cache folder to recompute it");
        }
        return Safetensors.readFloats(e);
    }

    private static void write(Path dir, ModelWeights w, String fingerprint, List<Svd[]> svds) {
        try {
            Files.createDirectories(dir);
            List<Safetensors.Tensor> tensors = new ArrayList<>();
            for (int l = 0; l < svds.size(); l++) {
                for (int i = 0; i < svds.get(l).length; i++) {
                    Svd s = svds.get(l)[i];
                    String p = "layers." + l + "." + LowRank.NAMES[i];
                    tensors.add(new Safetensors.Tensor(p + ".u", new long[] {s.out(), s.k()}, s.u()));
                    tensors.add(new Safetensors.Tensor(p + ".s", new long[] {s.k()}, s.s()));
                    tensors.add(new Safetensors.Tensor(p + ".vt", new long[] {s.k(), s.in()}, s.vt()));
                }
            }
            String stamp = Long.toString(System.nanoTime(), 36);
            Path tmpTensors = dir.resolve("." + TENSORS + ".tmp-" + stamp);
            Path tmpManifest = dir.resolve("." + MANIFEST + ".tmp-" + stamp);
            Safetensors.write(tmpTensors, tensors, "F32");
            ObjectNode m = JSON.createObjectNode();
            m.put("fingerprint", fingerprint);
            m.put("source", w.source());
            m.put("library", "EJML 0.46.1, ejml-fdense (float, thin SVD)");
            JSON.writeValue(tmpManifest.toFile(), m);
            Files.deleteIfExists(dir.resolve(MANIFEST)); // never a manifest that names tensors not yet in place
            Files.move(tmpTensors, dir.resolve(TENSORS), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            Files.move(tmpManifest, dir.resolve(MANIFEST), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the SVD cache " + dir + ": " + e.getMessage(), e);
        }
    }
}
