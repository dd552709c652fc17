package ai.libdeepseek;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/** The shared cross-language scenario (tests/scenario/README.md): its files and its model. */
final class Scenario {
    static final int BATCH = 8;
    static final int NUM_DENSE = 4;
    static final int NUM_FIELDS = 3;
    static final long[] VOCAB = {11, 7, 5};
    static final String[] INFER_FEEDS = {"dense", "ids"};
    static final String[] TRAIN_FEEDS = {"dense", "ids", "label"};

    private Scenario() {}

    static Path dir() {
        return Path.of(System.getProperty("deepseek.repo", "../..")).resolve("tests/scenario");
    }

    /** The raw bytes of a scenario file, read as little-endian. */
    static ByteBuffer bytes(String name) {
        try {
            return ByteBuffer.wrap(Files.readAllBytes(dir().resolve(name))).order(ByteOrder.LITTLE_ENDIAN);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read scenario file " + name, e);
        }
    }

    static float[] floats(String name) {
        ByteBuffer b = bytes(name);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    static double[] doubles(String name) {
        ByteBuffer b = bytes(name);
        double[] out = new double[b.remaining() / 8];
        b.asDoubleBuffer().get(out);
        return out;
    }

    static long[] longs(String name) {
        ByteBuffer b = bytes(name);
        long[] out = new long[b.remaining() / 8];
        b.asLongBuffer().get(out);
        return out;
    }

    static Tensor dense() {
        return Tensor.of(floats("dense.f32"), BATCH, NUM_DENSE);
    }

    static Tensor ids() {
        return Tensor.of(longs("ids.i64"), BATCH, NUM_FIELDS);
    }

    static Tensor labels() {
        return Tensor.of(floats("labels.f32"), BATCH);
    }

    /** Step 1: the seeded DCN-v2. */
    static Graph buildModel() {
        try (Attrs a = new Attrs()) {
            a.setInt("num_dense", NUM_DENSE)
                    .setInts("vocab_sizes", VOCAB)
                    .setInt("embed_dim", 4)
                    .setInt("cross_layers", 2)
                    .setInts("mlp", 8, 4)
                    .setInt("seed", 42);
            return Graph.build("dcn_v2", a);
        }
    }

    /** The "prob" output of {@code graph} on dense + ids. */
    static float[] predict(Graph graph, Tensor dense, Tensor ids) {
        try (Executor ex = new Executor(graph)) {
            Tensor[] out = ex.run(INFER_FEEDS, new Tensor[] {dense, ids}, "prob");
            try (Tensor prob = out[0]) {
                return prob.toFloatArray();
            }
        }
    }
}
