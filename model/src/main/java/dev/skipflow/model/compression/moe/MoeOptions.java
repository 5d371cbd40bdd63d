package dev.skipflow.model.compression.moe;

import java.util.Locale;

/**
 * Settings of a dense-to-MoE conversion (ToMoE, arXiv 2501.15316), the published values as defaults.
 *
 * @param activeRatio share of each MLP's parameters a token runs, in (0, 1): every expert keeps
 *     {@code round(activeRatio * hidden)} channels
 * @param experts experts per MLP (at least 2)
 * @param steps hypernetwork/router training steps
 * @param samples calibration documents drawn to train on
 * @param sampleLength tokens per calibration document
 * @param docsPerStep documents whose losses are averaged per step
 * @param learningRate AdamW's (1e-3)
 * @param weightDecay AdamW's (0.05)
 * @param temperature of the hard Gumbel-softmax router and the hard Gumbel-sigmoid masks (0.4)
 * @param offset added to the mask logits before the Gumbel-sigmoid, so training starts from every channel on (3)
 * @param lambda weight of the active-parameter term {@code log(max(r, p) / min(r, p))} (16)
 * @param klWeight weight of KL(dense teacher || student) on the logits (2)
 * @param coverageWeight weight of the term pushing the union of the experts to cover the channels (3)
 * @param balanceWeight weight of the Switch load-balance term {@code E * sum_e f_e P_e} (1)
 * @param shared share of each expert's channels common to every expert, in [0, 1): a shared expert chosen by
 *     LLM-Pruner's element1 importance on the calibration samples, the rest learned as ToMoE learns it (0, ToMoE's
 *     own: every channel learned)
 */
public record MoeOptions(double activeRatio, int experts, int steps, int samples, int sampleLength, int docsPerStep,
        float learningRate, float weightDecay, float temperature, float offset, float lambda, float klWeight,
        float coverageWeight, float balanceWeight, double shared, Baseline baseline, long seed) {

    /** ToMoE, or the static MLP channel pruning it is compared with. */
    public enum Baseline {
        NONE, STATIC;

        public static Baseline parse(String s) {
            if (s == null || s.isEmpty() || s.equalsIgnoreCase("none") || s.equalsIgnoreCase("tomoe")) {
                return NONE;
            }
            if (s.equalsIgnoreCase("static")) {
                return STATIC;
            }
            throw new IllegalArgumentException("unknown --baseline '" + s + "': use static (MLP channel pruning with "
                    + "LLM-Pruner's element1 importance, no recovery) or leave it out for ToMoE");
        }

        public String label() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    public MoeOptions {
        if (!(activeRatio > 0 && activeRatio < 1)) {
            throw new IllegalArgumentException("--active-ratio must be in (0, 1) (the share of each MLP's parameters a "
                    + "token runs), got " + activeRatio);
        }
        if (baseline == Baseline.NONE && experts < 2) {
            throw new IllegalArgumentException("--experts must be at least 2 (a router needs a choice), got " + experts);
        }
        if (steps < 0 || samples < 1 || sampleLength < 2 || docsPerStep < 1) {
            throw new IllegalArgumentException("training needs steps >= 0, at least 1 sample of at least 2 tokens and "
                    + "1 document per step; got " + steps + " steps, " + samples + " samples of " + sampleLength
                    + " tokens, " + docsPerStep + " per step");
        }
        if (!(learningRate > 0) || !(weightDecay >= 0) || !(temperature > 0) || !(lambda >= 0) || !(klWeight > 0)
                || !(coverageWeight >= 0) || !(balanceWeight >= 0) || !Float.isFinite(offset)) {
            throw new IllegalArgumentException("learning rate, temperature and KL weight must be > 0, the other weights "
                    + ">= 0 and finite");
        }
        if (!(shared >= 0 && shared < 1)) {
            throw new IllegalArgumentException("--shared must be in [0, 1) (the share of each expert's channels common "
                    + "to all experts), got " + shared);
        }
    }

    /** The published settings for {@code activeRatio} and {@code experts}, with the calibration given. */
    public static MoeOptions defaults(double activeRatio, int experts, int steps, int samples, int sampleLength,
            int docsPerStep, Baseline baseline, long seed) {
        return new MoeOptions(activeRatio, experts, steps, samples, sampleLength, docsPerStep, 1e-3f, 0.05f, 0.4f, 3f,
                16f, 2f, 3f, 1f, 0, baseline, seed);
    }

    /** The same settings with {@code shared} of each expert's channels common to all. */
    public MoeOptions withShared(double share) {
        return new MoeOptions(activeRatio, experts, steps, samples, sampleLength, docsPerStep, learningRate, weightDecay,
                temperature, offset, lambda, klWeight, coverageWeight, balanceWeight, share, baseline, seed);
    }

    /** Channels of {@code kept} (one expert's) that every expert shares: {@code round(shared * kept)}. */
    public int sharedChannels(int kept) {
        return (int) Math.round(shared * kept);
    }

    /** Channels each expert keeps of {@code hidden}: {@code round(activeRatio * hidden)}, refused when that is 0. */
    public int keptChannels(int layer, int hidden) {
        int k = (int) Math.round(activeRatio * hidden);
        if (k < 1) {
            throw new IllegalArgumentException("block " + layer + ": --active-ratio " + activeRatio + " keeps 0 of its "
                    + hidden + " MLP channels, an empty expert set; use at least " + (0.5 / hidden));
        }
        return Math.min(k, hidden);
    }
}
