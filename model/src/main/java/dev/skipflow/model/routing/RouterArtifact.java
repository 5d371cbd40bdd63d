package dev.skipflow.model.routing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.model.ArtifactJson;
import dev.skipflow.model.io.ModelFormatException;
import dev.skipflow.model.decoder.LlamaModel;
import java.io.IOException;
import java.nio.file.Path;

/**
 * A trained router, as a small versioned JSON file: the MLP's weights, the per-block schedule, where it acts
 * by default ({@code route}: "all" = prefill and decode, "prompt" = prefill only; older files mean "all"), the
 * share of decoding tokens each block skips when it differs from the prefill's ({@code decodeSchedule}: a decoding
 * token's skip costs its own prediction, a prompt token's only what later tokens read of it, so a router may skip
 * less in decode), how a prefill's decisions are made ({@code decisions}: "per-block" = every block ranks the
 * tokens by the importance the block before it measured, FTP's router; "per-token" = block 0 runs every token and
 * each token's rank is fixed from what it measured, so a token a block skips stays skipped in later blocks of at
 * most the same share; older files mean "per-block"), and the fingerprint of the model it was trained for (it is
 * refused for any other).
 */
public record RouterArtifact(String modelFingerprint, String modelDescription, SparsitySchedule schedule,
        float[] w1, float[] b1, float[] w2, float b2, String training, double[] decodeThresholds, String route,
        SparsitySchedule decodeSchedule, String decisions) {

    public static final String PER_BLOCK = "per-block";
    public static final String PER_TOKEN = "per-token";

    public static final String FORMAT = "skipflow-router";
    public static final int VERSION = 1;
    public static final int HIDDEN = 64;

    public RouterArtifact {
        if (w1.length != RouterFeatures.COUNT * HIDDEN || b1.length != HIDDEN || w2.length != HIDDEN) {
            throw new IllegalArgumentException("router weights have the wrong shapes");
        }
        int blocks = schedule.perLayer().length;
        if (decodeThresholds != null && decodeThresholds.length != blocks
                && decodeThresholds.length != blocks * DecodeCalibration.buckets()) {
            throw new IllegalArgumentException("decode thresholds must have one value per block, or one per block for "
                    + "each of the " + DecodeCalibration.buckets() + " position buckets (" + blocks + " or "
                    + blocks * DecodeCalibration.buckets() + "), got " + decodeThresholds.length);
        }
        if (!"all".equals(route) && !"prompt".equals(route)) {
            throw new IllegalArgumentException("route must be all or prompt, got " + route);
        }
        if (decodeSchedule != null && decodeSchedule.perLayer().length != schedule.perLayer().length) {
            throw new IllegalArgumentException("the decode schedule must have one value per block");
        }
        if (!PER_BLOCK.equals(decisions) && !PER_TOKEN.equals(decisions)) {
            throw new IllegalArgumentException("decisions must be per-block or per-token, got " + decisions);
        }
    }

    public RouterArtifact(String modelFingerprint, String modelDescription, SparsitySchedule schedule, float[] w1,
            float[] b1, float[] w2, float b2, String training, double[] decodeThresholds, String route,
            SparsitySchedule decodeSchedule) {
        this(modelFingerprint, modelDescription, schedule, w1, b1, w2, b2, training, decodeThresholds, route,
                decodeSchedule, PER_BLOCK);
    }

    /** Whether a prefill ranks each token once, from block 0's attention ({@code decisions} "per-token"). */
    public boolean perToken() {
        return decisions.equals(PER_TOKEN);
    }

    /** The same router making its prefill decisions per token or per block ({@link #PER_TOKEN}, {@link #PER_BLOCK}). */
    public RouterArtifact withDecisions(String d) {
        return new RouterArtifact(modelFingerprint, modelDescription, schedule, w1, b1, w2, b2, training,
                decodeThresholds, route, decodeSchedule, d);
    }

    public RouterArtifact(String modelFingerprint, String modelDescription, SparsitySchedule schedule, float[] w1,
            float[] b1, float[] w2, float b2, String training, double[] decodeThresholds, String route) {
        this(modelFingerprint, modelDescription, schedule, w1, b1, w2, b2, training, decodeThresholds, route, null);
    }

    /** The share of decoding tokens each block skips: {@code decodeSchedule}, else the prefill's schedule. */
    public SparsitySchedule decodeShares() {
        return decodeSchedule != null ? decodeSchedule : schedule;
    }

    /**
     * The same router skipping {@code shares} of decoding tokens per block; decode thresholds belong to the old
     * shares and are dropped (calibrate new ones with {@link DecodeCalibration}).
     */
    public RouterArtifact withDecodeSchedule(SparsitySchedule shares, String note) {
        return new RouterArtifact(modelFingerprint, modelDescription, schedule, w1, b1, w2, b2, training + "; " + note,
                null, route, shares, decisions);
    }

    public RouterArtifact(String modelFingerprint, String modelDescription, SparsitySchedule schedule, float[] w1,
            float[] b1, float[] w2, float b2, String training, double[] decodeThresholds) {
        this(modelFingerprint, modelDescription, schedule, w1, b1, w2, b2, training, decodeThresholds, "all");
    }

    /** Whether decoding tokens are routed by default ({@code route} "all"). */
    public boolean routesDecode() {
        return route.equals("all");
    }

    /** The same router, acting by default where {@code r} says ("all" or "prompt"). */
    public RouterArtifact withRoute(String r) {
        return new RouterArtifact(modelFingerprint, modelDescription, schedule, w1, b1, w2, b2, training,
                decodeThresholds, r, decodeSchedule, decisions);
    }

    /** Without decode thresholds: a decoding token skips a block with nonzero sparsity when its score is below 0. */
    public RouterArtifact(String modelFingerprint, String modelDescription, SparsitySchedule schedule, float[] w1,
            float[] b1, float[] w2, float b2, String training) {
        this(modelFingerprint, modelDescription, schedule, w1, b1, w2, b2, training, null);
    }

    /**
     * The same router with per-block score thresholds for decode, calibrated for this schedule
     * ({@link DecodeCalibration}).
     */
    public RouterArtifact withDecodeThresholds(double[] thresholds, String note) {
        return new RouterArtifact(modelFingerprint, modelDescription, schedule, w1, b1, w2, b2, training + "; " + note,
                thresholds, route, decodeSchedule, decisions);
    }

    /**
     * The same router with another schedule (after the schedule search), noting how it was found. Decode
     * thresholds were calibrated behind the old schedule's prompts and are dropped; a decode schedule of its own is
     * kept (its shape comes from the blocks' influence, not from the prefill's).
     */
    public RouterArtifact withSchedule(SparsitySchedule newSchedule, String note) {
        return new RouterArtifact(modelFingerprint, modelDescription, perToken() ? newSchedule.firstBlockDense()
                : newSchedule, w1, b1, w2, b2, training + "; " + note, null, route, decodeSchedule, decisions);
    }

    /** The MLP's score (keep logit) for each of {@code n} feature rows. */
    public float[] score(float[] features, int n) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            float s = b2;
            for (int h = 0; h < HIDDEN; h++) {
                float a = b1[h];
                for (int k = 0; k < RouterFeatures.COUNT; k++) {
                    a += features[i * RouterFeatures.COUNT + k] * w1[k * HIDDEN + h];
                }
                s += Math.max(0f, a) * w2[h];
            }
            out[i] = s;
        }
        return out;
    }

    /** Refuses the artifact for a model it was not trained for. */
    public LearnedRouter routerFor(LlamaModel model, Path source) {
        requireModel(model.fingerprint(), model.spec().nLayers(), source);
        return new LearnedRouter(this);
    }

    /**
     * Refuses the artifact for any model but the one with this fingerprint and block count; for checks before
     * the model is on a device (e.g. when a SQL job is planned), with the fingerprint from the host weights.
     */
    public void requireModel(String fingerprint, int layers, Path source) {
        if (!modelFingerprint.equals(fingerprint)) {
            throw new ModelFormatException(source, "router was trained for model " + modelDescription + " (fingerprint "
                    + modelFingerprint + "), not for this one (fingerprint " + fingerprint + ")");
        }
        if (schedule.perLayer().length != layers) {
            throw new ModelFormatException(source, "router schedule has " + schedule.perLayer().length
                    + " blocks, the model has " + layers);
        }
    }

    public void save(Path file) throws IOException {
        ObjectNode o = ArtifactJson.envelope(FORMAT, VERSION, modelFingerprint, modelDescription);
        o.set("schedule", ArtifactJson.JSON.valueToTree(schedule.perLayer()));
        ObjectNode mlp = o.putObject("mlp");
        mlp.put("inputs", RouterFeatures.COUNT);
        mlp.put("hidden", HIDDEN);
        mlp.set("w1", ArtifactJson.JSON.valueToTree(w1));
        mlp.set("b1", ArtifactJson.JSON.valueToTree(b1));
        mlp.set("w2", ArtifactJson.JSON.valueToTree(w2));
        mlp.put("b2", b2);
        o.put("training", training);
        o.put("route", route);
        if (perToken()) {
            o.put("decisions", decisions);
        }
        if (decodeThresholds != null) {
            o.set("decodeThresholds", ArtifactJson.JSON.valueToTree(decodeThresholds));
        }
        if (decodeSchedule != null) {
            o.set("decodeSchedule", ArtifactJson.JSON.valueToTree(decodeSchedule.perLayer()));
        }
        ArtifactJson.write(o, file);
    }

    public static RouterArtifact load(Path file) {
        return parse(ArtifactJson.readText(file, "router artifact"), file);
    }

    /** Parses an artifact's JSON text; {@code source} names it in errors. */
    public static RouterArtifact parse(String text, Path source) {
        JsonNode o = ArtifactJson.read(text, source, FORMAT, VERSION, "router artifact",
                "; train one with ./skipflow train-router");
        try {
            JsonNode mlp = o.path("mlp");
            double[] schedule = ArtifactJson.doubles(o.path("schedule"), "schedule");
            if (schedule.length == 0) {
                throw new IllegalArgumentException("the schedule is empty");
            }
            return new RouterArtifact(o.path("model").path("fingerprint").asText(), o.path("model").path("description").asText(),
                    new SparsitySchedule(schedule), ArtifactJson.floats(mlp.path("w1"), "mlp.w1"),
                    ArtifactJson.floats(mlp.path("b1"), "mlp.b1"), ArtifactJson.floats(mlp.path("w2"), "mlp.w2"),
                    ArtifactJson.number(mlp, "b2").floatValue(), o.path("training").asText(),
                    o.has("decodeThresholds") ? ArtifactJson.doubles(o.path("decodeThresholds"), "decodeThresholds") : null,
                    o.path("route").asText("all"), o.has("decodeSchedule")
                            ? new SparsitySchedule(ArtifactJson.doubles(o.path("decodeSchedule"), "decodeSchedule")) : null,
                    o.path("decisions").asText(PER_BLOCK));
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(source, "malformed router artifact: " + e.getMessage(), e);
        }
    }
}
