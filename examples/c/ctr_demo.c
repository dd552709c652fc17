/*
 * The main demo, through the C ABI only: a recommendation model's whole life in one process.
 *
 *   1. stream Criteo-shaped click data from the engine's synthetic generator (13 dense
 *      features, 26 categorical fields with Zipf-like ids, labels from a known model);
 *   2. train a DCN-v2 (3 cross layers + a deep tower) with Adam on the dense layers and
 *      row-wise Adagrad on the embedding tables, printing step, loss, held-out AUC and
 *      samples per second, checkpointing as it goes;
 *   3. train logistic regression on the same stream as the baseline;
 *   4. export the inference graph, save it, load it back, and serve it from several
 *      threads: latency p50/p99 at batch 1 and throughput at batch 256;
 *   5. print AUC against logistic regression and the oracle (the true probabilities).
 *
 * Usage: ctr_demo [work_dir]   (default build/ctr-demo; its checkpoints are cleared first)
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "deepseek.h"

#define VOCAB 10000      /* ids per field: demo-sized tables (the benchmark uses 100,000) */
#define BATCH 512
#define DCN_STEPS 1500
#define LR_STEPS 1500
#define EVAL_N 20000
#define LOG_EVERY 250
#define SERVE_THREADS 4
#define REQUESTS_PER_THREAD 500
#define THROUGHPUT_BATCHES 40
#define STREAM_SEED 2026              /* the synthetic world: its seed fixes the true model */
#define HELD_OUT_AT (1ull << 40)      /* held-out samples start here in the stream */

/* Stops with the engine's message when a call fails. */
#define TRY(call)                                                                              \
    do {                                                                                       \
        DsStatus s_ = (call);                                                                  \
        if (s_ != DS_STATUS_OK) {                                                              \
            fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call,           \
                    ds_status_name(s_), ds_last_error());                                      \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void clear_dir(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];
    if (!d) return;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

/* A batch of the stream: dense [n,13], ids [n,26], labels [n], true probabilities [n]. */
typedef struct {
    DsTensor *dense, *ids, *labels, *probs;
} Batch;

static Batch next_batch(DsCtrGenerator *gen, int64_t n) {
    Batch b;
    TRY(ds_ctr_generator_next(gen, n, &b.dense, &b.ids, &b.labels, &b.probs));
    return b;
}

static void free_batch(Batch *b) {
    ds_tensor_free(b->dense);
    ds_tensor_free(b->ids);
    ds_tensor_free(b->labels);
    ds_tensor_free(b->probs);
}

static const char *FEEDS[3] = {"dense", "ids", "label"};

static DsGraph *build(const char *model) {
    DsAttrs *a = NULL;
    DsGraph *g = NULL;
    int64_t vocab[DS_CTR_NUM_FIELDS];
    int64_t mlp[2] = {256, 128};
    for (int f = 0; f < DS_CTR_NUM_FIELDS; f++) vocab[f] = VOCAB;
    TRY(ds_attrs_create(&a));
    TRY(ds_attrs_set_ints(a, "vocab_sizes", vocab, DS_CTR_NUM_FIELDS));
    TRY(ds_attrs_set_int(a, "embed_dim", 16));
    TRY(ds_attrs_set_ints(a, "mlp", mlp, 2));
    TRY(ds_attrs_set_int(a, "seed", 7));
    TRY(ds_model_build(model, a, &g));
    ds_attrs_free(a);
    return g;
}

/* Held-out AUC of a trainer's "prob" output. */
static double held_out_auc(DsTrainer *tr, const Batch *eval) {
    const char *fetch[1] = {"prob"};
    const DsTensor *in[3] = {eval->dense, eval->ids, eval->labels};
    DsTensor *prob[1] = {NULL};
    double auc = 0;
    TRY(ds_trainer_evaluate(tr, FEEDS, in, 3, fetch, 1, prob));
    TRY(ds_metric_auc(prob[0], eval->labels, &auc));
    ds_tensor_free(prob[0]);
    return auc;
}

/* Trains `model` for `steps` on the stream; prints progress; returns the trainer. */
static DsTrainer *train(const char *name, const char *model, int steps, const char *ckpt_dir, const Batch *eval) {
    DsGraph *g = build(model);
    DsTrainerOptions *o = NULL;
    DsAttrs *sched = NULL;
    TRY(ds_trainer_options_new(&o));
    TRY(ds_trainer_options_set_optimizer(o, "adam", NULL));
    TRY(ds_trainer_options_set_lr(o, 2e-3));
    TRY(ds_trainer_options_set_sparse_optimizer(o, "rowwise_adagrad", NULL));
    TRY(ds_trainer_options_set_sparse_lr(o, 0.05));
    TRY(ds_attrs_create(&sched));
    TRY(ds_attrs_set_int(sched, "total_steps", steps));
    TRY(ds_attrs_set_float(sched, "min_lr", 0.0));
    TRY(ds_trainer_options_set_schedule(o, "cosine", sched));
    ds_attrs_free(sched);
    if (ckpt_dir) TRY(ds_trainer_options_set_checkpoints(o, ckpt_dir, 500, 2));
    DsTrainer *tr = NULL;
    TRY(ds_trainer_new(g, "loss", o, &tr));
    ds_trainer_options_free(o);
    ds_graph_free(g);

    /* The training stream: its own seed, positioned at the trainer's data cursor (0 fresh). */
    DsCtrGenerator *gen = NULL;
    DsCtrConfig cfg;
    cfg.struct_size = sizeof cfg;
    TRY(ds_ctr_config_init(&cfg));
    for (int f = 0; f < DS_CTR_NUM_FIELDS; f++) cfg.vocab_sizes[f] = VOCAB;
    TRY(ds_ctr_generator_new(&cfg, STREAM_SEED, &gen));
    uint64_t cursor = 0;
    TRY(ds_trainer_data_cursor(tr, &cursor));
    TRY(ds_ctr_generator_seek(gen, cursor));

    double t0 = now(), window_loss = 0;
    int window = 0;
    uint64_t done = 0;
    TRY(ds_trainer_step_count(tr, &done));
    for (int s = (int)done; s < steps; s++) {
        Batch b = next_batch(gen, BATCH);
        const DsTensor *in[3] = {b.dense, b.ids, b.labels};
        double loss = 0;
        TRY(ds_trainer_step(tr, FEEDS, in, 3, &loss));
        free_batch(&b);
        window_loss += loss;
        window++;
        if ((s + 1) % LOG_EVERY == 0 || s + 1 == steps) {
            double t1 = now();
            printf("  %-6s step %4d  loss %.4f  held-out AUC %.4f  %7.0f samples/s\n", name, s + 1,
                   window_loss / window, held_out_auc(tr, eval), window * (double)BATCH / (t1 - t0));
            fflush(stdout);
            t0 = now();
            window_loss = 0;
            window = 0;
        }
    }
    ds_ctr_generator_free(gen);
    return tr;
}

/* ---- serving ---- */

typedef struct {
    const DsExecutor *ex;
    const Batch *pool;  /* requests are rows of this batch */
    int64_t offset;
    double *latencies;
    int failures;
} Server;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One request = one sample: slices of row r of the pool (views, no copy). */
static void *serve(void *arg) {
    Server *sv = arg;
    const char *fetch[1] = {"prob"};
    for (int i = 0; i < REQUESTS_PER_THREAD; i++) {
        int64_t r = (sv->offset + i) % EVAL_N;
        DsTensor *d = NULL, *ids = NULL, *out[1] = {NULL};
        double t0 = now();
        if (ds_tensor_slice(sv->pool->dense, 0, r, r + 1, 1, &d) != DS_STATUS_OK ||
            ds_tensor_slice(sv->pool->ids, 0, r, r + 1, 1, &ids) != DS_STATUS_OK) {
            sv->failures++;
        } else {
            const DsTensor *in[2] = {d, ids};
            if (ds_executor_run(sv->ex, FEEDS, in, 2, fetch, 1, out) != DS_STATUS_OK) sv->failures++;
        }
        sv->latencies[i] = now() - t0;
        ds_tensor_free(out[0]);
        ds_tensor_free(d);
        ds_tensor_free(ids);
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *work = argc > 1 ? argv[1] : "build/ctr-demo";
    char ckpt[512], model_path[512];
    mkdir(work, 0755);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoints", work);
    snprintf(model_path, sizeof model_path, "%s/dcn_v2.dsg", work);
    mkdir(ckpt, 0755);
    clear_dir(ckpt);
    printf("libdeepseek %s — CTR demo: DCN-v2 on a synthetic Criteo-shaped stream (26 fields x %d ids)\n",
           ds_version_string(), VOCAB);

    /* Held-out data: the same world (seed) as the training stream, far past anything trained
       on (the stream is counter-based, so seeking is free), with the true probabilities. */
    DsCtrGenerator *eval_gen = NULL;
    DsCtrConfig cfg;
    cfg.struct_size = sizeof cfg;
    TRY(ds_ctr_config_init(&cfg));
    for (int f = 0; f < DS_CTR_NUM_FIELDS; f++) cfg.vocab_sizes[f] = VOCAB;
    TRY(ds_ctr_generator_new(&cfg, STREAM_SEED, &eval_gen));
    TRY(ds_ctr_generator_seek(eval_gen, HELD_OUT_AT));
    Batch eval = next_batch(eval_gen, EVAL_N);
    ds_ctr_generator_free(eval_gen);
    double oracle = 0;
    TRY(ds_metric_auc(eval.probs, eval.labels, &oracle));

    printf("training DCN-v2 (3 cross layers, deep 256-128, 16-dim embeddings), batch %d, checkpoints in %s\n",
           BATCH, ckpt);
    double t_train = now();
    DsTrainer *dcn = train("dcn-v2", "dcn_v2", DCN_STEPS, ckpt, &eval);
    t_train = now() - t_train;
    double dcn_auc = held_out_auc(dcn, &eval);
    printf("training logistic regression (the baseline)\n");
    DsTrainer *lr = train("logreg", "logistic_regression", LR_STEPS, NULL, &eval);
    double lr_auc = held_out_auc(lr, &eval);
    ds_trainer_free(lr);

    /* Export for serving, save, and load back as a service would. */
    const char *outputs[1] = {"prob"};
    DsGraph *served = NULL, *loaded = NULL;
    TRY(ds_trainer_save_checkpoint(dcn));
    TRY(ds_trainer_export(dcn, outputs, 1, &served));
    TRY(ds_graph_save(served, model_path));
    ds_graph_free(served);
    ds_trainer_free(dcn);
    TRY(ds_graph_load(model_path, &loaded));
    DsExecOptions *xo = NULL;
    DsExecutor *ex = NULL;
    TRY(ds_exec_options_new(&xo));
    TRY(ds_exec_options_set_inter_op_threads(xo, 1)); /* one request per thread: no nested fan-out */
    TRY(ds_executor_new(loaded, xo, &ex));
    ds_exec_options_free(xo);
    ds_graph_free(loaded);
    printf("exported the inference graph to %s and loaded it back\n", model_path);

    /* The reloaded model scores the held-out set as the trained one did. */
    const char *fetch[1] = {"prob"};
    const DsTensor *in[2] = {eval.dense, eval.ids};
    DsTensor *prob[1] = {NULL};
    double served_auc = 0;
    TRY(ds_executor_run(ex, FEEDS, in, 2, fetch, 1, prob));
    TRY(ds_metric_auc(prob[0], eval.labels, &served_auc));
    ds_tensor_free(prob[0]);

    /* Latency: SERVE_THREADS threads, one sample per request. */
    pthread_t th[SERVE_THREADS];
    Server sv[SERVE_THREADS];
    double *lat = malloc(sizeof(double) * SERVE_THREADS * REQUESTS_PER_THREAD);
    double t_serve = now();
    for (int t = 0; t < SERVE_THREADS; t++) {
        sv[t] = (Server){ex, &eval, (int64_t)t * 997, lat + t * REQUESTS_PER_THREAD, 0};
        pthread_create(&th[t], NULL, serve, &sv[t]);
    }
    int failures = 0;
    for (int t = 0; t < SERVE_THREADS; t++) {
        pthread_join(th[t], NULL);
        failures += sv[t].failures;
    }
    t_serve = now() - t_serve;
    int n_req = SERVE_THREADS * REQUESTS_PER_THREAD;
    qsort(lat, (size_t)n_req, sizeof(double), cmp_double);
    double p50 = lat[n_req / 2] * 1e6, p99 = lat[n_req * 99 / 100] * 1e6;
    free(lat);

    /* Throughput: batches of 256 from one thread (the ops parallelise inside). */
    DsTensor *d256 = NULL, *i256 = NULL;
    TRY(ds_tensor_slice(eval.dense, 0, 0, 256, 1, &d256));
    TRY(ds_tensor_slice(eval.ids, 0, 0, 256, 1, &i256));
    const DsTensor *in256[2] = {d256, i256};
    double t_tp = now();
    for (int k = 0; k < THROUGHPUT_BATCHES; k++) {
        DsTensor *o[1] = {NULL};
        TRY(ds_executor_run(ex, FEEDS, in256, 2, fetch, 1, o));
        ds_tensor_free(o[0]);
    }
    t_tp = now() - t_tp;
    ds_tensor_free(d256);
    ds_tensor_free(i256);
    ds_executor_free(ex);
    free_batch(&eval);

    printf("\nresults on %d held-out samples\n", EVAL_N);
    printf("  AUC  DCN-v2 %.4f   (reloaded graph %.4f)\n", dcn_auc, served_auc);
    printf("  AUC  logistic regression %.4f   DCN-v2 - LR = %+.4f\n", lr_auc, dcn_auc - lr_auc);
    printf("  AUC  oracle (true probabilities) %.4f   oracle - DCN-v2 = %.4f\n", oracle, oracle - dcn_auc);
    printf("  training: %d steps x %d samples in %.1f s\n", DCN_STEPS, BATCH, t_train);
    printf("  serving, %d threads x %d requests of 1 sample: p50 %.0f us, p99 %.0f us, %.0f requests/s%s\n",
           SERVE_THREADS, REQUESTS_PER_THREAD, p50, p99, n_req / t_serve, failures ? " (FAILURES)" : "");
    printf("  serving, batch 256: %.0f samples/s\n", THROUGHPUT_BATCHES * 256 / t_tp);
    printf("  live handles at exit: %llu\n", (unsigned long long)ds_live_objects());
    return failures != 0 || ds_live_objects() != 0;
}
