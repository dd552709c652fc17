/* The Go binding's C shims: see shim.h for why each exists. */
#include "shim.h"

#include <stdio.h>
#include <string.h>

/* Copies this thread's last error on failure; NULL on success. Must run in the failing call. */
static char *dsgo_err(DsStatus s) {
    if (s == DS_STATUS_OK) return NULL;
    const char *m = ds_last_error();
    return strdup(m ? m : "");
}

#define DSGO_RET(call)             \
    do {                           \
        DsStatus s_ = (call);      \
        *err = dsgo_err(s_);       \
        return s_;                 \
    } while (0)

/* Name arrays up to this size live on the stack; longer ones are malloc'd. */
#define DSGO_SMALL 16

/* Points names[0..n) at the n NUL-terminated strings packed one after another in blob. */
static void dsgo_split(const char *blob, size_t n, const char **names) {
    for (size_t i = 0; i < n; i++) {
        names[i] = blob;
        blob += strlen(blob) + 1;
    }
}

/* A pointer array for n names: the caller's stack array when it fits, else the heap. */
static const char **dsgo_names(const char **small, size_t n) {
    if (n <= DSGO_SMALL) return small;
    return malloc(n * sizeof(char *));
}

static DsStatus dsgo_oom(char **err) {
    *err = strdup("deepseek-go: out of memory for the name list");
    return DS_STATUS_OUT_OF_MEMORY;
}

/* Runs the two-call size protocol inside one C call; *out_text is malloc'd on success. */
#define DSGO_TEXT(fn, obj)                                         \
    do {                                                           \
        size_t need_ = 0;                                          \
        *out_text = NULL;                                          \
        DsStatus s_ = fn(obj, NULL, 0, &need_);                    \
        if (s_ != DS_STATUS_OK && s_ != DS_STATUS_BUFFER_TOO_SMALL) DSGO_RET(s_); \
        char *buf_ = malloc(need_ ? need_ : 1);                    \
        if (!buf_) return dsgo_oom(err);                           \
        s_ = fn(obj, buf_, need_, &need_);                         \
        *err = dsgo_err(s_);                                       \
        if (s_ != DS_STATUS_OK) free(buf_);                        \
        else *out_text = buf_;                                     \
        return s_;                                                 \
    } while (0)

DsStatus dsgo_check_abi(uint32_t expected, char **err) { DSGO_RET(ds_check_abi(expected)); }
DsStatus dsgo_set_num_threads(int32_t n, char **err) { DSGO_RET(ds_set_num_threads(n)); }
DsStatus dsgo_get_num_threads(int32_t *out, char **err) { DSGO_RET(ds_get_num_threads(out)); }

/* ---- tensors ---- */

DsStatus dsgo_tensor_from_data(DsDtype dtype, const int64_t *dims, size_t ndim, const void *data, size_t nbytes,
                               DsTensor **out, char **err) {
    DSGO_RET(ds_tensor_from_data(dtype, dims, ndim, data, nbytes, out));
}

/* dtype, element count and rank in one crossing; the dims too when they fit in capacity. */
DsStatus dsgo_tensor_info(const DsTensor *t, DsDtype *dtype, int64_t *numel, size_t *ndim, int64_t *dims,
                          size_t capacity, char **err) {
    DsStatus s = ds_tensor_dtype(t, dtype);
    if (s == DS_STATUS_OK) s = ds_tensor_numel(t, numel);
    if (s == DS_STATUS_OK) s = ds_tensor_ndim(t, ndim);
    if (s == DS_STATUS_OK && dims != NULL && *ndim <= capacity) s = ds_tensor_shape(t, dims, capacity);
    DSGO_RET(s);
}

/* Copies out in bulk after checking the tensor's dtype is the Go slice's element type: the
   engine copies bytes, and Go's typed slices are what keeps an i64 from being read as f64. */
DsStatus dsgo_tensor_copy_out(const DsTensor *t, DsDtype expected, void *dst, size_t nbytes, char **err) {
    DsDtype dt = 0;
    DsStatus s = ds_tensor_dtype(t, &dt);
    if (s != DS_STATUS_OK) DSGO_RET(s);
    if (dt != expected) {
        char msg[160];
        const char *have = ds_dtype_name(dt), *want = ds_dtype_name(expected);
        snprintf(msg, sizeof msg, "deepseek-go: the tensor is %s but the Go slice holds %s", have ? have : "?",
                 want ? want : "?");
        *err = strdup(msg);
        return DS_STATUS_DTYPE_MISMATCH;
    }
    DSGO_RET(ds_tensor_copy_to(t, dst, nbytes));
}

/* ---- attributes ---- */

DsStatus dsgo_attrs_create(DsAttrs **out, char **err) { DSGO_RET(ds_attrs_create(out)); }
DsStatus dsgo_attrs_set_int(DsAttrs *a, const char *name, int64_t v, char **err) {
    DSGO_RET(ds_attrs_set_int(a, name, v));
}
DsStatus dsgo_attrs_set_float(DsAttrs *a, const char *name, double v, char **err) {
    DSGO_RET(ds_attrs_set_float(a, name, v));
}
DsStatus dsgo_attrs_set_bool(DsAttrs *a, const char *name, bool v, char **err) {
    DSGO_RET(ds_attrs_set_bool(a, name, v));
}
DsStatus dsgo_attrs_set_ints(DsAttrs *a, const char *name, const int64_t *v, size_t len, char **err) {
    DSGO_RET(ds_attrs_set_ints(a, name, v, len));
}
DsStatus dsgo_attrs_set_string(DsAttrs *a, const char *name, const char *v, char **err) {
    DSGO_RET(ds_attrs_set_string(a, name, v));
}

/* ---- graphs ---- */

DsStatus dsgo_model_build(const char *name, const DsAttrs *attrs, DsGraph **out, char **err) {
    DSGO_RET(ds_model_build(name, attrs, out));
}
DsStatus dsgo_graph_load(const char *path, DsGraph **out, char **err) { DSGO_RET(ds_graph_load(path, out)); }
DsStatus dsgo_graph_save(const DsGraph *g, const char *path, char **err) { DSGO_RET(ds_graph_save(g, path)); }
DsStatus dsgo_graph_num_ops(const DsGraph *g, size_t *out, char **err) { DSGO_RET(ds_graph_num_ops(g, out)); }
DsStatus dsgo_graph_dump(const DsGraph *g, char **out_text, char **err) { DSGO_TEXT(ds_graph_dump, g); }

/* ---- executors ---- */

DsStatus dsgo_exec_options_new(DsExecOptions **out, char **err) { DSGO_RET(ds_exec_options_new(out)); }
DsStatus dsgo_exec_options_set_opt_level(DsExecOptions *o, int32_t level, char **err) {
    DSGO_RET(ds_exec_options_set_opt_level(o, level));
}
DsStatus dsgo_exec_options_set_device(DsExecOptions *o, DsDeviceKind kind, int32_t index, char **err) {
    DSGO_RET(ds_exec_options_set_device(o, kind, index));
}
DsStatus dsgo_exec_options_set_inter_op_threads(DsExecOptions *o, int32_t n, char **err) {
    DSGO_RET(ds_exec_options_set_inter_op_threads(o, n));
}
DsStatus dsgo_executor_new(const DsGraph *g, const DsExecOptions *o, DsExecutor **out, char **err) {
    DSGO_RET(ds_executor_new(g, o, out));
}

DsStatus dsgo_executor_run(const DsExecutor *ex, const char *feed_blob, const DsTensor *const *feeds, size_t n_feeds,
                           const char *fetch_blob, size_t n_fetches, const DsCancelToken *cancel, DsRunStats *stats,
                           DsTensor **out, char **err) {
    const char *small_feeds[DSGO_SMALL], *small_fetches[DSGO_SMALL];
    const char **fn = dsgo_names(small_feeds, n_feeds), **tn = dsgo_names(small_fetches, n_fetches);
    DsStatus s;
    if (!fn || !tn) {
        s = dsgo_oom(err);
    } else {
        dsgo_split(feed_blob, n_feeds, fn);
        dsgo_split(fetch_blob, n_fetches, tn);
        s = ds_executor_run_with(ex, fn, feeds, n_feeds, tn, n_fetches, cancel, stats, out);
        *err = dsgo_err(s);
    }
    if (fn != small_feeds) free(fn);
    if (tn != small_fetches) free(tn);
    return s;
}

DsStatus dsgo_cancel_token_new(DsCancelToken **out, char **err) { DSGO_RET(ds_cancel_token_new(out)); }
DsStatus dsgo_cancel_token_cancel(const DsCancelToken *t, char **err) { DSGO_RET(ds_cancel_token_cancel(t)); }
DsStatus dsgo_cancel_token_reset(const DsCancelToken *t, char **err) { DSGO_RET(ds_cancel_token_reset(t)); }
DsStatus dsgo_cancel_token_is_cancelled(const DsCancelToken *t, bool *out, char **err) {
    DSGO_RET(ds_cancel_token_is_cancelled(t, out));
}

/* ---- trainers ---- */

DsStatus dsgo_trainer_options_new(DsTrainerOptions **out, char **err) { DSGO_RET(ds_trainer_options_new(out)); }
DsStatus dsgo_trainer_options_set_optimizer(DsTrainerOptions *o, const char *name, const DsAttrs *a, char **err) {
    DSGO_RET(ds_trainer_options_set_optimizer(o, name, a));
}
DsStatus dsgo_trainer_options_set_sparse_optimizer(DsTrainerOptions *o, const char *name, const DsAttrs *a,
                                                   char **err) {
    DSGO_RET(ds_trainer_options_set_sparse_optimizer(o, name, a));
}
DsStatus dsgo_trainer_options_set_lr(DsTrainerOptions *o, double lr, char **err) {
    DSGO_RET(ds_trainer_options_set_lr(o, lr));
}
DsStatus dsgo_trainer_options_set_sparse_lr(DsTrainerOptions *o, double lr, char **err) {
    DSGO_RET(ds_trainer_options_set_sparse_lr(o, lr));
}
DsStatus dsgo_trainer_options_set_schedule(DsTrainerOptions *o, const char *name, const DsAttrs *a, char **err) {
    DSGO_RET(ds_trainer_options_set_schedule(o, name, a));
}
DsStatus dsgo_trainer_options_set_clip_norm(DsTrainerOptions *o, double max_norm, char **err) {
    DSGO_RET(ds_trainer_options_set_clip_norm(o, max_norm));
}
DsStatus dsgo_trainer_options_set_checkpoints(DsTrainerOptions *o, const char *dir, int64_t every, int64_t keep,
                                              char **err) {
    DSGO_RET(ds_trainer_options_set_checkpoints(o, dir, every, keep));
}
DsStatus dsgo_trainer_options_set_exec(DsTrainerOptions *o, const DsExecOptions *x, char **err) {
    DSGO_RET(ds_trainer_options_set_exec(o, x));
}
DsStatus dsgo_trainer_options_set_seed(DsTrainerOptions *o, uint64_t seed, char **err) {
    DSGO_RET(ds_trainer_options_set_seed(o, seed));
}
DsStatus dsgo_trainer_new(const DsGraph *g, const char *loss, const DsTrainerOptions *o, DsTrainer **out,
                          char **err) {
    DSGO_RET(ds_trainer_new(g, loss, o, out));
}

DsStatus dsgo_trainer_step(const DsTrainer *tr, const char *feed_blob, const DsTensor *const *feeds, size_t n_feeds,
                           double *loss, char **err) {
    const char *small[DSGO_SMALL];
    const char **fn = dsgo_names(small, n_feeds);
    if (!fn) return dsgo_oom(err);
    dsgo_split(feed_blob, n_feeds, fn);
    DsStatus s = ds_trainer_step(tr, fn, feeds, n_feeds, loss);
    *err = dsgo_err(s);
    if (fn != small) free(fn);
    return s;
}

DsStatus dsgo_trainer_evaluate(const DsTrainer *tr, const char *feed_blob, const DsTensor *const *feeds,
                               size_t n_feeds, const char *fetch_blob, size_t n_fetches, DsTensor **out, char **err) {
    const char *small_feeds[DSGO_SMALL], *small_fetches[DSGO_SMALL];
    const char **fn = dsgo_names(small_feeds, n_feeds), **tn = dsgo_names(small_fetches, n_fetches);
    DsStatus s;
    if (!fn || !tn) {
        s = dsgo_oom(err);
    } else {
        dsgo_split(feed_blob, n_feeds, fn);
        dsgo_split(fetch_blob, n_fetches, tn);
        s = ds_trainer_evaluate(tr, fn, feeds, n_feeds, tn, n_fetches, out);
        *err = dsgo_err(s);
    }
    if (fn != small_feeds) free(fn);
    if (tn != small_fetches) free(tn);
    return s;
}

DsStatus dsgo_trainer_export(const DsTrainer *tr, const char *output_blob, size_t n_outputs, DsGraph **out,
                             char **err) {
    const char *small[DSGO_SMALL];
    const char **on = dsgo_names(small, n_outputs);
    if (!on) return dsgo_oom(err);
    dsgo_split(output_blob, n_outputs, on);
    DsStatus s = ds_trainer_export(tr, on, n_outputs, out);
    *err = dsgo_err(s);
    if (on != small) free(on);
    return s;
}

DsStatus dsgo_trainer_save_checkpoint(const DsTrainer *tr, char **err) { DSGO_RET(ds_trainer_save_checkpoint(tr)); }
DsStatus dsgo_trainer_step_count(const DsTrainer *tr, uint64_t *out, char **err) {
    DSGO_RET(ds_trainer_step_count(tr, out));
}
DsStatus dsgo_trainer_data_cursor(const DsTrainer *tr, uint64_t *out, char **err) {
    DSGO_RET(ds_trainer_data_cursor(tr, out));
}
DsStatus dsgo_trainer_set_data_cursor(const DsTrainer *tr, uint64_t cursor, char **err) {
    DSGO_RET(ds_trainer_set_data_cursor(tr, cursor));
}
DsStatus dsgo_trainer_report(const DsTrainer *tr, char **out_text, char **err) { DSGO_TEXT(ds_trainer_report, tr); }
DsStatus dsgo_trainer_param(const DsTrainer *tr, const char *name, DsTensor **out, char **err) {
    DSGO_RET(ds_trainer_param(tr, name, out));
}

/* ---- the CTR generator and metrics ---- */

/* DsCtrConfig is versioned by struct_size, so it is only ever built here, from this header. */
static DsStatus dsgo_ctr_config(DsCtrConfig *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->struct_size = sizeof *cfg;
    return ds_ctr_config_init(cfg);
}

DsStatus dsgo_ctr_config_default(int64_t *vocab_sizes, double *zipf, char **err) {
    DsCtrConfig cfg;
    DsStatus s = dsgo_ctr_config(&cfg);
    if (s == DS_STATUS_OK) {
        memcpy(vocab_sizes, cfg.vocab_sizes, sizeof cfg.vocab_sizes);
        *zipf = cfg.zipf_exponent;
    }
    DSGO_RET(s);
}

DsStatus dsgo_ctr_generator_new(const int64_t *vocab_sizes, double zipf, uint64_t seed, DsCtrGenerator **out,
                                char **err) {
    DsCtrConfig cfg;
    DsStatus s = dsgo_ctr_config(&cfg);
    if (s != DS_STATUS_OK) DSGO_RET(s);
    memcpy(cfg.vocab_sizes, vocab_sizes, sizeof cfg.vocab_sizes);
    cfg.zipf_exponent = zipf;
    DSGO_RET(ds_ctr_generator_new(&cfg, seed, out));
}

DsStatus dsgo_ctr_generator_next(const DsCtrGenerator *g, int64_t n, DsTensor **dense, DsTensor **ids,
                                 DsTensor **labels, DsTensor **probs, char **err) {
    DSGO_RET(ds_ctr_generator_next(g, n, dense, ids, labels, probs));
}
DsStatus dsgo_ctr_generator_cursor(const DsCtrGenerator *g, uint64_t *out, char **err) {
    DSGO_RET(ds_ctr_generator_cursor(g, out));
}
DsStatus dsgo_ctr_generator_seek(const DsCtrGenerator *g, uint64_t cursor, char **err) {
    DSGO_RET(ds_ctr_generator_seek(g, cursor));
}

DsStatus dsgo_metric_auc(const DsTensor *s, const DsTensor *l, double *out, char **err) {
    DSGO_RET(ds_metric_auc(s, l, out));
}
DsStatus dsgo_metric_log_loss(const DsTensor *p, const DsTensor *l, double *out, char **err) {
    DSGO_RET(ds_metric_log_loss(p, l, out));
}
DsStatus dsgo_metric_accuracy(const DsTensor *s, const DsTensor *l, double *out, char **err) {
    DSGO_RET(ds_metric_accuracy(s, l, out));
}
