package dev.skipflow.model.routing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.model.ModelFormatException;
import dev.skipflow.model.decoder.LlamaModel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A trained router, as a small versioned JSON file: the MLP's weights, the per-block schedule, and the
 * fingerprint of the model it was trained for (it is refused for any other).
 */
public record RouterArtifact(String modelFingerprint, String modelDescription, SparsitySchedule schedule,
        float[] w1, float[] b1, float[] w2, float b2, String training) {

    public static final String FORMAT = "skipflow-router";
    public static final int VERSION = 1;
    public static final int HIDDEN = 64;

    public RouterArtifact {
        if (w1.length != RouterFeatures.COUNT * HIDDEN || b1.length != HIDDEN || w2.length != HIDDEN) {
            throw new IllegalArgumentException("router weights have the wrong shapes");
        }
    }

    /** The same router with another schedule (after the schedule search), noting how it was found. */
    public RouterArtifact withSchedule(SparsitySchedule newSchedule, String note) {
        return new RouterArtifact(modelFingerprint, modelDescription, newSchedule, w1, b1, w2, b2, training + "; " + note);
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
        if (!modelFingerprint.equals(model.fingerprint())) {
            throw new ModelFormatException(source, "router was trained for model " + modelDescription + " (fingerprint "
                    + modelFingerprint + "), not for this one (fingerprint " + model.fingerprint() + ")");
        }
        if (schedule.perLayer().length != model.config().nLayers()) {
            throw new ModelFormatException(source, "router schedule has " + schedule.perLayer().length
                    + " blocks, the model has " + model.config().nLayers());
        }
        return new LearnedRouter(this);
    }

    public void save(Path file) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode o = json.createObjectNode();
        o.put("format", FORMAT);
        o.put("version", VERSION);
        ObjectNode m = o.putObject("model");
        m.put("fingerprint", modelFingerprint);
        m.put("description", modelDescription);
        o.set("schedule", json.valueToTree(schedule.perLayer()));
        ObjectNode mlp = o.putObject("mlp");
        mlp.put("inputs", RouterFeatures.COUNT);
        mlp.put("hidden", HIDDEN);
        mlp.set("w1", json.valueToTree(w1));
        mlp.set("b1", json.valueToTree(b1));
        mlp.set("w2", json.valueToTree(w2));
        mlp.put("b2", b2);
        o.put("training", training);
        if (file.getParent() != null) {
            Files.createDirectories(file.getParent());
        }
        json.writerWithDefaultPrettyPrinter().writeValue(file.toFile(), o);
    }

    public static RouterArtifact load(Path file) {
        String text;
        try {
            text = Files.readString(file);
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot read the router artifact: " + e.getMessage(), e);
        }
        return parse(text, file);
    }

    /** Parses an artifact's JSON text; {@code source} names it in errors. */
    public static RouterArtifact parse(String text, Path source) {
        JsonNode o;
        try {
            o = new ObjectMapper().readTree(text);
        } catch (IOException e) {
            throw new ModelFormatException(source, "not a readable router artifact (JSON): " + e.getMessage(), e);
        }
        if (o == null || !FORMAT.equals(o.path("format").asText())) {
            throw new ModelFormatException(source, "not a router artifact (\"format\" is not \"" + FORMAT + "\")");
        }
        if (o.path("version").asInt(-1) != VERSION) {
            throw new ModelFormatException(source, "router artifact version " + o.path("version") + "; this build reads " + VERSION);
        }
        try {
            JsonNode mlp = o.path("mlp");
            return new RouterArtifact(o.path("model").path("fingerprint").asText(), o.path("model").path("description").asText(),
                    new SparsitySchedule(doubles(o.path("schedule"))), floats(mlp.path("w1")), floats(mlp.path("b1")),
                    floats(mlp.path("w2")), (float) mlp.path("b2").asDouble(), o.path("training").asText());
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(source, "malformed router artifact: " + e.getMessage(), e);
        }
    }

    private static float[] floats(JsonNode a) {
        if (!a.isArray()) {
            throw new IllegalArgumentException("expected an array of numbers");
        }
        float[] out = new float[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) a.get(i).asDouble();
        }
        return out;
    }

    private static double[] doubles(JsonNode a) {
        if (!a.isArray() || a.isEmpty()) {
            throw new IllegalArgumentException("expected a non-empty schedule");
        }
        double[] out = new double[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).asDouble();
        }
        return out;
    }
}
