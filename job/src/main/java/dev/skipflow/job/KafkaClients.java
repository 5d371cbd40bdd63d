package dev.skipflow.job;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.errors.AuthenticationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Kafka client settings the user gives ({@code --kafka-config FILE}, then each {@code --kafka-property}),
 * applied to every source, sink and admin client of the job; how to describe them without their secrets; and the
 * start-up check that turns refused credentials into one clear error instead of a job that retries silently.
 */
public final class KafkaClients {

    private static final Logger LOG = LoggerFactory.getLogger(KafkaClients.class);

    /** Parts of a key whose value is never printed (SASL JAAS configs, SSL key and store passwords, tokens). */
    private static final List<String> SECRET_KEY_PARTS = List.of("password", "jaas", "secret", "token", "credential",
            "ssl.key", "keystore.key", "api.key", "apikey");

    private KafkaClients() {}

    /** The file's settings, then the --kafka-property ones on top; empty when neither is given. */
    public static Properties properties(JobOptions o) {
        Properties p = new Properties();
        if (o.kafkaConfig != null) {
            try (Reader r = Files.newBufferedReader(o.kafkaConfig, StandardCharsets.UTF_8)) {
                p.load(r);
            } catch (IOException e) {
                throw new IllegalArgumentException("--kafka-config " + o.kafkaConfig + " cannot be read: " + e.getMessage());
            }
        }
        for (String kv : o.kafkaProperties) {
            int eq = kv.indexOf('=');
            if (eq <= 0) {
                // never echo the value: it may be a secret with a typo
                String key = eq < 0 ? "(no '=')" : "(empty key)";
                throw new IllegalArgumentException("--kafka-property must be KEY=VALUE, got " + key);
            }
            p.setProperty(kv.substring(0, eq).trim(), kv.substring(eq + 1));
        }
        return p;
    }

    /** Whether a setting's value must never appear in logs, metrics or the web UI. */
    public static boolean isSecret(String key) {
        String k = key.toLowerCase(Locale.ROOT);
        return SECRET_KEY_PARTS.stream().anyMatch(k::contains);
    }

    /** The settings as {@code key=value, ...} with secret values replaced by {@code [hidden]}, keys sorted. */
    public static String describe(Properties p) {
        StringBuilder b = new StringBuilder();
        for (String k : new TreeSet<>(p.stringPropertyNames())) {
            if (b.length() > 0) {
                b.append(", ");
            }
            b.append(k).append('=').append(isSecret(k) ? "[hidden]" : p.getProperty(k));
        }
        return b.length() == 0 ? "(none)" : b.toString();
    }

    /** {@code base} with the user's settings on top and the bootstrap servers set. */
    public static Properties with(Properties user, String bootstrap) {
        Properties p = new Properties();
        p.putAll(user);
        p.setProperty(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        return p;
    }

    /**
     * Asks the cluster for its id with the job's settings. Refused credentials (SASL or SSL authentication) stop the
     * start-up with an IllegalArgumentException that says so; an unreachable cluster only logs a warning (the job's
     * clients keep retrying, as they would after a broker restart).
     */
    public static void checkAuthentication(String bootstrap, Properties user, long timeoutMs) {
        Properties p = with(user, bootstrap);
        p.setProperty(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, String.valueOf(timeoutMs));
        p.setProperty(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, String.valueOf(Math.min(timeoutMs, 30_000)));
        try (Admin admin = Admin.create(p)) {
            String cluster = admin.describeCluster().clusterId().get(timeoutMs, TimeUnit.MILLISECONDS);
            LOG.info("Kafka cluster {} at {} accepted the job's client settings ({})", cluster, bootstrap, describe(user));
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof AuthenticationException) {
                throw new IllegalArgumentException("Kafka at " + bootstrap + " refused to authenticate the job: "
                        + cause.getMessage() + ". Check the credentials and security settings given with --kafka-config "
                        + "/ --kafka-property (" + describe(user) + ")");
            }
            LOG.warn("could not check the Kafka settings against {}: {}; starting anyway", bootstrap, cause.toString());
        } catch (TimeoutException e) {
            LOG.warn("Kafka at {} did not answer within {} ms; starting anyway (the job's clients keep retrying)",
                    bootstrap, timeoutMs);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while checking Kafka", e);
        }
    }
}
