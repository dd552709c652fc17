package ai.libdeepseek;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** 64 threads share one executor; every output equals the single-threaded run bit for bit. */
@ExtendWith(NoLiveObjects.class)
class ConcurrencyTest {
    private static final int THREADS = 64;
    private static final int RUNS_PER_THREAD = 200;

    @Test
    void sixtyFourThreadsShareOneExecutor() throws Exception {
        try (Graph g = Scenario.buildModel(); Executor ex = new Executor(g);
                Tensor dense = Scenario.dense(); Tensor ids = Scenario.ids()) {
            // Batch-1 requests: row r of the scenario batch, as views.
            Tensor[][] rows = new Tensor[Scenario.BATCH][];
            int[][] want = new int[Scenario.BATCH][];
            for (int r = 0; r < Scenario.BATCH; r++) {
                rows[r] = new Tensor[] {dense.slice(0, r, r + 1, 1), ids.slice(0, r, r + 1, 1)};
                want[r] = bits(predictOne(ex, rows[r]));
            }
            ExecutorService pool = Executors.newFixedThreadPool(THREADS);
            try {
                List<Future<Integer>> results = new ArrayList<>();
                for (int t = 0; t < THREADS; t++) {
                    final int me = t;
                    Callable<Integer> job = () -> {
                        for (int i = 0; i < RUNS_PER_THREAD; i++) {
                            int r = (me + i) % Scenario.BATCH;
                            assertArrayEquals(want[r], bits(predictOne(ex, rows[r])), "thread " + me + " row " + r);
                        }
                        return RUNS_PER_THREAD;
                    };
                    results.add(pool.submit(job));
                }
                int total = 0;
                for (Future<Integer> f : results) total += f.get();
                assertEquals(THREADS * RUNS_PER_THREAD, total);
            } finally {
                pool.shutdown();
                for (Tensor[] row : rows) {
                    row[0].close();
                    row[1].close();
                }
            }
        }
    }

    private static float[] predictOne(Executor ex, Tensor[] feeds) {
        Tensor[] out = ex.run(Scenario.INFER_FEEDS, feeds, "prob");
        try (Tensor p = out[0]) {
            return p.toFloatArray();
        }
    }

    private static int[] bits(float[] v) {
        int[] out = new int[v.length];
        for (int i = 0; i < v.length; i++) out[i] = Float.floatToRawIntBits(v[i]);
        return out;
    }
}
