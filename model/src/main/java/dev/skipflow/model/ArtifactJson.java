package dev.skipflow.model;

import dev.skipflow.model.io.ModelFormatException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The envelope every trained artifact shares (router, exit classifier): a JSON object with {@code format},
 * {@code version} and the {@code model} it was trained for, written pretty, read back with clear refusals.
 */
public final class ArtifactJson {

    public static final ObjectMapper JSON = new ObjectMapper();

    private ArtifactJson() {}

    /** A new artifact object: format, version, and model {fingerprint, description}; returns the object. */
    public static ObjectNode envelope(String format, int version, String fingerprint, String description) {
        ObjectNode o = JSON.createObjectNode();
        o.put("format", format);
        o.put("version", version);
        ObjectNode m = o.putObject("model");
        m.put("fingerprint", fingerprint);
        m.put("description", description);
        return o;
    }

    /** Writes {@code o} pretty-printed, creating the file's folder. */
    public static void write(ObjectNode o, Path file) throws IOException {
        if (file.getParent() != null) {
            Files.createDirectories(file.getParent());
        }
        JSON.writerWithDefaultPrettyPrinter().writeValue(file.toFile(), o);
    }

    /**
     * Parses {@code text} and checks its format and version.
     *
     * @param what the artifact's name in errors, e.g. "router artifact"
     * @param howToMake appended to a wrong-format refusal, e.g. "; train one with ./skipflow train-exit"
     */
    public static JsonNode read(String text, Path source, String format, int version, String what, String howToMake) {
        JsonNode o;
        try {
            o = JSON.readTree(text);
        } catch (IOException e) {
            throw new ModelFormatException(source, "not a readable " + what + " (JSON): " + e.getMessage(), e);
        }
        if (o == null || !format.equals(o.path("format").asText())) {
            throw new ModelFormatException(source, "not " + article(what) + " (\"format\" is not \"" + format + "\""
                    + howToMake + ")");
        }
        if (o.path("version").asInt(-1) != version) {
            throw new ModelFormatException(source, what + " version " + o.path("version") + "; this build reads " + version);
        }
        if (!o.path("model").path("fingerprint").isTextual()) {
            throw new ModelFormatException(source, "malformed " + what + ": missing model.fingerprint");
        }
        return o;
    }

    /** The file's text, or a refusal naming the artifact. */
    public static String readText(Path file, String what) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot read the " + what + ": " + e.getMessage(), e);
        }
    }

    /** A numeric field; IllegalArgumentException naming it when missing. */
    public static JsonNode number(JsonNode parent, String field) {
        JsonNode n = parent.path(field);
        if (!n.isNumber()) {
            throw new IllegalArgumentException("missing or non-numeric \"" + field + "\"");
        }
        return n;
    }

    /** An array of numbers as floats; IllegalArgumentException naming {@code name} otherwise. */
    public static float[] floats(JsonNode a, String name) {
        double[] d = doubles(a, name);
        float[] out = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            out[i] = (float) d[i];
        }
        return out;
    }

    /** An array of numbers; IllegalArgumentException naming {@code name} otherwise. */
    public static double[] doubles(JsonNode a, String name) {
        if (!a.isArray()) {
            throw new IllegalArgumentException(name + " is not an array of numbers");
        }
        double[] out = new double[a.size()];
        for (int i = 0; i < out.length; i++) {
            if (!a.get(i).isNumber()) {
                throw new IllegalArgumentException(name + "[" + i + "] is not a number");
            }
            out[i] = a.get(i).asDouble();
        }
        return out;
    }

    private static String article(String what) {
        return ("aeiou".indexOf(what.charAt(0)) >= 0 ? "an " : "a ") + what;
    }
}
