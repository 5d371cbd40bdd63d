package dev.skipflow.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.job.JobOptions;
import dev.skipflow.job.cli.SkipflowCli;
import dev.skipflow.job.local.AnswerCollector;
import dev.skipflow.job.local.EmbeddedKafkaBroker;
import dev.skipflow.job.local.LocalRunner;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The end-to-end scenario shared by the integration tests: valid and malformed prompts into a real broker,
 * the job on a real MiniCluster with the real model, and every record answered exactly once.
 */
final class StreamingScenario {

    static final ObjectMapper JSON = new ObjectMapper();
    static final int MAX_PAYLOAD = 4096;

    /** A malformed record and a word its dead letter's reason must contain. */
    record Bad(byte[] value, String reasonContains) {}

    final List<byte[]> valid = new ArrayList<>();
    final Map<String, JsonNode> validById = new LinkedHashMap<>();
    final List<Bad> bad = new ArrayList<>();

    static Path shared() {
        return Path.of(System.getProperty("skipflow.shared", "../../shared"));
    }

    static JobOptions options(String bootstrap, String suffix) {
        JobOptions o = new JobOptions();
        o.bootstrapServers = bootstrap;
        o.promptsTopic = "prompts-" + suffix;
        o.completionsTopic = "completions-" + suffix;
        o.dlqTopic = "prompts.dlq-" + suffix;
        o.metricsTopic = "metrics-" + suffix;
        o.groupId = "skipflow-" + suffix;
        o.transactionalIdPrefix = "skipflow-" + suffix;
        o.checkpointIntervalMs = 500;
        o.metricsWindowMs = 2000;
        o.maxBatch = 16;
        o.maxInFlight = 64;
        o.maxPayloadBytes = MAX_PAYLOAD;
        o.partitions = 2;
        return o;
    }

    static String suffix() {
        return UUID.randomUUID().toString().substring(0, 8);
    }

    /** {@code validCount} valid prompts (first words of the valid sample's stories) and 20 malformed ones. */
    StreamingScenario(int validCount) throws Exception {
        List<String> lines = Files.readAllLines(shared().resolve("data/tinystories-valid-sample.txt"));
        for (int i = 0; i < validCount; i++) {
            String[] words = lines.get(i % lines.size()).trim().split("\\s+");
            int n = 2 + (i * 7) % 9;
            String prompt = String.join(" ", java.util.Arrays.copyOf(words, Math.min(n, words.length)));
            ObjectNode r = JSON.createObjectNode();
            r.put("id", "req-" + i);
            r.put("prompt", prompt);
            r.put("maxTokens", 6 + i % 11);
            if (i % 5 == 4) {
                r.put("temperature", 0.8);
                r.put("topP", 0.9);
                r.put("seed", i);
            }
            if (i % 7 == 3) {
                r.put("adaptive", false);
                r.put("someFutureField", "ignored");
            }
            validById.put("req-" + i, r);
            valid.add(r.toString().getBytes(StandardCharsets.UTF_8));
        }
        String longPrompt = "Once upon a time there was a little dog. ".repeat(60);
        addBad("this is not json", "not valid JSON");
        bad.add(new Bad(new byte[] {(byte) 0xC3, (byte) 0x28, (byte) 0xA0, (byte) 0xFF}, "not valid UTF-8"));
        bad.add(new Bad(new byte[0], "empty record"));
        addBad("[1, 2, 3]", "must be a JSON object");
        addBad("{\"prompt\": \"Once upon a time\"}", "missing required field \"id\"");
        addBad("{\"id\": \"\", \"prompt\": \"Once upon a time\"}", "\"id\" must be 1-128");
        addBad("{\"id\": \"" + "x".repeat(129) + "\", \"prompt\": \"Once\"}", "\"id\" must be 1-128");
        addBad("{\"id\": 17, \"prompt\": \"Once upon a time\"}", "\"id\" must be a string");
        addBad("{\"id\": \"bad-9\"}", "missing required field \"prompt\"");
        addBad("{\"id\": \"bad-10\", \"prompt\": \"\"}", "must not be empty");
        addBad("{\"id\": \"bad-11\", \"prompt\": 42}", "\"prompt\" must be a string");
        addBad("{\"id\": \"bad-12\", \"prompt\": \"Hi\", \"maxTokens\": \"64\"}", "\"maxTokens\" must be an integer");
        addBad("{\"id\": \"bad-13\", \"prompt\": \"Hi\", \"maxTokens\": 0}", "\"maxTokens\" must be an integer");
        addBad("{\"id\": \"bad-14\", \"prompt\": \"Hi\", \"maxTokens\": 100000}", "\"maxTokens\" must be an integer");
        addBad("{\"id\": \"bad-15\", \"prompt\": \"Hi\", \"temperature\": -1}", "\"temperature\"");
        addBad("{\"id\": \"bad-16\", \"prompt\": \"Hi\", \"topP\": 0}", "\"topP\"");
        addBad("{\"id\": \"bad-17\", \"prompt\": \"Hi\", \"seed\": \"seven\"}", "\"seed\" must be an integer");
        addBad("{\"id\": \"bad-18\", \"prompt\": \"Hi\", \"adaptive\": \"yes\"}", "\"adaptive\" must be true or false");
        addBad("{\"id\": \"bad-19\", \"prompt\": \"" + longPrompt + "\", \"maxTokens\": 64}", "context holds");
        addBad("{\"id\": \"bad-20\", \"prompt\": \"" + "a".repeat(MAX_PAYLOAD) + "\"}", "the limit is " + MAX_PAYLOAD);
        assertEquals(20, bad.size());
    }

    private void addBad(String json, String reason) {
        bad.add(new Bad(json.getBytes(StandardCharsets.UTF_8), reason));
    }

    /** Offsets of each sent record by partition:offset, valid ones mapped to their id, bad ones to their index. */
    final Map<String, Object> sentAt = new java.util.concurrent.ConcurrentHashMap<>();

    /** Every record in the order {@link #send} and {@link #sendPaced} send them: valid ones with a bad one now and then. */
    List<Object[]> interleaved() {
        List<Object[]> out = new ArrayList<>(); // {what (id or bad index), bytes}
        int b = 0;
        for (int i = 0; i < valid.size(); i++) {
            out.add(new Object[] {"req-" + i, valid.get(i)});
            if (i % 9 == 4 && b < bad.size()) {
                out.add(new Object[] {b, bad.get(b).value()});
                b++;
            }
        }
        while (b < bad.size()) {
            out.add(new Object[] {b, bad.get(b).value()});
            b++;
        }
        return out;
    }

    int expected() {
        return valid.size() + bad.size();
    }

    /**
     * Sends every record at about {@code perSecond}, remembering where each landed; returns when all are
     * acknowledged. The producer is idempotent (Kafka's default), so a broker restart meanwhile does not
     * duplicate a prompt.
     */
    void sendPaced(String bootstrap, String topic, double perSecond) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, "1048576");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "300000");
        try (KafkaProducer<byte[], byte[]> producer =
                new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            List<Object[]> all = interleaved();
            List<java.util.concurrent.Future<RecordMetadata>> futures = new ArrayList<>();
            long start = System.nanoTime();
            for (int i = 0; i < all.size(); i++) {
                long due = start + (long) (i * 1e9 / perSecond);
                long wait = due - System.nanoTime();
                if (wait > 0) {
                    Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                }
                futures.add(producer.send(new ProducerRecord<>(topic, (byte[]) all.get(i)[1])));
            }
            for (int i = 0; i < futures.size(); i++) {
                RecordMetadata m = futures.get(i).get();
                sentAt.put(m.partition() + ":" + m.offset(), all.get(i)[0]);
            }
        }
    }

    /** What {@link #verify} counted. */
    record Tally(int completions, int deadLetters, int records) {}

    /** Sends valid and bad records interleaved, remembering where each landed. */
    void send(String bootstrap, String topic) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, "1048576");
        try (KafkaProducer<byte[], byte[]> producer =
                new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            int b = 0;
            List<java.util.concurrent.Future<RecordMetadata>> futures = new ArrayList<>();
            List<Object> what = new ArrayList<>();
            for (int i = 0; i < valid.size(); i++) {
                futures.add(producer.send(new ProducerRecord<>(topic, valid.get(i))));
                what.add("req-" + i);
                if (i % 9 == 4 && b < bad.size()) {
                    futures.add(producer.send(new ProducerRecord<>(topic, bad.get(b).value())));
                    what.add(b++);
                }
            }
            while (b < bad.size()) {
                futures.add(producer.send(new ProducerRecord<>(topic, bad.get(b).value())));
                what.add(b++);
            }
            for (int i = 0; i < futures.size(); i++) {
                RecordMetadata m = futures.get(i).get();
                sentAt.put(m.partition() + ":" + m.offset(), what.get(i));
            }
        }
    }

    /** Collects the answers and checks: exactly one per record, on the right topic, with the right content. */
    List<JsonNode> collectAndVerify(LocalRunner runner, Duration timeout) throws Exception {
        JobOptions o = runner.options();
        int expected = valid.size() + bad.size();
        List<AnswerCollector.Answer> answers;
        try (AnswerCollector c = runner.answers()) {
            answers = c.collect(expected, timeout, Duration.ofSeconds(3));
        }
        List<JsonNode> completions = new ArrayList<>();
        verify(answers, o.promptsTopic, o.completionsTopic, o.dlqTopic, completions);
        return completions;
    }

    /**
     * Checks {@code answers} (read with read_committed) against what was sent: every record answered exactly once,
     * counted by id for completions and by the prompt record's partition:offset for both completions and dead
     * letters; no answer for anything not sent; each dead letter's reason as expected.
     */
    Tally verify(List<AnswerCollector.Answer> answers, String promptsTopic, String completionsTopic, String dlqTopic,
            List<JsonNode> completions) throws Exception {
        int expected = valid.size() + bad.size();
        assertEquals(expected, sentAt.size(), "every record was acknowledged at its own partition:offset");
        Map<Object, String> offsetOf = new HashMap<>();
        sentAt.forEach((at, what) -> offsetOf.put(what, at));
        Map<String, Integer> answersPerOffset = new HashMap<>();
        Map<String, Integer> completionsPerId = new HashMap<>();
        Map<Integer, Integer> deadLettersPerBad = new HashMap<>();
        int completionCount = 0;
        for (AnswerCollector.Answer a : answers) {
            JsonNode v = JSON.readTree(a.value());
            if (a.topic().equals(completionsTopic)) {
                String id = v.get("id").asText();
                assertEquals(id, a.key(), "completions are keyed by id");
                assertTrue(validById.containsKey(id), "completion for unknown id " + id);
                completionsPerId.merge(id, 1, Integer::sum);
                answersPerOffset.merge(offsetOf.get(id), 1, Integer::sum);
                completionCount++;
                if (completions != null) {
                    completions.add(v);
                }
                JsonNode req = validById.get(id);
                assertTrue(v.get("completionTokens").asInt() <= req.get("maxTokens").asInt(), a.value());
                assertTrue(List.of("stop", "length").contains(v.get("finishReason").asText()), a.value());
                assertTrue(v.get("promptTokens").asInt() >= 2, a.value());
                assertTrue(v.get("latencyMs").asLong() >= v.get("timeToFirstTokenMs").asLong(), a.value());
                JsonNode s = v.get("savings");
                assertTrue(s.get("denseFlops").asLong() > 0, a.value());
                assertEquals(s.get("denseFlops").asLong(), s.get("executedFlops").asLong(), "dense path: nothing skipped");
                assertEquals(0.0, s.get("savedFraction").asDouble());
            } else {
                assertEquals(dlqTopic, a.topic());
                String at = v.get("partition").asInt() + ":" + v.get("offset").asLong();
                answersPerOffset.merge(at, 1, Integer::sum);
                Object sent = sentAt.get(at);
                assertTrue(sent instanceof Integer, "dead letter for a record that was not malformed: " + a.value());
                int index = (Integer) sent;
                deadLettersPerBad.merge(index, 1, Integer::sum);
                assertEquals(promptsTopic, v.get("topic").asText());
                String error = v.get("error").asText();
                assertTrue(error.contains(bad.get(index).reasonContains()),
                        "bad record " + index + ": reason '" + error + "' should mention '" + bad.get(index).reasonContains() + "'");
                assertNotNull(v.get("payload"));
            }
        }
        for (String id : validById.keySet()) {
            assertEquals(1, completionsPerId.getOrDefault(id, 0), "completions for " + id);
        }
        for (int i = 0; i < bad.size(); i++) {
            assertEquals(1, deadLettersPerBad.getOrDefault(i, 0), "dead letters for bad record " + i);
        }
        for (String at : sentAt.keySet()) {
            assertEquals(1, answersPerOffset.getOrDefault(at, 0), "answers for the prompt record at " + at);
        }
        assertEquals(expected, answers.size(), "one answer per record, no more");
        return new Tally(completionCount, answers.size() - completionCount, expected);
    }

    /** Duplicates and missing records among {@code answers}, for a message when the exact check fails. */
    String lostAndDuplicated(List<AnswerCollector.Answer> answers, String completionsTopic) {
        Map<String, Integer> per = new HashMap<>();
        for (AnswerCollector.Answer a : answers) {
            try {
                JsonNode v = JSON.readTree(a.value());
                String k = a.topic().equals(completionsTopic) ? v.get("id").asText()
                        : "dlq@" + v.get("partition").asInt() + ":" + v.get("offset").asLong();
                per.merge(k, 1, Integer::sum);
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        }
        long dup = per.values().stream().filter(n -> n > 1).mapToLong(n -> n - 1).sum();
        long lost = validById.keySet().stream().filter(id -> !per.containsKey(id)).count();
        return answers.size() + " answers for " + expected() + " records: " + dup + " duplicated, " + lost
                + " valid ones missing";
    }

    /**
     * Greedy completions are the model's greedy continuation (compared as {@link GreedyCheck} says), and
     * `./skipflow generate` prints exactly that continuation (the same solo path).
     */
    void verifyGreedyMatchesGenerateCli(List<JsonNode> completions, int howMany) {
        int checked = 0;
        for (JsonNode c : completions) {
            JsonNode req = validById.get(c.get("id").asText());
            if (req.has("temperature") || checked >= howMany) {
                continue;
            }
            GreedyCheck.Expected e = soloGreedy(req.get("prompt").asText(), req.get("maxTokens").asInt());
            GreedyCheck.assertGreedy(e, c.get("text").asText(), "request " + c.get("id").asText());
            checked++;
        }
        assertEquals(howMany, checked);
    }

    /**
     * Runs the job with {@code o} on a fresh embedded broker, sends 6 copies of one prompt (even ids adaptive, odd
     * ids {@code adaptive:false}), and checks every answer: adaptive ones with {@code adaptiveCheck} (given the
     * completion and its savings), dense ones cost exactly dense and equal {@code ./skipflow generate}'s text.
     */
    /**
     * {@code n} prompt records with ids {@code idPrefix + i}: prompt {@code i % prompts.length}, maxTokens
     * {@code maxTokens(i)}, even ones adaptive and odd ones dense (A/B in one run).
     */
    static List<byte[]> alternatingRequests(String idPrefix, String[] prompts, java.util.function.IntUnaryOperator maxTokens,
            int n) {
        List<byte[]> values = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            ObjectNode r = JSON.createObjectNode();
            r.put("id", idPrefix + i);
            r.put("prompt", prompts[i % prompts.length]);
            r.put("maxTokens", maxTokens.applyAsInt(i));
            r.put("adaptive", i % 2 == 0);
            values.add(r.toString().getBytes(StandardCharsets.UTF_8));
        }
        return values;
    }

    static void adaptiveAndDense(java.util.function.Consumer<JobOptions> configure, int maxTokens,
            java.util.function.BiConsumer<JsonNode, JsonNode> adaptiveCheck) throws Exception {
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start(0, Path.of("target", "it-kafka-" + System.nanoTime()), true)) {
            JobOptions o = options(broker.bootstrapServers(), suffix());
            configure.accept(o);
            String prompt = "Once upon a time, there was a little dog named Max who liked to run";
            List<byte[]> values = alternatingRequests("r-", new String[] {prompt}, i -> maxTokens, 6);
            try (LocalRunner runner = LocalRunner.start(o, Path.of("target"), 0, 1, 0);
                    AnswerCollector answers = runner.answers()) {
                runner.send(values);
                List<AnswerCollector.Answer> got = answers.collect(6, Duration.ofMinutes(2), Duration.ofSeconds(1));
                assertEquals(6, got.size());
                GreedyCheck.Expected dense = soloGreedy(prompt, maxTokens);
                for (AnswerCollector.Answer a : got) {
                    JsonNode v = JSON.readTree(a.value());
                    JsonNode s = v.get("savings");
                    if (Integer.parseInt(v.get("id").asText().substring(2)) % 2 == 0) {
                        adaptiveCheck.accept(v, s);
                    } else {
                        assertEquals(0, s.get("tokenBlocksSkipped").asLong(), a.value());
                        assertEquals(0, s.get("earlyExitTokens").asLong(), a.value());
                        assertEquals(s.get("denseFlops").asLong(), s.get("executedFlops").asLong(), a.value());
                        GreedyCheck.assertGreedy(dense, v.get("text").asText(), "adaptive=false is the dense path");
                    }
                }
            }
        }
    }

    /** The solo greedy continuation, checked against what `./skipflow generate` prints (the same path: exact). */
    static GreedyCheck.Expected soloGreedy(String prompt, int maxTokens) {
        GreedyCheck.Expected e = GreedyCheck.expected(prompt, maxTokens);
        assertEquals(e.text() + "\n", runGenerate(prompt, maxTokens), "./skipflow generate prints the solo continuation");
        return e;
    }

    static String runGenerate(String prompt, int maxTokens) {
        PrintStream original = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
        try {
            int code = SkipflowCli.execute("generate", "--prompt", prompt, "--max-tokens", String.valueOf(maxTokens),
                    "--device", "cpu");
            assertEquals(0, code);
        } finally {
            System.setOut(original);
        }
        return buf.toString(StandardCharsets.UTF_8);
    }

    /** The metrics topic got at least one window with requests in it. */
    static void verifyMetricsTopic(String bootstrap, String topic, int requests) {
        try (AnswerCollector c = new AnswerCollector(bootstrap, topic)) {
            long total = 0;
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            List<AnswerCollector.Answer> got = new ArrayList<>();
            while (total < requests && System.nanoTime() < deadline) {
                c.poll(Duration.ofMillis(300), got::add);
                total = got.stream().mapToLong(a -> {
                    try {
                        return JSON.readTree(a.value()).get("requests").asLong();
                    } catch (Exception e) {
                        throw new AssertionError(e);
                    }
                }).sum();
            }
            assertFalse(got.isEmpty(), "no metrics records");
            assertTrue(total >= requests, "metrics windows counted " + total + " of " + requests + " requests");
        }
    }

    /** Model options parsed the way the CLI parses them. */
    static dev.skipflow.job.options.ModelOptions modelOptions(String... args) {
        ModelHolder h = new ModelHolder();
        new picocli.CommandLine(h).parseArgs(args);
        return h.model;
    }

    @picocli.CommandLine.Command(name = "model")
    static final class ModelHolder {
        @picocli.CommandLine.Mixin
        dev.skipflow.job.options.ModelOptions model = new dev.skipflow.job.options.ModelOptions();
    }

    /** A check made while the job still runs, given the broker's address and the job's options. */
    interface WhileServing {
        void check(String bootstrapServers, JobOptions o) throws Exception;
    }

    /**
     * {@code values} through an embedded broker to a job serving the model folder {@code model} on the CPU: the
     * first {@code n} answers as JSON, each checked to be a completion; {@code whileServing} (may be null) runs before
     * the job stops.
     */
    static List<JsonNode> completionsFrom(Path model, List<byte[]> values, int n, WhileServing whileServing)
            throws Exception {
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start(0, Path.of("target", "it-kafka-" + System.nanoTime()),
                true)) {
            JobOptions o = options(broker.bootstrapServers(), suffix());
            o.model = modelOptions("--model", model.toString(), "--device", "cpu");
            try (LocalRunner runner = LocalRunner.start(o, Path.of("target"), 0, 1, 0);
                    AnswerCollector answers = runner.answers()) {
                runner.send(values);
                List<AnswerCollector.Answer> got = answers.collect(n, Duration.ofMinutes(2), Duration.ofSeconds(1));
                assertEquals(n, got.size());
                List<JsonNode> completions = new ArrayList<>();
                for (AnswerCollector.Answer a : got) {
                    assertEquals(o.completionsTopic, a.topic(), a.value());
                    completions.add(JSON.readTree(a.value()));
                }
                if (whileServing != null) {
                    whileServing.check(broker.bootstrapServers(), o);
                }
                return completions;
            }
        }
    }

    /**
     * Checks a completion's savings count its request against the original: {@code denseFlops} as the original
     * dense model runs it, {@code executedFlops} as the served model does; returns the share saved.
     */
    static double assertCountedAgainstOriginal(JsonNode completion, dev.skipflow.model.flops.FlopCounter original,
            dev.skipflow.model.flops.FlopCounter served) {
        JsonNode s = completion.get("savings");
        int prompt = completion.get("promptTokens").asInt();
        int generated = completion.get("completionTokens").asInt();
        assertTrue(generated > 0, completion.toString());
        long dense = requestFlops(original, prompt, generated);
        long executed = requestFlops(served, prompt, generated);
        assertEquals(dense, s.get("denseFlops").asLong(), "denseFlops is the original dense model's: " + completion);
        assertEquals(executed, s.get("executedFlops").asLong(), "executedFlops is the served model's: " + completion);
        double share = 1 - executed / (double) dense;
        assertEquals(share, s.get("savedFraction").asDouble(), 1e-9, completion.toString());
        return share;
    }

    /** A request's FLOPs by {@code f}: the prompt's prefill (one LM head), then one decode step per further token. */
    static long requestFlops(dev.skipflow.model.flops.FlopCounter f, int prompt, int completion) {
        long flops = 0;
        for (int pos = 0; pos < prompt + completion - 1; pos++) {
            flops += f.allBlocks(pos);
        }
        return flops + completion * f.head();
    }
}
