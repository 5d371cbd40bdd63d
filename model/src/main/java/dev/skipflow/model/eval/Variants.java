package dev.skipflow.model.eval;

import dev.skipflow.model.exit.ExitClassifier;
import dev.skipflow.model.routing.TokenRouter;
import java.util.ArrayList;
import java.util.List;

/** The adaptive configurations eval and report compare with dense, named as their tables show them. */
public final class Variants {

    private Variants() {}

    /** A router, an exit classifier, or both (the other null): "ROUTER", "exit EXIT" or "ROUTER + exit EXIT". */
    public static PerplexityEvaluator.Variant of(TokenRouter router, ExitClassifier exit) {
        String name = router == null ? "exit " + exit.describe()
                : exit == null ? router.describe() : router.describe() + " + exit " + exit.describe();
        return new PerplexityEvaluator.Variant(name, router, exit);
    }

    /** Each exit classifier alone, then, with a router, the router alone and with each exit classifier. */
    public static List<PerplexityEvaluator.Variant> exitsThenRouter(TokenRouter router, List<ExitClassifier> exits) {
        List<PerplexityEvaluator.Variant> variants = new ArrayList<>();
        for (ExitClassifier exit : exits) {
            variants.add(of(null, exit));
        }
        if (router != null) {
            variants.add(of(router, null));
            for (ExitClassifier exit : exits) {
                variants.add(of(router, exit));
            }
        }
        return variants;
    }
}
