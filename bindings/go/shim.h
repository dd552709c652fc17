/*
 * C shims for the Go binding. ds_last_error() is thread-local and a goroutine may move to
 * another OS thread between two cgo calls, so every fallible call goes through one of these:
 * it calls the library and, in the same C call, copies the message of a failure into memory
 * from malloc (*err; NULL on success, so the success path allocates nothing). The Go side
 * frees it. Name lists travel as one Go buffer of NUL-terminated strings ("blob"), split into
 * a pointer array here, because cgo forbids passing Go memory that holds Go pointers.
 */
#ifndef DEEPSEEK_GO_SHIM_H
#define DEEPSEEK_GO_SHIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "deepseek.h"

DsStatus dsgo_check_abi(uint32_t expected, char **err);
DsStatus dsgo_set_num_threads(int32_t n, char **err);
DsStatus dsgo_get_num_threads(int32_t *out, char **err);

DsStatus dsgo_tensor_from_data(DsDtype dtype, const int64_t *dims, size_t ndim, const void *data, size_t nbytes,
                               DsTensor **out, char **err);
DsStatus dsgo_tensor_info(const DsTensor *t, DsDtype *dtype, int64_t *numel, size_t *ndim, int64_t *dims,
                          size_t capacity, char **err);
DsStatus dsgo_tensor_copy_out(const DsTensor *t, DsDtype expected, void *dst, size_t nbytes, char **err);

DsStatus dsgo_attrs_create(DsAttrs **out, char **err);
DsStatus dsgo_attrs_set_int(DsAttrs *a, const char *name, int64_t v, char **err);
DsStatus dsgo_attrs_set_float(DsAttrs *a, const char *name, double v, char **err);
DsStatus dsgo_attrs_set_bool(DsAttrs *a, const char *name, bool v, char **err);
DsStatus dsgo_attrs_set_ints(DsAttrs *a, const char *name, const int64_t *v, size_t len, char **err);
DsStatus dsgo_attrs_set_string(DsAttrs *a, const char *name, const char *v, char **err);

DsStatus dsgo_model_build(const char *name, const DsAttrs *attrs, DsGraph **out, char **err);
DsStatus dsgo_graph_load(const char *path, DsGraph **out, char **err);
DsStatus dsgo_graph_save(const DsGraph *g, const char *path, char **err);
DsStatus dsgo_graph_num_ops(const DsGraph *g, size_t *out, char **err);
DsStatus dsgo_graph_dump(const DsGraph *g, char **out_text, char **err);

DsStatus dsgo_exec_options_new(DsExecOptions **out, char **err);
DsStatus dsgo_exec_options_set_opt_level(DsExecOptions *o, int32_t level, char **err);
DsStatus dsgo_exec_options_set_device(DsExecOptions *o, DsDeviceKind kind, int32_t index, char **err);
DsStatus dsgo_exec_options_set_inter_op_threads(DsExecOptions *o, int32_t n, char **err);
DsStatus dsgo_executor_new(const DsGraph *g, const DsExecOptions *o, DsExecutor **out, char **err);
DsStatus dsgo_executor_run(const DsExecutor *ex, const char *feed_blob, const DsTensor *const *feeds, size_t n_feeds,
                           const char *fetch_blob, size_t n_fetches, const DsCancelToken *cancel, DsRunStats *stats,
                           DsTensor **out, char **err);
DsStatus dsgo_cancel_token_new(DsCancelToken **out, char **err);
DsStatus dsgo_cancel_token_cancel(const DsCancelToken *t, char **err);
DsStatus dsgo_cancel_token_reset(const DsCancelToken *t, char **err);
DsStatus dsgo_cancel_token_is_cancelled(const DsCancelToken *t, bool *out, char **err);

DsStatus dsgo_trainer_options_new(DsTrainerOptions **out, char **err);
DsStatus dsgo_trainer_options_set_optimizer(DsTrainerOptions *o, const char *name, const DsAttrs *a, char **err);
DsStatus dsgo_trainer_options_set_sparse_optimizer(DsTrainerOptions *o, const char *name, const DsAttrs *a,
                                                   char **err);
DsStatus dsgo_trainer_options_set_lr(DsTrainerOptions *o, double lr, char **err);
DsStatus dsgo_trainer_options_set_sparse_lr(DsTrainerOptions *o, double lr, char **err);
DsStatus dsgo_trainer_options_set_schedule(DsTrainerOptions *o, const char *name, const DsAttrs *a, char **err);
DsStatus dsgo_trainer_options_set_clip_norm(DsTrainerOptions *o, double max_norm, char **err);
DsStatus dsgo_trainer_options_set_checkpoints(DsTrainerOptions *o, const char *dir, int64_t every, int64_t keep,
                                              char **err);
DsStatus dsgo_trainer_options_set_exec(DsTrainerOptions *o, const DsExecOptions *x, char **err);
DsStatus dsgo_trainer_options_set_seed(DsTrainerOptions *o, uint64_t seed, char **err);
DsStatus dsgo_trainer_new(const DsGraph *g, const char *loss, const DsTrainerOptions *o, DsTrainer **out, char **err);
DsStatus dsgo_trainer_step(const DsTrainer *tr, const char *feed_blob, const DsTensor *const *feeds, size_t n_feeds,
                           double *loss, char **err);
DsStatus dsgo_trainer_evaluate(const DsTrainer *tr, const char *feed_blob, const DsTensor *const *feeds,
                               size_t n_feeds, const char *fetch_blob, size_t n_fetches, DsTensor **out, char **err);
DsStatus dsgo_trainer_export(const DsTrainer *tr, const char *output_blob, size_t n_outputs, DsGraph **out,
                             char **err);
DsStatus dsgo_trainer_save_checkpoint(const DsTrainer *tr, char **err);
DsStatus dsgo_trainer_step_count(const DsTrainer *tr, uint64_t *out, char **err);
DsStatus dsgo_trainer_data_cursor(const DsTrainer *tr, uint64_t *out, char **err);
DsStatus dsgo_trainer_set_data_cursor(const DsTrainer *tr, uint64_t cursor, char **err);
DsStatus dsgo_trainer_report(const DsTrainer *tr, char **out_text, char **err);
DsStatus dsgo_trainer_param(const DsTrainer *tr, const char *name, DsTensor **out, char **err);

DsStatus dsgo_ctr_config_default(int64_t *vocab_sizes, double *zipf, char **err);
DsStatus dsgo_ctr_generator_new(const int64_t *vocab_sizes, double zipf, uint64_t seed, DsCtrGenerator **out,
                                char **err);
DsStatus dsgo_ctr_generator_next(const DsCtrGenerator *g, int64_t n, DsTensor **dense, DsTensor **ids,
                                 DsTensor **labels, DsTensor **probs, char **err);
DsStatus dsgo_ctr_generator_cursor(const DsCtrGenerator *g, uint64_t *out, char **err);
DsStatus dsgo_ctr_generator_seek(const DsCtrGenerator *g, uint64_t cursor, char **err);

DsStatus dsgo_metric_auc(const DsTensor *s, const DsTensor *l, double *out, char **err);
DsStatus dsgo_metric_log_loss(const DsTensor *p, const DsTensor *l, double *out, char **err);
DsStatus dsgo_metric_accuracy(const DsTensor *s, const DsTensor *l, double *out, char **err);

#endif
