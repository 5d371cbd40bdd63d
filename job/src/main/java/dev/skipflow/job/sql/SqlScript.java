package dev.skipflow.job.sql;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A Flink SQL script as statements: {@code ${name}} placeholders replaced by their values (the runner's broker
 * address and topics, or {@code --define}s), then split at semicolons outside quotes, identifiers and comments.
 * A placeholder without a value is refused, naming it and the defined ones.
 */
public record SqlScript(List<String> statements) {

    private static final Pattern PLACEHOLDER = Pattern.compile("\\$\\{([A-Za-z0-9_.-]+)}");

    public SqlScript {
        statements = List.copyOf(statements);
    }

    public static SqlScript parse(String text, Map<String, String> values) {
        return new SqlScript(split(substitute(text, values)));
    }

    static String substitute(String text, Map<String, String> values) {
        Matcher m = PLACEHOLDER.matcher(text);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String value = values.get(m.group(1));
            if (value == null) {
                throw new IllegalArgumentException("the script uses ${" + m.group(1) + "}, which has no value; defined: "
                        + new TreeSet<>(values.keySet()) + " (add one with --define " + m.group(1) + "=VALUE)");
            }
            m.appendReplacement(out, Matcher.quoteReplacement(value));
        }
        return m.appendTail(out).toString();
    }

    /** Statements without their terminating semicolons; comment-only and blank pieces are dropped. */
    static List<String> split(String text) {
        List<String> statements = new ArrayList<>();
        StringBuilder current = new StringBuilder();
        boolean code = false; // the current piece has something besides comments and blanks
        int i = 0;
        while (i < text.length()) {
            char c = text.charAt(i);
            if (c == '-' && text.startsWith("--", i)) {
                int end = text.indexOf('\n', i);
                end = end < 0 ? text.length() : end;
                current.append(text, i, end);
                i = end;
            } else if (c == '/' && text.startsWith("/*", i)) {
                int end = text.indexOf("*/", i + 2);
                if (end < 0) {
                    throw new IllegalArgumentException("the script has an unclosed /* comment");
                }
                current.append(text, i, end + 2);
                i = end + 2;
            } else if (c == '\'' || c == '`' || c == '"') {
                int end = closing(text, i, c);
                current.append(text, i, end + 1);
                code = true;
                i = end + 1;
            } else if (c == ';') {
                if (code) {
                    statements.add(current.toString().strip());
                }
                current.setLength(0);
                code = false;
                i++;
            } else {
                current.append(c);
                code |= !Character.isWhitespace(c);
                i++;
            }
        }
        if (code) {
            statements.add(current.toString().strip());
        }
        return statements;
    }

    /** Index of the quote closing the one at {@code start}; a doubled quote is an escaped one, as in SQL. */
    private static int closing(String text, int start, char quote) {
        int i = start + 1;
        while (i < text.length()) {
            if (text.charAt(i) == quote) {
                if (i + 1 < text.length() && text.charAt(i + 1) == quote) {
                    i += 2;
                    continue;
                }
                return i;
            }
            i++;
        }
        int line = (int) text.substring(0, start).chars().filter(ch -> ch == '\n').count() + 1;
        throw new IllegalArgumentException("the script has an unclosed " + quote + " quote starting on line " + line);
    }
}
