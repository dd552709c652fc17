package ai.libdeepseek;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CyclicBarrier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** Engine errors reach Java with their code and the engine's own message. */
@ExtendWith(NoLiveObjects.class)
class ErrorsTest {
    private static Graph model;
    private static Executor executor;

    @BeforeAll
    static void build() {
        model = Scenario.buildModel();
        executor = new Executor(model);
    }

    @AfterAll
    static void free() {
        executor.close();
        model.close();
    }

    @Test
    void statusConstantsMatchTheHeader() throws IOException {
        String header = Files.readString(Path.of(System.getProperty("deepseek.repo", "../.."), "include/deepseek.h"));
        Matcher m = Pattern.compile("#define DS_STATUS_([A-Z_]+) (\\d+)").matcher(header);
        Map<String, Integer> codes = new HashMap<>();
        while (m.find()) codes.put(m.group(1), Integer.parseInt(m.group(2)));
        assertTrue(codes.size() >= 19, "header parsed: " + codes);
        for (Map.Entry<String, Integer> c : codes.entrySet()) {
            Status s = Status.valueOf(c.getKey());
            assertEquals(c.getValue(), s.value(), c.getKey());
            assertEquals(s, Status.of(c.getValue()));
        }
        assertEquals(codes.size(), Status.values().length - 1, "one constant per code, plus UNKNOWN");
        assertEquals(Status.UNKNOWN, Status.of(999));
    }

    @Test
    void wrongDtypeFeedNamesTheFeed() {
        try (Tensor dense = Scenario.dense(); Tensor idsAsFloat = Tensor.of(new float[8 * 3], 8, 3)) {
            DeepseekException e = assertThrows(DeepseekException.class,
                    () -> executor.run(Scenario.INFER_FEEDS, new Tensor[] {dense, idsAsFloat}, "prob"));
            assertEquals(Status.INVALID_DTYPE, e.code(), e.getMessage());
            // The engine's words, unchanged: which feed, what it expects, what it was given.
            assertTrue(e.engineMessage().contains("`ids` expects i64[batch, 3], given f32[8, 3]"), e.engineMessage());
        }
    }

    @Test
    void wrongShapeFeedNamesTheFeed() {
        try (Tensor dense = Tensor.of(new float[8 * 5], 8, 5); Tensor ids = Scenario.ids()) {
            DeepseekException e = assertThrows(DeepseekException.class,
                    () -> executor.run(Scenario.INFER_FEEDS, new Tensor[] {dense, ids}, "prob"));
            assertEquals(Status.SHAPE_MISMATCH, e.code(), e.getMessage());
            assertTrue(e.engineMessage().contains("`dense` expects f32[batch, 4], given [8, 5] (dimension 1 must be 4)"), e.engineMessage());
        }
    }

    @Test
    void unknownFetchIsNotFound() {
        try (Tensor dense = Scenario.dense(); Tensor ids = Scenario.ids()) {
            DeepseekException e = assertThrows(DeepseekException.class,
                    () -> executor.run(Scenario.INFER_FEEDS, new Tensor[] {dense, ids}, "no_such_output"));
            assertEquals(Status.NOT_FOUND, e.code(), e.getMessage());
            assertTrue(e.engineMessage().contains("no_such_output"), e.engineMessage());
        }
    }

    @Test
    void feedNamesAndTensorsMustPair() {
        try (Tensor dense = Scenario.dense()) {
            assertThrows(IllegalArgumentException.class,
                    () -> executor.run(Scenario.INFER_FEEDS, new Tensor[] {dense}, "prob"));
        }
    }

    @Test
    void unknownModelAndBadAttributeAreTheEnginesErrors() {
        DeepseekException e = assertThrows(DeepseekException.class, () -> Graph.build("no_such_model", null));
        assertTrue(e.engineMessage().contains("no_such_model"), e.engineMessage());
        try (Attrs a = new Attrs().setInt("embed_dim", -3)) {
            DeepseekException bad = assertThrows(DeepseekException.class, () -> Graph.build("dcn_v2", a));
            assertTrue(bad.engineMessage().contains("embed_dim"), bad.engineMessage());
        }
    }

    @Test
    void missingAndCorruptFilesAreNotFoundAndCorruptData(@TempDir Path tmp) throws IOException {
        Path missing = tmp.resolve("missing.dsg");
        DeepseekException e = assertThrows(DeepseekException.class, () -> Graph.load(missing));
        assertEquals(Status.NOT_FOUND, e.code(), e.getMessage());
        Path junk = tmp.resolve("junk.dsg");
        Files.write(junk, new byte[] {1, 2, 3, 4, 5});
        DeepseekException c = assertThrows(DeepseekException.class, () -> Graph.load(junk));
        assertEquals(Status.CORRUPT_DATA, c.code(), c.getMessage());
    }

    @Test
    void nonAsciiPathsSurviveTheCrossing(@TempDir Path tmp) {
        Path file = tmp.resolve("modèle-😀.dsg"); // a supplementary character: JNI's modified UTF-8 would break it
        model.save(file);
        assertTrue(Files.exists(file));
        try (Graph g = Graph.load(file)) {
            assertEquals(model.numOps(), g.numOps());
        }
    }

    @Test
    void abiMismatchNamesBothVersions() {
        DeepseekException e = assertThrows(DeepseekException.class, () -> Native.checkAbi(Native.ABI_VERSION + 1));
        assertEquals(Status.ABI_MISMATCH, e.code());
        String msg = e.engineMessage();
        assertTrue(msg.contains(String.valueOf(Native.ABI_VERSION)) && msg.contains(String.valueOf(Native.ABI_VERSION + 1)),
                msg);
        assertEquals(Native.ABI_VERSION, Deepseek.abiVersion());
        assertNotEquals("", Deepseek.version());
    }

    @Test
    void eachThreadGetsItsOwnMessage() throws Exception {
        // Two threads fail at the same moment with different errors; each exception must carry
        // its own call's message (the glue reads the thread-local message inside the same call).
        CyclicBarrier start = new CyclicBarrier(2);
        String[] got = new String[2];
        Throwable[] crash = new Throwable[2];
        Thread[] threads = new Thread[2];
        for (int t = 0; t < 2; t++) {
            final int me = t;
            threads[t] = new Thread(() -> {
                try {
                    start.await();
                    for (int k = 0; k < 200; k++) {
                        String name = me == 0 ? "model_zero_" + k : "model_one_" + k;
                        DeepseekException e = assertThrows(DeepseekException.class, () -> Graph.build(name, null));
                        if (!e.engineMessage().contains(name)) got[me] = e.engineMessage();
                    }
                } catch (Throwable x) {
                    crash[me] = x;
                }
            });
            threads[t].start();
        }
        for (Thread th : threads) th.join();
        assertNull(crash[0]);
        assertNull(crash[1]);
        assertNull(got[0], "thread 0 got another call's message");
        assertNull(got[1], "thread 1 got another call's message");
    }
}
