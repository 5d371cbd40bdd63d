package dev.skipflow.job;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;

/** Creates the job's topics if they do not exist. */
public final class Topics {

    private Topics() {}

    public static void create(String bootstrap, int partitions, String... names) throws Exception {
        create(bootstrap, new Properties(), partitions, names);
    }

    /** As above, with the job's Kafka client settings (SASL/SSL...). */
    public static void create(String bootstrap, Properties clientSettings, int partitions, String... names) throws Exception {
        Properties p = KafkaClients.with(clientSettings, bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        try (Admin admin = Admin.create(p)) {
            Set<String> existing = admin.listTopics().names().get();
            List<NewTopic> missing = new ArrayList<>();
            for (String n : names) {
                if (!existing.contains(n)) {
                    // the broker's default replication factor: 1 locally, the cluster's own setting elsewhere
                    missing.add(new NewTopic(n, Optional.of(partitions), Optional.empty()).configs(Map.of()));
                }
            }
            if (!missing.isEmpty()) {
                try {
                    admin.createTopics(missing).all().get();
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException)) {
                        throw e;
                    }
                }
            }
        }
    }
}
