package dev.skipflow.job.cli;

import java.nio.file.Path;

/** Where local runs keep their files: target/local under the repository (or the working directory). */
final class Workdirs {

    private Workdirs() {}

    /** {@code port} if it is free on 127.0.0.1, else a free one (said on stderr); 0 stays 0. */
    static int portOrFree(int port, String what) {
        if (port == 0) {
            return 0;
        }
        try (java.net.ServerSocket s = new java.net.ServerSocket(port, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
            return port;
        } catch (java.io.IOException busy) {
            try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
                System.err.println("skipflow: port " + port + " for the " + what + " is in use; using " + s.getLocalPort());
                return s.getLocalPort();
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }
    }

    static Path local() {
        String home = System.getProperty("skipflow.home");
        return (home != null ? Path.of(home) : Path.of(".")).resolve("target").resolve("local").toAbsolutePath();
    }
}
