package dev.skipflow.model.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The genetic schedule search keeps every candidate's mean and bounds, and finds a better schedule than its start. */
class ScheduleSearchTest {

    @Test
    void everyCandidateKeepsTheMeanAndTheSearchMovesTowardTheCheapestSchedule() {
        double[] goal = {0, 0.1, 0.6, 0.3, 0}; // mean 0.2, like a model whose middle blocks matter least
        List<double[]> seen = new ArrayList<>();
        ScheduleSearch.Result r = ScheduleSearch.search(List.of(SparsitySchedule.uniform(0.2, 5)), s -> {
            seen.add(s.perLayer());
            double d = 0;
            for (int i = 0; i < goal.length; i++) {
                d += Math.abs(s.at(i) - goal[i]);
            }
            return d;
        }, new ScheduleSearch.Options(12, 15, 0.2, 5L), i -> { });
        for (double[] s : seen) {
            double mean = 0;
            for (double v : s) {
                assertTrue(v >= 0 && v <= 1, "block sparsity out of [0, 1]: " + v);
                mean += v / s.length;
            }
            assertEquals(0.2, mean, 1e-9);
        }
        assertEquals(0.2, r.best().mean(), 1e-9);
        assertTrue(r.cost() < r.startCost() / 2, "search got from " + r.startCost() + " only to " + r.cost());
    }

    @Test
    void cornersPutTheSparsityIntoOneBlockEach() {
        List<SparsitySchedule> corners = ScheduleSearch.corners(0.3, 5);
        assertEquals(5, corners.size());
        assertEquals(1.0, corners.get(2).at(2), 1e-12);
        assertEquals(0.125, corners.get(2).at(0), 1e-12);
        corners.forEach(c -> assertEquals(0.3, c.mean(), 1e-12));
    }
}
