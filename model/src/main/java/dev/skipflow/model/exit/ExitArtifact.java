package dev.skipflow.model.exit;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.model.ArtifactJson;
import dev.skipflow.model.io.ModelFormatException;
import dev.skipflow.model.decoder.LlamaModel;
import java.io.IOException;
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
        requireModel(model.fingerprint(), model.spec().nLayers(), source);
        return classifier;
    }

    /**
     * Refuses the artifact for any model but the one with this fingerprint and block count; for checks before
     * the model is on a device (e.g. when a SQL job is planned), with the fingerprint from the host weights.
     */
    public void requireModel(String fingerprint, int layers, Path source) {
        if (!modelFingerprint.equals(fingerprint)) {
            throw new ModelFormatException(source, "exit classifier was trained for model " + modelDescription
                    + " (fingerprint " + modelFingerprint + "), not for this one (fingerprint " + fingerprint + ")");
        }
        if (classifier.layers() != layers) {
            throw new ModelFormatException(source, "exit classifier is for " + classifier.layers() + " blocks, the model has "
                    + layers);
        }
    }

    public void save(Path file) throws IOException {
        ObjectNode o = ArtifactJson.envelope(FORMAT, VERSION, modelFingerprint, modelDescription);
        ((ObjectNode) o.get("model")).put("layers", classifier.layers());
        ArrayNode names = o.putArray("features");
        names.add("topProb");
        names.add("gap");
        names.add("streak2");
        names.add("streak3");
        names.add("saturation");
        for (int l = 0; l + 1 < classifier.layers(); l++) {
            names.add("block" + l);
        }
        ObjectNode svm = o.putObject("svm");
        svm.set("weights", ArtifactJson.JSON.valueToTree(classifier.weights()));
        svm.put("bias", classifier.bias());
        o.put("threshold", classifier.threshold());
        ObjectNode probe = o.putObject("probe");
        probe.put("minLayer", classifier.minLayer());
        probe.put("every", classifier.every());
        probe.put("candidates", classifier.candidates());
        o.put("exitedKeysValues", classifier.propagateKv() ? "propagate" : "mask");
        o.put("targetAgreement", targetAgreement);
        o.put("training", training);
        ArtifactJson.write(o, file);
    }

    public static ExitArtifact load(Path file) {
        String what = "exit-classifier artifact";
        JsonNode o = ArtifactJson.read(ArtifactJson.readText(file, what), file, FORMAT, VERSION, what,
                "; train one with ./skipflow train-exit");
        try {
            JsonNode m = o.path("model");
            JsonNode svm = o.path("svm");
            JsonNode probe = o.path("probe");
            ExitClassifier c = new ExitClassifier(ArtifactJson.number(m, "layers").intValue(),
                    ArtifactJson.floats(svm.path("weights"), "svm.weights"),
                    ArtifactJson.number(svm, "bias").floatValue(), ArtifactJson.number(o, "threshold").doubleValue(),
                    ArtifactJson.number(probe, "minLayer").intValue(), ArtifactJson.number(probe, "every").intValue(),
                    !"mask".equals(o.path("exitedKeysValues").asText("propagate")), probe.path("candidates").asInt(0));
            return new ExitArtifact(m.path("fingerprint").asText(), m.path("description").asText(), c,
                    o.path("targetAgreement").asDouble(), o.path("training").asText());
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(file, "malformed " + what + ": " + e.getMessage(), e);
        }
    }
}
