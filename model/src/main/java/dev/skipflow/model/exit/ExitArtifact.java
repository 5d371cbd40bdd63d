package dev.skipflow.model.exit;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.model.ModelFormatException;
import dev.skipflow.model.decoder.LlamaModel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A trained exit classifier as a small versioned JSON file ({@code "format": "skipflow-exit"}): the linear SVM's
 * weights and bias, the decision threshold and probe policy chosen for a target agreement, and the fingerprint
 * of the model it was trained for (it is refused for any other).
 */
public record ExitArtifact(String modelFingerprint, String modelDescription, ExitClassifier classifier,
        double targetAgreement, String training) implements java.io.Serializable {

    public static final String FORMAT = "skipflow-exit";
    public static final int VERSION = 1;

    /** The classifier, refused for a model it was not trained for. */
    public ExitClassifier classifierFor(LlamaModel model, Path source) {
        if (!modelFingerprint.equals(model.fingerprint())) {
            throw new ModelFormatException(source, "exit classifier was trained for model " + modelDescription
                    + " (fingerprint " + modelFingerprint + "), not for this one (fingerprint " + model.fingerprint() + ")");
        }
        if (classifier.layers() != model.config().nLayers()) {
            throw new ModelFormatException(source, "exit classifier is for " + classifier.layers() + " blocks, the model has "
                    + model.config().nLayers());
        }
        return classifier;
    }

    public void save(Path file) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode o = json.createObjectNode();
        o.put("format", FORMAT);
        o.put("version", VERSION);
        ObjectNode m = o.putObject("model");
        m.put("fingerprint", modelFingerprint);
        m.put("description", modelDescription);
        m.put("layers", classifier.layers());
        ArrayNode names = o.putArray("features");
        names.add("topProb");
        names.add("gap");
        for (int l = 0; l + 1 < classifier.layers(); l++) {
            names.add("block" + l);
        }
        ObjectNode svm = o.putObject("svm");
        svm.set("weights", json.valueToTree(classifier.weights()));
        svm.put("bias", classifier.bias());
        o.put("threshold", classifier.threshold());
        ObjectNode probe = o.putObject("probe");
        probe.put("minLayer", classifier.minLayer());
        probe.put("every", classifier.every());
        o.put("exitedKeysValues", classifier.propagateKv() ? "propagate" : "mask");
        o.put("targetAgreement", targetAgreement);
        o.put("training", training);
        if (file.getParent() != null) {
            Files.createDirectories(file.getParent());
        }
        json.writerWithDefaultPrettyPrinter().writeValue(file.toFile(), o);
    }

    public static ExitArtifact load(Path file) {
        JsonNode o;
        try {
            o = new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new ModelFormatException(file, "not a readable exit-classifier artifact (JSON): " + e.getMessage(), e);
        }
        if (o == null || !FORMAT.equals(o.path("format").asText())) {
            throw new ModelFormatException(file, "not an exit-classifier artifact (\"format\" is not \"" + FORMAT
                    + "\"; train one with ./skipflow train-exit)");
        }
        if (o.path("version").asInt(-1) != VERSION) {
            throw new ModelFormatException(file, "exit-classifier artifact version " + o.path("version")
                    + "; this build reads " + VERSION);
        }
        try {
            JsonNode m = o.path("model");
            JsonNode svm = o.path("svm");
            JsonNode probe = o.path("probe");
            ExitClassifier c = new ExitClassifier(number(m, "layers").intValue(), floats(svm.path("weights")),
                    number(svm, "bias").floatValue(), number(o, "threshold").doubleValue(),
                    number(probe, "minLayer").intValue(), number(probe, "every").intValue(),
                    !"mask".equals(o.path("exitedKeysValues").asText("propagate")));
            if (!m.path("fingerprint").isTextual()) {
                throw new IllegalArgumentException("missing model.fingerprint");
            }
            return new ExitArtifact(m.path("fingerprint").asText(), m.path("description").asText(), c,
                    o.path("targetAgreement").asDouble(), o.path("training").asText());
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(file, "malformed exit-classifier artifact: " + e.getMessage(), e);
        }
    }

    private static JsonNode number(JsonNode parent, String field) {
        JsonNode n = parent.path(field);
        if (!n.isNumber()) {
            throw new IllegalArgumentException("missing or non-numeric \"" + field + "\"");
        }
        return n;
    }

    private static float[] floats(JsonNode a) {
        if (!a.isArray()) {
            throw new IllegalArgumentException("svm.weights is not an array of numbers");
        }
        float[] out = new float[a.size()];
        for (int i = 0; i < out.length; i++) {
            if (!a.get(i).isNumber()) {
                throw new IllegalArgumentException("svm.weights[" + i + "] is not a number");
            }
            out[i] = (float) a.get(i).asDouble();
        }
        return out;
    }
}
