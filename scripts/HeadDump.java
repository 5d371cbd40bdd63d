import dev.skipflow.model.io.ModelLoader;
import java.io.*;
import java.nio.file.*;
/** The final norm weight and LM head of a model (big-endian: vocab, dim, norm[dim], head[vocab*dim], eps), for exit-lens.py. */
public class HeadDump {
    public static void main(String[] a) throws Exception {
        var w = ModelLoader.load(Path.of(a[0]));
        try (DataOutputStream out = new DataOutputStream(new BufferedOutputStream(new FileOutputStream(a[1])))) {
            out.writeInt(w.spec().vocabSize()); out.writeInt(w.spec().dim());
            for (float f : w.rmsFinal()) out.writeFloat(f);
            for (float f : w.classifier()) out.writeFloat(f);
            out.writeFloat(w.spec().normEps());
        }
    }
}
