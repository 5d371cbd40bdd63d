package dev.skipflow.job.options;

import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.routing.RouterArtifact;
import dev.skipflow.model.routing.RouterSpec;
import dev.skipflow.model.routing.TokenRouter;
import dev.skipflow.model.tokenizer.Tokenizer;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Token routing for eval, bench and the job: a trained router artifact (--router) or a baseline. */
public final class RoutingOptions {

    @Option(names = "--baseline", paramLabel = "static|random|importance|shortgpt",
            description = "Route tokens with a baseline at --sparsity: FTP's static router (first + most recent tokens, "
                    + "uniform schedule), random tokens, the most-attended tokens (FTP's importance factor alone, "
                    + "untrained), or ShortGPT whole-block removal (lowest 1 - cos influence).")
    String baseline;

    double sparsity = 0.3;

    @Option(names = "--calibration", paramLabel = "FILE",
            description = "Text for ShortGPT's block influence and for --decode-sparsity's shares and thresholds (default: "
                    + "../shared/data/tinystories-train-sample.txt).")
    Path calibration;

    @Option(names = "--router", paramLabel = "PATH",
            description = "A trained router artifact (from train-router); --sparsity overrides its schedule when given explicitly.")
    Path router;

    @Option(names = "--route", paramLabel = "prompt|all",
            description = "Where the router acts: prompt = the prefill only, decoding tokens run every block (FTP's own "
                    + "setting); all = prefill and decode. Default: a --router artifact's own route, else all.")
    Route route;

    @Option(names = "--decode-sparsity", paramLabel = "D",
            description = "With --route all: decoding tokens skip this share of their token-blocks on average. For "
                    + "--router it is spread over blocks by 1/influence^2 (ShortGPT's block influence) and the decode "
                    + "thresholds are calibrated anew, both on --calibration text; for --baseline random each decoding "
                    + "token skips each block by chance. Default: the router's own.")
    Double decodeSparsity;

    /** Whether decoding tokens are routed too (--route all; without --route, the artifact's default). */
    public boolean routeDecode() {
        if (route == null) {
            return router == null || RouterArtifact.load(router).routesDecode();
        }
        return route.routesDecode();
    }

    /** Routes with a trained router artifact, as {@code --router PATH} would (a default the caller chose). */
    public void useRouter(Path artifact) {
        this.router = artifact;
    }

    public boolean enabled() {
        return baseline != null || router != null;
    }

    /** The serializable description, or null when no router was asked for. */
    public RouterSpec spec() {
        if (decodeSparsity != null && !routeDecode()) {
            throw new IllegalArgumentException("--decode-sparsity needs --route all: with --route prompt decoding tokens "
                    + "run every block");
        }
        String text = calibration == null ? null : calibration.toAbsolutePath().toString();
        RouterSpec spec;
        if (router != null) {
            if (baseline != null) {
                throw new IllegalArgumentException("give either --router or --baseline, not both");
            }
            spec = RouterSpec.learned(router, sparsityGiven ? sparsity : null).withRouteDecode(routeDecode());
        } else if (baseline != null) {
            spec = new RouterSpec(baseline, sparsity, text).withRouteDecode(routeDecode());
        } else {
            if (decodeSparsity != null) {
                throw new IllegalArgumentException("--decode-sparsity needs --router or --baseline random");
            }
            return null;
        }
        return decodeSparsity == null ? spec : spec.withDecodeSparsity(decodeSparsity, text);
    }

    /** The router, or null when none was asked for; a trained one is refused for another model. */
    public TokenRouter router(LlamaModel model, Tokenizer tokenizer) {
        RouterSpec spec = spec();
        return spec == null ? null : spec.build(model, tokenizer);
    }

    private boolean sparsityGiven;

    @Option(names = "--sparsity", description = "Token-block sparsity for --baseline (default: 0.3), or to override a --router's schedule.")
    void sparsity(double s) {
        this.sparsity = s;
        this.sparsityGiven = true;
    }
}
