import ai.djl.Device;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.eval.PerplexityEvaluator;
import dev.skipflow.model.eval.ServingEvaluator;
import dev.skipflow.model.io.ModelLoader;
import dev.skipflow.model.routing.*;
import dev.skipflow.model.tokenizer.Tokenizers;
import java.nio.file.Path;
import java.util.*;

/**
 * How decode shares are spread over blocks, side by side in one run: each block's share proportional to
 * influence^-power (power 0 = the same share in every block), the decode cuts calibrated as served on the first 32
 * calibration documents, scored under the serving protocol with --route all (for decode-shares.sh).
 * Args: model tokenizer router.json calibration.txt eval.txt promptShare decodeShare power...
 */
public class DecodeShares {
    public static void main(String[] a) throws Exception {
        var w = ModelLoader.load(Path.of(a[0]));
        var tok = Tokenizers.load(Path.of(a[1]), w.spec().vocabSize());
        double prompt = Double.parseDouble(a[5]), decode = Double.parseDouble(a[6]);
        try (LlamaModel model = new LlamaModel(w, Device.cpu())) {
            List<int[]> calibration = Documents.read(Path.of(a[3]), tok, 256, 32); // as RouterSpec calibrates
            List<int[]> docs = Documents.read(Path.of(a[4]), tok, 256, 0);
            double[] influence = BlockInfluence.measure(model, calibration);
            System.out.println("influence per block: " + Arrays.stream(influence)
                    .mapToObj(x -> String.format(Locale.ROOT, "%.3f", x)).toList() + "\n");
            RouterArtifact base = RouterArtifact.load(Path.of(a[2]))
                    .withSchedule(SparsitySchedule.uniform(prompt, w.spec().nLayers()), "prompt share");
            System.out.printf(Locale.ROOT, "| decode shares (prompt %.0f%%, decode %.0f%%) | agreement | greedy@32 | "
                    + "perplexity | token-blocks skipped | FLOPs saved |%n| --- | ---: | ---: | ---: | ---: | ---: |%n",
                    100 * prompt, 100 * decode);
            for (int i = 7; i < a.length; i++) {
                double power = Double.parseDouble(a[i]);
                SparsitySchedule shares = DecodeCalibration.shares(influence, decode, power);
                RouterArtifact r = base.withDecodeSchedule(shares, "shares");
                r = r.withDecodeThresholds(DecodeCalibration.thresholds(model, r, calibration), "cuts");
                var v = new ServingEvaluator(model, model, true).compare(docs,
                        List.of(new PerplexityEvaluator.Variant("shares", new LearnedRouter(r), null)), x -> { })
                        .variants().get(0);
                var s = v.result().flops().savings();
                System.out.printf(Locale.ROOT, "| %s %s | %.2f%% | %.2f%% | %.4f | %.1f%% | %.1f%% |%n",
                        power == 0 ? "uniform" : String.format(Locale.ROOT, "1/influence^%.0f", power), shares,
                        100 * v.agreement(), 100 * v.greedyAgreement(), v.result().perplexity(),
                        100.0 * s.tokenBlocksSkipped() / s.tokenBlocksTotal(), 100 * s.savedFraction());
            }
        }
    }
}
