package dev.skipflow.model;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Router and exit artifacts that ship with skipflow for its default models, in {@code artifacts/<fingerprint>/}
 * of the installation ({@code skipflow.home}, else the working directory), found by the fingerprint of the model
 * being served; and those a serving bundle ({@code ./skipflow stack}) carries beside its checkpoint. Each artifact
 * also records the fingerprint it was trained for and is refused for another model.
 */
public final class ShippedArtifacts {

    /** What ships for one model; either path may be null. */
    public record Found(Path router, Path exit) {
        public boolean any() {
            return router != null || exit != null;
        }
    }

    /** A router artifact's file name, in {@code artifacts/<fingerprint>/} and in a bundle. */
    public static final String ROUTER = "router.json";

    /** An exit-classifier artifact's file name, in {@code artifacts/<fingerprint>/} and in a bundle. */
    public static final String EXIT = "exit.json";

    private ShippedArtifacts() {}

    /** The artifacts a bundle folder carries beside its checkpoint; none for a file or a folder without them. */
    public static Found inBundle(Path model) {
        if (model == null || !Files.isDirectory(model)) {
            return new Found(null, null);
        }
        return in(model);
    }

    private static Found in(Path dir) {
        Path router = dir.resolve(ROUTER);
        Path exit = dir.resolve(EXIT);
        return new Found(Files.isRegularFile(router) ? router : null, Files.isRegularFile(exit) ? exit : null);
    }

    public static Found forModel(String fingerprint) {
        String home = System.getProperty("skipflow.home");
        return in((home == null ? Path.of(".") : Path.of(home)).resolve("artifacts").resolve(fingerprint));
    }
}
