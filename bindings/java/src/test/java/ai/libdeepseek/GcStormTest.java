package ai.libdeepseek;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * 100,000 batch-1 predicts while another thread calls System.gc() in a loop: every checked output
 * stays exact, and the objects dropped without close() are freed by the Cleaner and counted as
 * leaks, leaving nothing live.
 */
@ExtendWith(NoLiveObjects.class)
class GcStormTest {
    private static final int CALLS = 100_000;
    private static final int DROP_EVERY = 1_000;

    @Test
    void hundredThousandCallsUnderAGcStorm() throws Exception {
        long leakedBefore = Deepseek.leakedHandles();
        int dropped = 0;
        AtomicBoolean stop = new AtomicBoolean();
        Thread storm = new Thread(() -> {
            while (!stop.get()) {
                System.gc();
                try {
                    Thread.sleep(1);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "gc-storm");
        long gcRuns = 0;
        try (Graph g = Scenario.buildModel();
                ExecOptions o = new ExecOptions().interOpThreads(1);
                Executor ex = new Executor(g, o);
                Tensor dense = Scenario.dense();
                Tensor ids = Scenario.ids();
                Tensor d1 = dense.slice(0, 3, 4, 1);
                Tensor i1 = ids.slice(0, 3, 4, 1)) {
            Tensor[] feeds = {d1, i1};
            float[] want = firstOutput(ex.run(Scenario.INFER_FEEDS, feeds, "prob"));
            storm.start();
            for (int i = 0; i < CALLS; i++) {
                Tensor[] out = ex.run(Scenario.INFER_FEEDS, feeds, "prob");
                if (i % DROP_EVERY == 0) {
                    // Dropped without close(): only the Cleaner can free it. Also drop an input.
                    Tensor.of(new float[] {i}, 1);
                    dropped += 2;
                } else if (i % 97 == 0) {
                    assertArrayEquals(want, firstOutput(out), "call " + i);
                } else {
                    out[0].close();
                }
            }
        } finally {
            stop.set(true);
            storm.join();
        }
        // Wait (bounded) for the Cleaner to reach every dropped object.
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (Deepseek.leakedHandles() - leakedBefore < dropped && System.nanoTime() < deadline) {
            System.gc();
            Thread.sleep(20);
            gcRuns++;
        }
        assertEquals(dropped, Deepseek.leakedHandles() - leakedBefore, "leaks counted (after " + gcRuns + " extra GCs)");
        assertEquals(0, Deepseek.liveObjects(), "the Cleaner freed every dropped handle");
        assertTrue(dropped > 0);
    }

    private static float[] firstOutput(Tensor[] out) {
        try (Tensor p = out[0]) {
            return p.toFloatArray();
        }
    }
}
