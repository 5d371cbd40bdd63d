package dev.skipflow.model.compression;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class StackPlanTest {

    @Test
    void parsesTheStepsInOrderWithTheirRatiosAndFolders() {
        StackPlan p = StackPlan.parse(" prune:0.2 , LowRank:0.7");
        assertEquals(List.of(new StackPlan.Step(StackPlan.Method.PRUNE, 0.2), new StackPlan.Step(StackPlan.Method.LOWRANK, 0.7)),
                p.steps());
        assertEquals("steps/1-prune", p.steps().get(0).folder(0));
        assertEquals("steps/2-lowrank", p.steps().get(1).folder(1));
        assertEquals("prune:0.2,lowrank:0.7", p.toString());
        assertEquals("--params-ratio", p.steps().get(1).method().ratioOption());
        assertEquals(List.of(StackPlan.Method.PRUNE, StackPlan.Method.MOE),
                StackPlan.parse("prune:0.3,moe:0.5").steps().stream().map(StackPlan.Step::method).toList());
        assertEquals(1.0, StackPlan.parse("lowrank:1").steps().get(0).ratio(), "low rank may keep every parameter");
    }

    @Test
    void refusesChainsThatCannotComposeBeforeAnyWork() {
        assertRefused("lowrank:0.8,prune:0.2", "prune must come first");
        assertRefused("moe:0.5,prune:0.2", "prune must come first");
        assertRefused("prune:0.2,moe:0.5,lowrank:0.7", "do not compose");
        assertRefused("lowrank:0.7,moe:0.5", "do not compose");
        assertRefused("prune:0.2,prune:0.1", "twice");
        assertRefused("prune:1", "(0, 1)");
        assertRefused("moe:0", "(0, 1)");
        assertRefused("lowrank:1.5", "(0, 1]");
        assertRefused("prune", "METHOD:RATIO");
        assertRefused("prune:x", "not a number");
        assertRefused("quantize:0.5", "unknown compression step");
        assertRefused(" ", "at least one step");
    }

    private static void assertRefused(String steps, String why) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> StackPlan.parse(steps));
        assertTrue(e.getMessage().contains(why), steps + ": " + e.getMessage());
    }
}
