package ai.libdeepseek;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The shared cross-language scenario, step by step as tests/c/test_scenario.c runs it; every
 * number must equal the expected files bit for bit (compared as raw bits, so -0.0 vs 0.0 or a
 * NaN payload would fail too).
 */
@ExtendWith(NoLiveObjects.class)
class ScenarioTest {
    private static void assertBitwise(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what + ": length");
        for (int i = 0; i < want.length; i++) {
            assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]),
                    what + "[" + i + "]: want " + want[i] + ", got " + got[i]);
        }
    }

    @Test
    void matchesTheExpectedFilesBitForBit(@TempDir Path tmp) {
        float[] wantInitial = Scenario.floats("expected_prob_initial.f32");
        double[] wantLosses = Scenario.doubles("expected_losses.f64");
        float[] wantTrained = Scenario.floats("expected_prob_trained.f32");
        assertEquals(Scenario.BATCH, wantInitial.length);
        assertEquals(5, wantLosses.length);

        try (Tensor dense = Scenario.dense(); Tensor ids = Scenario.ids(); Tensor labels = Scenario.labels();
                Graph model = Scenario.buildModel()) {
            // 1-2. Build and infer with the seeded initial weights.
            assertBitwise(wantInitial, Scenario.predict(model, dense, ids), "initial prob");

            // 3. Train five steps on the same batch.
            double[] losses = new double[5];
            try (TrainerOptions o = new TrainerOptions()
                            .optimizer("adam", null)
                            .lr(0.01)
                            .sparseOptimizer("rowwise_adagrad", null)
                            .sparseLr(0.1)
                            .seed(1);
                    Trainer trainer = new Trainer(model, "loss", o)) {
                Tensor[] batch = {dense, ids, labels};
                for (int s = 0; s < 5; s++) losses[s] = trainer.step(Scenario.TRAIN_FEEDS, batch);
                assertTrue(losses[4] < losses[0], "the loss falls");
                for (int s = 0; s < 5; s++) {
                    assertEquals(Double.doubleToRawLongBits(wantLosses[s]), Double.doubleToRawLongBits(losses[s]),
                            "loss " + s + ": want " + wantLosses[s] + ", got " + losses[s]);
                }

                // 4. Export and infer.
                try (Graph served = trainer.export("prob")) {
                    assertBitwise(wantTrained, Scenario.predict(served, dense, ids), "trained prob");

                    // 5. Save, reload, infer again.
                    Path file = tmp.resolve("scenario_java.dsg");
                    served.save(file);
                    try (Graph loaded = Graph.load(file)) {
                        assertBitwise(wantTrained, Scenario.predict(loaded, dense, ids), "reloaded prob");
                    }
                }
            }
        }
        // 6. Everything freed.
        assertEquals(0, Deepseek.liveObjects());
    }
}
