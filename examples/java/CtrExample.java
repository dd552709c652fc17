/*
 * The CTR example from Java (the C version is examples/c/ctr_demo.c): train a small DCN-v2 on the
 * engine's synthetic Criteo-shaped stream, save the exported inference graph, load it back, and
 * serve batch-1 requests from a thread pool; print held-out AUC and latency.
 *
 * Usage: java -Ddeepseek.jni=/abs/path/libdeepseek_jni.so -cp <classes> CtrExample [work_dir]
 */
import ai.libdeepseek.Attrs;
import ai.libdeepseek.CtrGenerator;
import ai.libdeepseek.Deepseek;
import ai.libdeepseek.ExecOptions;
import ai.libdeepseek.Executor;
import ai.libdeepseek.Graph;
import ai.libdeepseek.Metrics;
import ai.libdeepseek.Tensor;
import ai.libdeepseek.Trainer;
import ai.libdeepseek.TrainerOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

public final class CtrExample {
    private static final long VOCAB = 1_000;         // ids per field: example-sized tables
    private static final int BATCH = 256;
    private static final int STEPS = 300;
    private static final int EVAL_N = 5_000;
    private static final int SERVE_THREADS = 4;
    private static final int REQUESTS_PER_THREAD = 500;
    private static final long STREAM_SEED = 2026;     // the synthetic world: its seed fixes the true model
    private static final long HELD_OUT_AT = 1L << 40; // held-out samples start here in the stream
    private static final String[] TRAIN_FEEDS = {"dense", "ids", "label"};
    private static final String[] SERVE_FEEDS = {"dense", "ids"};

    private CtrExample() {}

    public static void main(String[] args) throws Exception {
        Path work = Path.of(args.length > 0 ? args[0] : "build/java/ctr-example");
        Files.createDirectories(work);
        Path modelPath = work.resolve("dcn_v2.dsg");
        long[] vocab = new long[CtrGenerator.NUM_FIELDS];
        Arrays.fill(vocab, VOCAB);
        System.out.printf("libdeepseek %s from Java: DCN-v2 on a synthetic CTR stream (26 fields x %d ids)%n",
                Deepseek.version(), VOCAB);

        try (CtrGenerator evalGen = new CtrGenerator(STREAM_SEED, vocab, Double.NaN)) {
            evalGen.seek(HELD_OUT_AT);
            try (CtrGenerator.Batch eval = evalGen.next(EVAL_N)) {
                double oracle = Metrics.auc(eval.probs(), eval.labels());

                // Train, export, save.
                double trainedAuc;
                long t0 = System.nanoTime();
                try (Graph model = build(vocab);
                        Attrs sched = new Attrs().setInt("total_steps", STEPS).setFloat("min_lr", 0.0);
                        TrainerOptions opts = new TrainerOptions()
                                .optimizer("adam", null).lr(2e-3)
                                .sparseOptimizer("rowwise_adagrad", null).sparseLr(0.05)
                                .schedule("cosine", sched);
                        Trainer trainer = new Trainer(model, "loss", opts);
                        CtrGenerator stream = new CtrGenerator(STREAM_SEED, vocab, Double.NaN)) {
                    double window = 0;
                    for (int s = 0; s < STEPS; s++) {
                        try (CtrGenerator.Batch b = stream.next(BATCH, false)) {
                            window += trainer.step(TRAIN_FEEDS, new Tensor[] {b.dense(), b.ids(), b.labels()});
                        }
                        if ((s + 1) % 100 == 0) {
                            System.out.printf("  step %3d  loss %.4f  held-out AUC %.4f%n", s + 1, window / 100,
                                    heldOutAuc(trainer, eval));
                            window = 0;
                        }
                    }
                    trainedAuc = heldOutAuc(trainer, eval);
                    try (Graph served = trainer.export("prob")) {
                        served.save(modelPath);
                    }
                }
                double trainSeconds = (System.nanoTime() - t0) / 1e9;

                // Load as a service would, and serve from a thread pool.
                try (Graph loaded = Graph.load(modelPath);
                        ExecOptions xo = new ExecOptions().interOpThreads(1); // one request per thread
                        Executor ex = new Executor(loaded, xo)) {
                    double servedAuc;
                    Tensor[] all = ex.run(SERVE_FEEDS, new Tensor[] {eval.dense(), eval.ids()}, "prob");
                    try (Tensor prob = all[0]) {
                        servedAuc = Metrics.auc(prob, eval.labels());
                    }
                    long[] lat = serve(ex, eval);
                    Arrays.sort(lat);
                    int n = lat.length;
                    System.out.printf("%nresults on %d held-out samples%n", EVAL_N);
                    System.out.printf("  AUC  DCN-v2 %.4f   (reloaded graph %.4f)   oracle %.4f%n", trainedAuc, servedAuc,
                            oracle);
                    System.out.printf("  training: %d steps x %d samples in %.1f s%n", STEPS, BATCH, trainSeconds);
                    System.out.printf("  serving, %d threads x %d requests of 1 sample: p50 %.1f us, p99 %.1f us%n",
                            SERVE_THREADS, REQUESTS_PER_THREAD, lat[n / 2] / 1e3, lat[n * 99 / 100] / 1e3);
                    if (Math.abs(servedAuc - trainedAuc) > 1e-6 || trainedAuc < 0.6) {
                        throw new IllegalStateException("the served model does not score as trained");
                    }
                }
            }
        }
        System.out.printf("  live handles at exit: %d%n", Deepseek.liveObjects());
        if (Deepseek.liveObjects() != 0) System.exit(1);
    }

    private static Graph build(long[] vocab) {
        try (Attrs a = new Attrs()
                .setInts("vocab_sizes", vocab)
                .setInt("embed_dim", 8)
                .setInts("mlp", 64, 32)
                .setInt("seed", 7)) {
            return Graph.build("dcn_v2", a);
        }
    }

    private static double heldOutAuc(Trainer trainer, CtrGenerator.Batch eval) {
        Tensor[] out = trainer.evaluate(TRAIN_FEEDS, new Tensor[] {eval.dense(), eval.ids(), eval.labels()}, "prob");
        try (Tensor prob = out[0]) {
            return Metrics.auc(prob, eval.labels());
        }
    }

    /** Batch-1 requests (row views of the held-out set) from a pool; returns each latency in ns. */
    private static long[] serve(Executor ex, CtrGenerator.Batch eval) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(SERVE_THREADS);
        try {
            List<Future<long[]>> parts = new ArrayList<>();
            for (int t = 0; t < SERVE_THREADS; t++) {
                final long offset = t * 997L;
                parts.add(pool.submit(() -> {
                    long[] lat = new long[REQUESTS_PER_THREAD];
                    for (int i = 0; i < REQUESTS_PER_THREAD; i++) {
                        long r = (offset + i) % EVAL_N;
                        long t0 = System.nanoTime();
                        try (Tensor d = eval.dense().slice(0, r, r + 1, 1); Tensor ids = eval.ids().slice(0, r, r + 1, 1)) {
                            Tensor[] out = ex.run(SERVE_FEEDS, new Tensor[] {d, ids}, "prob");
                            out[0].close();
                        }
                        lat[i] = System.nanoTime() - t0;
                    }
                    return lat;
                }));
            }
            long[] all = new long[SERVE_THREADS * REQUESTS_PER_THREAD];
            for (int t = 0; t < SERVE_THREADS; t++) {
                System.arraycopy(parts.get(t).get(), 0, all, t * REQUESTS_PER_THREAD, REQUESTS_PER_THREAD);
            }
            return all;
        } finally {
            pool.shutdown();
        }
    }
}
