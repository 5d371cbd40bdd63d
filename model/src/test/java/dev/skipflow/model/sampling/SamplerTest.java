package dev.skipflow.model.sampling;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class SamplerTest {

    @Test
    void greedyTakesTheFirstLargestLogit() {
        Llama2cSampler s = new Llama2cSampler(SamplingParams.greedy(1));
        assertEquals(2, s.sample(new float[] {0f, 1f, 3f, 3f, -1f}));
    }

    @Test
    void sameSeedSameDrawsAndTheDrawsFollowTheDistribution() {
        float[] logits = {0f, (float) Math.log(3), (float) Math.log(6)}; // probabilities 0.1, 0.3, 0.6
        int[] counts = new int[3];
        Llama2cSampler a = new Llama2cSampler(new SamplingParams(1, 1f, 1f, 99L));
        Llama2cSampler b = new Llama2cSampler(new SamplingParams(1, 1f, 1f, 99L));
        for (int i = 0; i < 20_000; i++) {
            int x = a.sample(logits.clone());
            assertEquals(x, b.sample(logits.clone()));
            counts[x]++;
        }
        assertEquals(0.1, counts[0] / 20_000.0, 0.015);
        assertEquals(0.3, counts[1] / 20_000.0, 0.015);
        assertEquals(0.6, counts[2] / 20_000.0, 0.015);
    }

    @Test
    void topPKeepsOnlyTheNucleus() {
        float[] logits = {0f, (float) Math.log(3), (float) Math.log(6)};
        Llama2cSampler s = new Llama2cSampler(new SamplingParams(1, 1f, 0.5f, 3L)); // 0.6 alone exceeds 0.5
        for (int i = 0; i < 2000; i++) {
            assertEquals(2, s.sample(logits.clone()));
        }
        Llama2cSampler wider = new Llama2cSampler(new SamplingParams(1, 1f, 0.85f, 3L)); // {0.6, 0.3}
        boolean sawSecond = false;
        for (int i = 0; i < 2000; i++) {
            int x = wider.sample(logits.clone());
            assertTrue(x == 1 || x == 2, "token " + x + " is outside the 0.85 nucleus");
            sawSecond |= x == 1;
        }
        assertTrue(sawSecond);
    }

    @Test
    void lowTemperatureSharpensTowardsGreedy() {
        float[] logits = {1f, 2f, 1.5f};
        Llama2cSampler s = new Llama2cSampler(new SamplingParams(1, 0.01f, 1f, 5L));
        for (int i = 0; i < 500; i++) {
            assertEquals(1, s.sample(logits.clone()));
        }
    }

    @Test
    void invalidParametersAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new SamplingParams(0, 0f, 1f, null));
        assertThrows(IllegalArgumentException.class, () -> new SamplingParams(5, -1f, 1f, null));
        assertThrows(IllegalArgumentException.class, () -> new SamplingParams(5, Float.NaN, 1f, null));
        assertThrows(IllegalArgumentException.class, () -> new SamplingParams(5, 0.5f, 0f, null));
        assertThrows(IllegalArgumentException.class, () -> new SamplingParams(5, 0.5f, 1.5f, null));
    }
}
