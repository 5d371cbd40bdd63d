package dev.skipflow.job.sql;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.table.api.ResultKind;
import org.apache.flink.table.api.StatementSet;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.util.CloseableIterator;
import org.apache.flink.types.Row;

/**
 * Runs a {@link SqlScript} as one streaming job, as the SQL client runs a file: {@code SET 'key' = 'value'} goes to
 * the table config, DDL and other statements run in order, and every {@code INSERT INTO} joins one statement set
 * submitted at the end. A failing statement is refused naming its number, its first line and Flink's reason
 * (for a model option, the option).
 */
public final class SqlJob {

    private static final Pattern SET = Pattern.compile("(?is)SET\\s+'((?:[^']|'')*)'\\s*=\\s*'((?:[^']|'')*)'");
    private static final Pattern LEADING_COMMENTS = Pattern.compile("(?s)^(\\s*(--[^\\n]*(\\n|$)|/\\*.*?\\*/))*\\s*");

    private SqlJob() {}

    /**
     * Runs the script's statements on {@code tEnv} and submits its INSERTs as the job {@code jobName}.
     *
     * @param output where results of statements that print something (SHOW, DESCRIBE, EXPLAIN) go
     * @return the submitted job's result (its job client)
     */
    public static TableResult submit(TableEnvironment tEnv, SqlScript script, String jobName, Consumer<String> output) {
        tEnv.getConfig().set(PipelineOptions.NAME, jobName);
        StatementSet inserts = tEnv.createStatementSet();
        int insertCount = 0;
        for (int n = 0; n < script.statements().size(); n++) {
            String statement = script.statements().get(n);
            String code = LEADING_COMMENTS.matcher(statement).replaceFirst("");
            String keyword = code.split("\\s+", 2)[0].toUpperCase(Locale.ROOT);
            try {
                Matcher set = SET.matcher(code);
                if (set.matches()) {
                    tEnv.getConfig().set(set.group(1).replace("''", "'"), set.group(2).replace("''", "'"));
                } else if (keyword.equals("INSERT")) {
                    inserts.addInsertSql(code);
                    insertCount++;
                } else if (keyword.equals("SELECT") || keyword.equals("WITH") || keyword.equals("VALUES")) {
                    throw new IllegalArgumentException("a query in a script would never end on a stream; write its rows "
                            + "somewhere with INSERT INTO");
                } else {
                    print(tEnv.executeSql(code), output);
                }
            } catch (RuntimeException e) {
                throw new IllegalArgumentException("statement " + (n + 1) + " (" + firstLine(code) + "): " + reason(e), e);
            }
        }
        if (insertCount == 0) {
            throw new IllegalArgumentException("the script has no INSERT INTO statement, so there is no job to run");
        }
        try {
            return inserts.execute();
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("planning the script's INSERT statements: " + reason(e), e);
        }
    }

    private static void print(TableResult result, Consumer<String> output) {
        if (result.getResultKind() != ResultKind.SUCCESS_WITH_CONTENT) {
            return;
        }
        try (CloseableIterator<Row> rows = result.collect()) {
            rows.forEachRemaining(r -> output.accept(r.toString()));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static String firstLine(String statement) {
        String line = statement.lines().findFirst().orElse("").strip();
        return line.length() > 80 ? line.substring(0, 77) + "..." : line;
    }

    /**
     * Flink's message and what its causes add, the deepest in full: a model provider's refusal (which names the
     * option) sits below Flink's "Unable to create a model provider", which lists the model's options.
     */
    static String reason(Throwable e) {
        List<String> said = new ArrayList<>();
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            String m = t.getMessage() == null ? "" : t.getMessage().strip();
            if (!m.isEmpty() && said.stream().noneMatch(earlier -> earlier.contains(m))) {
                said.add(m);
            }
        }
        if (said.isEmpty()) {
            return e.toString();
        }
        List<String> parts = new ArrayList<>();
        for (int i = 0; i < said.size() - 1; i++) {
            parts.add(said.get(i).lines().findFirst().orElse(""));
        }
        parts.add(said.get(said.size() - 1).lines().filter(l -> !l.isBlank()).collect(Collectors.joining("\n")));
        return String.join(": ", parts);
    }
}
