package dev.skipflow.model;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Finds the model and tokenizer a command should use: an explicit path, then the environment
 * ({@code SKIPFLOW_MODEL} / {@code SKIPFLOW_TOKENIZER}), then {@code models/stories260K/} in the working
 * directory, then {@code ../shared/models/stories260K/}.
 */
public final class ModelPaths {

    public static final String MODEL_ENV = "SKIPFLOW_MODEL";
    public static final String TOKENIZER_ENV = "SKIPFLOW_TOKENIZER";
    public static final String HOW_TO_GET = "Get stories260K.bin and tok512.bin from karpathy/tinyllamas "
            + "(folder stories260K) into models/stories260K/, or pass --model/--tokenizer, or set "
            + MODEL_ENV + "/" + TOKENIZER_ENV + ".";

    private static final String DEFAULT_MODEL = "stories260K/stories260K.bin";
    private static final String DEFAULT_TOKENIZER = "stories260K/tok512.bin";

    private ModelPaths() {}

    /** The model to use; explicit may be null. */
    public static Path model(Path explicit) {
        return resolve(explicit, System.getenv(MODEL_ENV), DEFAULT_MODEL, "model");
    }

    /**
     * The tokenizer to use; when none is given or configured, one that sits beside the model
     * ({@code tokenizer.json} in an HF folder, {@code tok512.bin}/{@code tokenizer.bin} next to a .bin or inside a
     * compressed checkpoint folder, which {@code prune} copies there).
     */
    public static Path tokenizer(Path explicit, Path model) {
        if (explicit != null) {
            return requireExists(explicit, "tokenizer");
        }
        String env = System.getenv(TOKENIZER_ENV);
        if (env != null && !env.isBlank()) {
            return requireExists(Path.of(env), "tokenizer (from " + TOKENIZER_ENV + ")");
        }
        List<Path> beside = new ArrayList<>();
        if (Files.isDirectory(model)) {
            beside.add(model.resolve("tokenizer.json")); // a Hugging Face folder's
            beside.add(model.resolve("tok512.bin")); // a compressed checkpoint's copy of its original's
            beside.add(model.resolve("tokenizer.bin"));
        } else if (model.getParent() != null) {
            beside.add(model.getParent().resolve("tok512.bin"));
            beside.add(model.getParent().resolve("tokenizer.bin"));
            beside.add(model.getParent().resolve("tokenizer.json"));
        }
        for (Path p : beside) {
            if (Files.isRegularFile(p)) {
                return p;
            }
        }
        return resolve(null, null, DEFAULT_TOKENIZER, "tokenizer");
    }

    /** A file under ../shared/data (or a -Dskipflow.shared folder), for defaults of evaluation commands. */
    public static Path sharedData(String name) {
        for (Path root : roots()) {
            Path p = root.resolve("data").resolve(name);
            if (Files.exists(p)) {
                return p;
            }
        }
        return Path.of("../shared/data").resolve(name);
    }

    private static List<Path> roots() {
        List<Path> roots = new ArrayList<>();
        String prop = System.getProperty("skipflow.shared");
        if (prop != null) {
            roots.add(Path.of(prop));
        }
        String home = System.getProperty("skipflow.home");
        if (home != null) {
            roots.add(Path.of(home).resolve("../shared").normalize());
        }
        roots.add(Path.of("../shared"));
        return roots;
    }

    private static Path resolve(Path explicit, String env, String defaultName, String what) {
        if (explicit != null) {
            return requireExists(explicit, what);
        }
        if (env != null && !env.isBlank()) {
            return requireExists(Path.of(env), what + " (from environment)");
        }
        List<Path> tried = new ArrayList<>();
        String home = System.getProperty("skipflow.home");
        if (home != null) {
            tried.add(Path.of(home).resolve("models").resolve(defaultName));
        }
        tried.add(Path.of("models").resolve(defaultName));
        for (Path root : roots()) {
            tried.add(root.resolve("models").resolve(defaultName));
        }
        for (Path p : tried) {
            if (Files.exists(p)) {
                return p;
            }
        }
        throw new IllegalArgumentException("No " + what + " found; looked at " + tried + ". " + HOW_TO_GET);
    }

    private static Path requireExists(Path p, String what) {
        if (!Files.exists(p)) {
            throw new IllegalArgumentException("The " + what + " " + p + " does not exist. " + HOW_TO_GET);
        }
        return p;
    }
}
