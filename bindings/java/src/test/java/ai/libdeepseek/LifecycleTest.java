package ai.libdeepseek;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Close, use after close, close while in use, free order and cancellation. */
@ExtendWith(NoLiveObjects.class)
class LifecycleTest {
    @Test
    void useAfterCloseThrowsIllegalStateNamingTheClass() {
        Tensor t = Tensor.of(new float[] {1, 2}, 2);
        t.close();
        assertTrue(t.isClosed());
        IllegalStateException e = assertThrows(IllegalStateException.class, t::shape);
        assertEquals("Tensor is closed", e.getMessage());
        assertThrows(IllegalStateException.class, () -> t.copyTo(new float[2]));

        Graph g = Scenario.buildModel();
        g.close();
        IllegalStateException ge = assertThrows(IllegalStateException.class, () -> new Executor(g));
        assertEquals("Graph is closed", ge.getMessage());

        Attrs a = new Attrs();
        a.close();
        assertEquals("Attrs is closed",
                assertThrows(IllegalStateException.class, () -> a.setInt("x", 1)).getMessage());
    }

    @Test
    void aClosedFeedIsRefusedBeforeTheEngineSeesIt() {
        try (Graph g = Scenario.buildModel(); Executor ex = new Executor(g); Tensor ids = Scenario.ids()) {
            Tensor dense = Scenario.dense();
            dense.close();
            assertEquals("Tensor is closed", assertThrows(IllegalStateException.class,
                    () -> ex.run(Scenario.INFER_FEEDS, new Tensor[] {dense, ids}, "prob")).getMessage());
            assertEquals(0, ex.inFlight(), "the executor's usage was given back");
            assertEquals(0, ids.inFlight(), "the other feed's usage was given back");
        }
    }

    @Test
    void doubleCloseIsANoOp() {
        long before = Deepseek.liveObjects();
        Tensor t = Tensor.of(new float[] {1}, 1);
        assertEquals(before + 1, Deepseek.liveObjects());
        t.close();
        t.close();
        assertEquals(before, Deepseek.liveObjects());
        CancelToken c = new CancelToken();
        c.close();
        c.close();
        assertEquals(before, Deepseek.liveObjects());
    }

    @Test
    void closeWaitsForTheCallInFlight() throws Exception {
        Tensor t = Tensor.of(new float[] {1, 2, 3}, 3);
        t.acquire(); // a call in flight, held open by the test
        long before = Deepseek.liveObjects();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread closer = new Thread(() -> {
            try {
                t.close();
            } catch (Throwable x) {
                failure.set(x);
            }
        });
        closer.start();
        closer.join(300);
        assertTrue(closer.isAlive(), "close() returned while a call was in flight");
        assertTrue(t.isClosed(), "new calls are refused as soon as closing begins");
        assertThrows(IllegalStateException.class, t::numel);
        assertEquals(before, Deepseek.liveObjects(), "nothing freed yet");
        t.release(); // the call returns
        closer.join(10_000);
        assertFalse(closer.isAlive());
        assertEquals(null, failure.get());
        assertEquals(before - 1, Deepseek.liveObjects(), "freed once the call returned");
    }

    @Test
    void closeWhileOtherThreadsRunWaitsAndNeverCrashes() throws Exception {
        try (Graph g = Scenario.buildModel(); Tensor dense = Scenario.dense(); Tensor ids = Scenario.ids()) {
            float[] want = Scenario.predict(g, dense, ids);
            Executor ex = new Executor(g);
            int threads = 4;
            CountDownLatch running = new CountDownLatch(threads);
            AtomicInteger good = new AtomicInteger();
            List<Throwable> wrong = new ArrayList<>();
            List<Thread> ts = new ArrayList<>();
            for (int k = 0; k < threads; k++) {
                Thread th = new Thread(() -> {
                    boolean first = true;
                    try {
                        for (;;) {
                            Tensor[] out = ex.run(Scenario.INFER_FEEDS, new Tensor[] {dense, ids}, "prob");
                            try (Tensor p = out[0]) {
                                assertArrayEquals(want, p.toFloatArray());
                            }
                            good.incrementAndGet();
                            if (first) running.countDown();
                            first = false;
                        }
                    } catch (IllegalStateException closed) {
                        if (!"Executor is closed".equals(closed.getMessage())) add(wrong, closed);
                    } catch (Throwable x) {
                        add(wrong, x);
                    }
                    if (first) running.countDown();
                });
                ts.add(th);
                th.start();
            }
            running.await();
            ex.close(); // must wait for the runs in flight, then make the others fail cleanly
            assertEquals(0, ex.inFlight());
            for (Thread th : ts) th.join(30_000);
            assertTrue(wrong.isEmpty(), "unexpected: " + wrong);
            assertTrue(good.get() >= threads, "every thread ran before the close");
        }
    }

    private static synchronized void add(List<Throwable> list, Throwable t) {
        list.add(t);
    }

    @Test
    void freeOrderDoesNotMatter() {
        // The engine reference-counts parents: an executor outlives its graph, outputs outlive the
        // executor, an exported graph outlives its trainer.
        Graph g = Scenario.buildModel();
        Executor ex = new Executor(g);
        g.close();
        try (Tensor dense = Scenario.dense(); Tensor ids = Scenario.ids()) {
            Tensor[] out = ex.run(Scenario.INFER_FEEDS, new Tensor[] {dense, ids}, "prob");
            ex.close();
            try (Tensor p = out[0]) {
                assertEquals(Scenario.BATCH, p.toFloatArray().length);
            }
        }
    }

    @Test
    void cancelledRunStopsWithCancelledAndTheExecutorKeepsWorking() {
        try (Graph g = Scenario.buildModel(); Executor ex = new Executor(g); CancelToken token = new CancelToken();
                Tensor dense = Scenario.dense(); Tensor ids = Scenario.ids()) {
            Tensor[] feeds = {dense, ids};
            String[] fetch = {"prob"};
            assertFalse(token.isCancelled());
            token.cancel();
            assertTrue(token.isCancelled());
            DeepseekException e = assertThrows(DeepseekException.class,
                    () -> ex.run(Scenario.INFER_FEEDS, feeds, fetch, token));
            assertEquals(Status.CANCELLED, e.code(), e.getMessage());
            token.reset();
            Tensor[] out = ex.run(Scenario.INFER_FEEDS, feeds, fetch, token);
            try (Tensor p = out[0]) {
                assertEquals(Scenario.BATCH, p.numel());
            }
        }
    }

    @Test
    void generatorDrawsDependOnlyOnTheIndex() {
        long[] vocab = new long[CtrGenerator.NUM_FIELDS];
        java.util.Arrays.fill(vocab, 50);
        try (CtrGenerator a = new CtrGenerator(7, vocab, Double.NaN); CtrGenerator b = new CtrGenerator(7, vocab, Double.NaN)) {
            try (CtrGenerator.Batch first = a.next(4); CtrGenerator.Batch second = a.next(4)) {
                assertEquals(8, a.cursor());
                assertArrayEquals(new long[] {4, CtrGenerator.NUM_DENSE}, first.dense().shape());
                b.seek(4);
                try (CtrGenerator.Batch again = b.next(4, false)) {
                    assertEquals(null, again.probs());
                    assertArrayEquals(second.ids().toLongArray(), again.ids().toLongArray());
                    assertArrayEquals(second.dense().toFloatArray(), again.dense().toFloatArray());
                }
            }
            vocab[0] = 0;
            DeepseekException e = assertThrows(DeepseekException.class, () -> new CtrGenerator(1, vocab, Double.NaN).close());
            assertEquals(Status.INVALID_ARGUMENT, e.code(), e.getMessage());
        }
    }
}
