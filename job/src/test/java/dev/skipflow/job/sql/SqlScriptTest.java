package dev.skipflow.job.sql;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class SqlScriptTest {

    @Test
    void splitsAtSemicolonsOutsideQuotesAndComments() {
        String text = """
                -- a comment; not a statement
                SET 'a.b' = 'x;y';
                /* block; comment */
                CREATE TABLE `t;1` (s STRING) WITH ('k' = 'it''s; fine');

                INSERT INTO t SELECT "q;" FROM u;
                -- trailing comment only
                """;
        List<String> s = SqlScript.parse(text, Map.of()).statements();
        assertEquals(3, s.size(), s.toString());
        assertTrue(s.get(0).endsWith("SET 'a.b' = 'x;y'"), s.get(0));
        assertTrue(s.get(1).endsWith("WITH ('k' = 'it''s; fine')"), s.get(1));
        assertEquals("INSERT INTO t SELECT \"q;\" FROM u", s.get(2));
    }

    @Test
    void replacesPlaceholdersAndRefusesUnknownOnes() {
        assertEquals(List.of("SELECT 'h:1'"), SqlScript.parse("SELECT '${host}';", Map.of("host", "h:1")).statements());
        var e = assertThrows(IllegalArgumentException.class, () -> SqlScript.parse("SELECT '${nope}'", Map.of("host", "h")));
        assertTrue(e.getMessage().contains("${nope}") && e.getMessage().contains("[host]"), e.getMessage());
        var unclosed = assertThrows(IllegalArgumentException.class, () -> SqlScript.parse("SELECT 'x;\nFROM t", Map.of()));
        assertTrue(unclosed.getMessage().contains("line 1"), unclosed.getMessage());
    }

    @Test
    void theExampleScriptHasItsStatements() throws Exception {
        String text = Files.readString(Path.of("..", "examples", "sql", "prompts.sql"));
        List<String> s = SqlScript.parse(text, Map.of("bootstrap-servers", "127.0.0.1:9092", "prompts-topic", "prompts",
                "completions-topic", "completions")).statements();
        assertEquals(7, s.size(), s.toString());
        assertTrue(s.get(s.size() - 1).startsWith("INSERT INTO completions"), s.get(s.size() - 1));
    }
}
