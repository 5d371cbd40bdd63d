package dev.skipflow.job.options;

/**
 * {@code --route}: where a router acts. picocli parses it (an unknown value gets picocli's usage error, listing these).
 */
public enum Route {
    /** The prefill only; decoding tokens run every block (FTP's own setting). */
    prompt,
    /** The prefill and every decoding token. */
    all;

    /** Whether decoding tokens are routed. */
    public boolean routesDecode() {
        return this == all;
    }
}
