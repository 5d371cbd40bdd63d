package dev.skipflow.job.local;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Properties;
import java.util.stream.Stream;
import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import kafka.tools.StorageTool;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.utils.Time;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A real single-node Kafka broker in KRaft mode (broker and controller in one process), listening on
 * 127.0.0.1 only, with replication factors of 1. For the local default, the CLI's {@code broker} command and
 * tests; it is not part of the cluster job jar.
 */
public final class EmbeddedKafkaBroker implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(EmbeddedKafkaBroker.class);

    private final KafkaRaftServer server;
    private final Path logDir;
    private final int port;
    private final int saslPort;
    private final boolean deleteOnClose;

    private EmbeddedKafkaBroker(KafkaRaftServer server, Path logDir, int port, int saslPort, boolean deleteOnClose) {
        this.server = server;
        this.logDir = logDir;
        this.port = port;
        this.saslPort = saslPort;
        this.deleteOnClose = deleteOnClose;
    }

    /**
     * Formats {@code logDir} (when new) and starts the broker.
     *
     * @param port client port on 127.0.0.1; 0 picks a free one
     * @param deleteOnClose remove the log directory when the broker stops
     */
    public static EmbeddedKafkaBroker start(int port, Path logDir, boolean deleteOnClose) throws IOException {
        return start(port, logDir, deleteOnClose, java.util.Map.of());
    }

    /**
     * As above; with {@code saslPlainUsers} (user name to password) not empty, the broker also listens with
     * SASL_PLAINTEXT (mechanism PLAIN) on a second port, {@link #saslBootstrapServers()}, accepting those users.
     * A log directory that was used before keeps its data, and the broker keeps its controller port (from the
     * {@code <logDir>.properties} file beside it), so a broker can be stopped or killed and started again on it.
     */
    public static EmbeddedKafkaBroker start(int port, Path logDir, boolean deleteOnClose,
            java.util.Map<String, String> saslPlainUsers) throws IOException {
        int clientPort = port == 0 ? freePort() : port;
        Path stored = logDir.resolveSibling(logDir.getFileName() + ".properties");
        int controllerPort = 0;
        int saslPort = 0;
        if (Files.exists(stored) && Files.exists(logDir.resolve("meta.properties"))) {
            Properties before = new Properties();
            try (var in = Files.newInputStream(stored)) {
                before.load(in);
            }
            controllerPort = Integer.parseInt(before.getProperty("controller.quorum.voters").replaceAll(".*:", ""));
            saslPort = Integer.parseInt(before.getProperty("skipflow.sasl.port", "0"));
        }
        controllerPort = controllerPort == 0 ? freePort() : controllerPort;
        if (!saslPlainUsers.isEmpty() && saslPort == 0) {
            saslPort = freePort();
        }
        boolean sasl = !saslPlainUsers.isEmpty();
        Files.createDirectories(logDir);
        Properties p = new Properties();
        p.put("process.roles", "broker,controller");
        p.put("node.id", "1");
        p.put("controller.quorum.voters", "1@127.0.0.1:" + controllerPort);
        p.put("listeners", "PLAINTEXT://127.0.0.1:" + clientPort + ",CONTROLLER://127.0.0.1:" + controllerPort
                + (sasl ? ",SASL_PLAINTEXT://127.0.0.1:" + saslPort : ""));
        p.put("advertised.listeners", "PLAINTEXT://127.0.0.1:" + clientPort
                + (sasl ? ",SASL_PLAINTEXT://127.0.0.1:" + saslPort : ""));
        p.put("controller.listener.names", "CONTROLLER");
        p.put("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
                + (sasl ? ",SASL_PLAINTEXT:SASL_PLAINTEXT" : ""));
        if (sasl) {
            StringBuilder jaas = new StringBuilder("org.apache.kafka.common.security.plain.PlainLoginModule required");
            saslPlainUsers.forEach((user, password) -> jaas.append(" user_").append(user).append("=\"")
                    .append(password).append('"'));
            p.put("sasl.enabled.mechanisms", "PLAIN");
            p.put("listener.name.sasl_plaintext.plain.sasl.jaas.config", jaas.append(';').toString());
            p.put("skipflow.sasl.port", String.valueOf(saslPort));
        }
        p.put("inter.broker.listener.name", "PLAINTEXT");
        p.put("log.dirs", logDir.toAbsolutePath().toString());
        p.put("num.partitions", "1");
        p.put("offsets.topic.replication.factor", "1");
        p.put("offsets.topic.num.partitions", "1");
        p.put("transaction.state.log.replication.factor", "1");
        p.put("transaction.state.log.min.isr", "1");
        p.put("transaction.state.log.num.partitions", "1");
        p.put("share.coordinator.state.topic.replication.factor", "1");
        p.put("share.coordinator.state.topic.min.isr", "1");
        p.put("group.initial.rebalance.delay.ms", "0");
        p.put("auto.create.topics.enable", "true");
        if (!Files.exists(logDir.resolve("meta.properties"))) {
            format(p, logDir);
        } else {
            store(p, stored);
        }
        long t0 = System.nanoTime();
        KafkaRaftServer server = new KafkaRaftServer(new KafkaConfig(p), Time.SYSTEM);
        server.startup();
        LOG.info("Kafka broker (KRaft) started on 127.0.0.1:{} in {} ms, logs in {}", clientPort,
                (System.nanoTime() - t0) / 1_000_000, logDir);
        return new EmbeddedKafkaBroker(server, logDir, clientPort, saslPort, deleteOnClose);
    }

    private static void store(Properties p, Path config) throws IOException {
        Properties kept = new Properties();
        kept.putAll(p);
        kept.remove("listener.name.sasl_plaintext.plain.sasl.jaas.config"); // passwords stay out of files
        try (OutputStream out = Files.newOutputStream(config)) {
            kept.store(out, "skipflow embedded broker");
        }
    }

    private static void format(Properties p, Path logDir) throws IOException {
        Path config = logDir.resolveSibling(logDir.getFileName() + ".properties");
        store(p, config);
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        int code = StorageTool.execute(new String[] {"format", "-t", Uuid.randomUuid().toString(), "-c",
            config.toString()}, new PrintStream(log, true, StandardCharsets.UTF_8));
        if (code != 0) {
            throw new IOException("formatting the Kafka log directory " + logDir + " failed: "
                    + log.toString(StandardCharsets.UTF_8));
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            return s.getLocalPort();
        }
    }

    public String bootstrapServers() {
        return "127.0.0.1:" + port;
    }

    public int port() {
        return port;
    }

    /** The SASL_PLAINTEXT listener (PLAIN), when the broker was started with users. */
    public String saslBootstrapServers() {
        if (saslPort == 0) {
            throw new IllegalStateException("this broker has no SASL listener");
        }
        return "127.0.0.1:" + saslPort;
    }

    @Override
    public void close() {
        server.shutdown();
        server.awaitShutdown();
        if (deleteOnClose) {
            deleteRecursively(logDir);
            deleteRecursively(logDir.resolveSibling(logDir.getFileName() + ".properties"));
        }
    }

    static void deleteRecursively(Path p) {
        if (!Files.exists(p)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(p)) {
            walk.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException e) {
            LOG.warn("could not delete {}: {}", p, e.toString());
        }
    }
}
