package dev.skipflow.model.weights;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * A model's identity: SHA-256 over its spec and a digest of every tensor (name, kind and values), so an
 * artifact trained for one model is refused on a pruned, low-rank or otherwise changed one.
 */
public final class Fingerprint {

    private Fingerprint() {}

    public static String of(ModelWeights w) {
        MessageDigest all = sha256();
        all.update(w.spec().toString().getBytes(StandardCharsets.UTF_8));
        tensor(all, "embedding", w.tokenEmbedding());
        for (int l = 0; l < w.blocks().size(); l++) {
            BlockWeights b = w.blocks().get(l);
            String p = "blocks." + l + ".";
            tensor(all, p + "rms_att", b.rmsAtt());
            linear(all, p + "wq", b.wq());
            linear(all, p + "wk", b.wk());
            linear(all, p + "wv", b.wv());
            linear(all, p + "wo", b.wo());
            tensor(all, p + "rms_ffn", b.rmsFfn());
            MlpWeights.Gated g = b.mlp() instanceof MlpWeights.Moe m ? m.channels() : (MlpWeights.Gated) b.mlp();
            linear(all, p + "w1", g.gate());
            linear(all, p + "w3", g.up());
            linear(all, p + "w2", g.down());
            if (b.mlp() instanceof MlpWeights.Moe m) {
                linear(all, p + "router", m.router());
                for (int e = 0; e < m.experts().length; e++) {
                    all.update((p + "expert." + e + java.util.Arrays.toString(m.experts()[e])).getBytes(StandardCharsets.UTF_8));
                }
            }
        }
        tensor(all, "rms_final", w.rmsFinal());
        tensor(all, "classifier", w.classifier());
        return HexFormat.of().formatHex(all.digest()).substring(0, 16);
    }

    private static void linear(MessageDigest all, String name, LinearWeights w) {
        if (w instanceof LinearWeights.Dense d) {
            tensor(all, name + ".weight", d.weight());
            tensor(all, name + ".bias", d.bias());
        } else if (w instanceof LinearWeights.LowRank r) {
            tensor(all, name + ".a", r.a());
            tensor(all, name + ".b", r.b());
            tensor(all, name + ".bias", r.bias());
        } else if (w instanceof LinearWeights.Lora l) {
            linear(all, name, l.base());
            tensor(all, name + ".lora_a", l.a());
            tensor(all, name + ".lora_b", l.b());
            tensor(all, name + ".lora_scale", new float[] {l.scale()});
        } else if (w instanceof LinearWeights.Svd v) {
            tensor(all, name + ".u", v.u());
            tensor(all, name + ".s", v.s());
            tensor(all, name + ".vt", v.vt());
            tensor(all, name + ".bias", v.bias());
            tensor(all, name + ".threshold", new float[] {v.threshold()});
        }
    }

    /** The tensor's own digest, fed to the whole: its name, length and values (absent tensors count too). */
    private static void tensor(MessageDigest all, String name, float[] values) {
        MessageDigest one = sha256();
        ByteBuffer b = ByteBuffer.allocate(4 * 8192).order(ByteOrder.LITTLE_ENDIAN);
        if (values != null) {
            for (int i = 0; i < values.length; i += 8192) {
                b.clear();
                b.asFloatBuffer().put(values, i, Math.min(8192, values.length - i));
                one.update(b.array(), 0, 4 * Math.min(8192, values.length - i));
            }
        }
        all.update((name + ":" + (values == null ? "none" : values.length) + ":").getBytes(StandardCharsets.UTF_8));
        all.update(one.digest());
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
