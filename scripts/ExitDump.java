import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.decoder.*;
import dev.skipflow.model.exit.ExitFeatures;
import dev.skipflow.model.io.ModelLoader;
import dev.skipflow.model.tokenizer.Tokenizers;
import java.io.*;
import java.nio.file.*;
import java.util.List;


/** Per calibration token and block: the probe's top-1, top prob and gap, and the hidden state (big-endian, for exit-headroom.py). */
public class ExitDump {
    public static void main(String[] a) throws Exception {
        var w = ModelLoader.load(Path.of(a[0]));
        var tok = Tokenizers.load(Path.of(a[1]), w.spec().vocabSize());
        List<int[]> docs = Documents.read(Path.of(a[2]), tok, 256, Integer.parseInt(a[3]));
        int layers = w.spec().nLayers(), v = w.spec().vocabSize(), dim = w.spec().dim();
        try (LlamaModel model = new LlamaModel(w, Device.cpu());
             DataOutputStream out = new DataOutputStream(new BufferedOutputStream(new FileOutputStream(a[4])))) {
            out.writeInt(layers); out.writeInt(dim);
            for (int[] doc : docs) {
                int n = doc.length;
                float[][] logits = new float[layers][];
                float[][] hid = new float[layers][];
                try (KvCache cache = new KvCache(model, 1, n); NDManager step = model.newStepManager()) {
                    Forward.run(model, cache, step, true, Forward.prompt(0, 0, doc, null, null, false, n, n),
                        Forward.Plan.hooked(new BlockHook() {
                            @Override public NDArray after(int l, NDArray x, NDArray y, AttentionStats at) {
                                logits[l] = model.logits(y).toFloatArray();
                                hid[l] = y.toFloatArray();
                                return y;
                            }
                        }));
                }
                out.writeInt(n);
                for (int p = 0; p < n; p++) {
                    for (int l = 0; l < layers; l++) {
                        ExitFeatures f = ExitFeatures.of(logits[l], p * v, v);
                        out.writeInt(f.top1()); out.writeFloat(f.topProb()); out.writeFloat(f.gap());
                        for (int d = 0; d < dim; d++) out.writeFloat(hid[l][p * dim + d]);
                    }
                }
            }
        }
    }
}
