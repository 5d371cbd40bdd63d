package dev.skipflow.model.weights;

/**
 * Host-side weights of a block's MLP: SwiGLU {@code down(silu(gate x) * up x)} over all its channels, or a
 * mixture of experts whose router picks, per token, one expert: a subset of those channels.
 */
public sealed interface MlpWeights {

    /** Intermediate channels. */
    int hidden();

    long parameters();

    /** SwiGLU: gate and up {@code [hidden, dim]}, down {@code [dim, hidden]}. */
    record Gated(LinearWeights gate, LinearWeights up, LinearWeights down) implements MlpWeights {
        public Gated {
            if (gate.out() != up.out() || gate.in() != up.in() || down.in() != gate.out() || down.out() != gate.in()) {
                throw new IllegalArgumentException("MLP shapes disagree: gate [" + gate.out() + ", " + gate.in() + "], up ["
                        + up.out() + ", " + up.in() + "], down [" + down.out() + ", " + down.in() + "]");
            }
        }

        @Override
        public int hidden() {
            return gate.out();
        }

        @Override
        public long parameters() {
            return gate.parameters() + up.parameters() + down.parameters();
        }
    }

    /**
     * ToMoE's form: the dense SwiGLU weights (channels no expert uses already removed), a router
     * {@code [experts, dim]} without bias, and each expert's channel indices into them (increasing; experts may overlap).
     */
    record Moe(Gated channels, LinearWeights.Dense router, int[][] experts) implements MlpWeights {
        public Moe {
            if (router.out() != experts.length || router.in() != channels.gate().in() || router.bias() != null) {
                throw new IllegalArgumentException("MoE router must be [" + experts.length + ", " + channels.gate().in()
                        + "] without bias, got [" + router.out() + ", " + router.in() + "]");
            }
            for (int e = 0; e < experts.length; e++) {
                int last = -1;
                for (int c : experts[e]) {
                    if (c <= last || c >= channels.hidden()) {
                        throw new IllegalArgumentException("expert " + e + "'s channels must be increasing in 0.."
                                + (channels.hidden() - 1));
                    }
                    last = c;
                }
                if (experts[e].length == 0) {
                    throw new IllegalArgumentException("expert " + e + " has no channel");
                }
            }
        }

        @Override
        public int hidden() {
            return channels.hidden();
        }

        @Override
        public long parameters() {
            return channels.parameters() + router.parameters();
        }
    }
}
