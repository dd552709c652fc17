package ai.libdeepseek;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Not a test: the figures the bindings issue asks for, from Java.
 *  1. per-call time of a batch-1 predict on the scenario model's exported graph (trained five
 *     steps as the scenario does), feeds made once, each call running, copying the probability
 *     out and closing the output (the loop every binding's benchmark runs);
 *  2. bulk copy of 1M floats into and out of a tensor, from a float[] and a direct ByteBuffer.
 * Each figure is the median of RUNS timed runs after a warm-up. Run with `make java-bench`
 * (JAVA_BENCH_ARGS=1 sets the engine's pool to one thread, so each run stays on the caller).
 */
public final class Bench {
    private static final int RUNS = 9;
    private static final int CALLS = 20_000;
    private static final int COPIES = 200;
    private static final int N = 1 << 20;

    private Bench() {}

    public static void main(String[] args) {
        if (args.length > 0) Deepseek.setNumThreads(Integer.parseInt(args[0]));
        System.out.printf("libdeepseek %s, Java %s, engine threads %d%n", Deepseek.version(),
                System.getProperty("java.version"), Deepseek.numThreads());
        try (Graph served = exportedScenarioModel()) {
            predict("default exec options", served, null);
            try (ExecOptions one = new ExecOptions().interOpThreads(1)) {
                predict("inter-op threads 1", served, one);
            }
        }
        tiny();
        copies();
        if (Deepseek.liveObjects() != 0) throw new IllegalStateException("leaked handles");
    }

    private static Graph exportedScenarioModel() {
        try (Graph model = Scenario.buildModel(); TrainerOptions o = new TrainerOptions()
                        .optimizer("adam", null).lr(0.01).sparseOptimizer("rowwise_adagrad", null).sparseLr(0.1).seed(1);
                Trainer t = new Trainer(model, "loss", o);
                Tensor dense = Scenario.dense(); Tensor ids = Scenario.ids(); Tensor labels = Scenario.labels()) {
            for (int s = 0; s < 5; s++) t.step(Scenario.TRAIN_FEEDS, new Tensor[] {dense, ids, labels});
            return t.export("prob");
        }
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }

    private static void predict(String label, Graph g, ExecOptions options) {
        float[] d = Arrays.copyOf(Scenario.floats("dense.f32"), Scenario.NUM_DENSE);
        long[] i = Arrays.copyOf(Scenario.longs("ids.i64"), Scenario.NUM_FIELDS);
        try (Executor ex = new Executor(g, options); Tensor dense = Tensor.of(d, 1, Scenario.NUM_DENSE);
                Tensor ids = Tensor.of(i, 1, Scenario.NUM_FIELDS)) {
            Tensor[] feeds = {dense, ids};
            String[] fetch = {"prob"};
            float[] prob = new float[1];
            double[] ns = new double[RUNS];
            for (int r = -2; r < RUNS; r++) { // two warm-up runs
                long t0 = System.nanoTime();
                for (int k = 0; k < CALLS; k++) {
                    try (Tensor out = ex.run(Scenario.INFER_FEEDS, feeds, fetch)[0]) {
                        out.copyTo(prob);
                    }
                }
                if (r >= 0) ns[r] = (System.nanoTime() - t0) / (double) CALLS;
            }
            System.out.printf("batch-1 predict (%s): median %.0f ns/call (runs of %d calls: min %.0f, max %.0f)%n",
                    label, median(ns), CALLS, Arrays.stream(ns).min().getAsDouble(), Arrays.stream(ns).max().getAsDouble());
        }
    }

    /** The binding's fixed cost per handle: create a 1-element tensor and close it. */
    private static void tiny() {
        float[] one = {1f};
        double[] ns = new double[RUNS];
        for (int r = -2; r < RUNS; r++) {
            long t0 = System.nanoTime();
            for (int k = 0; k < CALLS * 10; k++) Tensor.of(one, 1).close();
            if (r >= 0) ns[r] = (System.nanoTime() - t0) / (double) (CALLS * 10);
        }
        System.out.printf("1-element tensor create + close: median %.0f ns (min %.0f)%n", median(ns),
                Arrays.stream(ns).min().getAsDouble());
    }

    private interface Op {
        void run();
    }

    private static void rate(String label, Op op) {
        double[] gbs = new double[RUNS];
        for (int r = -2; r < RUNS; r++) {
            long t0 = System.nanoTime();
            for (int k = 0; k < COPIES; k++) op.run();
            double s = (System.nanoTime() - t0) / 1e9;
            if (r >= 0) gbs[r] = (double) COPIES * N * 4 / s / 1e9;
        }
        System.out.printf("%-40s median %6.2f GB/s (%.0f us per 1M floats)%n", label, median(gbs),
                N * 4 / median(gbs) / 1e3);
    }

    private static void copies() {
        float[] src = new float[N];
        for (int k = 0; k < N; k++) src[k] = k;
        float[] dst = new float[N];
        ByteBuffer buf = ByteBuffer.allocateDirect(N * 4).order(ByteOrder.nativeOrder());
        buf.asFloatBuffer().put(src);
        ByteBuffer out = ByteBuffer.allocateDirect(N * 4).order(ByteOrder.nativeOrder());
        rate("in:  float[] -> new tensor (1M f32)", () -> Tensor.of(src, N).close());
        rate("in:  direct ByteBuffer -> new tensor", () -> Tensor.fromBuffer(Dtype.F32, buf, N).close());
        try (Tensor t = Tensor.of(src, N)) {
            rate("out: tensor -> float[] (copyTo)", () -> t.copyTo(dst));
            rate("out: tensor -> direct ByteBuffer", () -> t.copyTo(out));
        }
        if (dst[N - 1] != N - 1 || out.getFloat((N - 1) * 4) != N - 1) throw new IllegalStateException("bad copy");
    }
}
