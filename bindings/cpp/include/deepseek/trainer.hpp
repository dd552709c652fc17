// TrainerOptions and Trainer: training a graph, evaluating, checkpointing and exporting it.
#ifndef DEEPSEEK_TRAINER_HPP
#define DEEPSEEK_TRAINER_HPP

#include <string>
#include <vector>

#include "deepseek/attrs.hpp"
#include "deepseek/core.hpp"
#include "deepseek/executor.hpp"
#include "deepseek/graph.hpp"
#include "deepseek/tensor.hpp"

namespace deepseek {

/// How to train (defaults: Adam, lr 1e-3, constant schedule, no clipping, no checkpoints,
/// seed 0). Filled by one thread at a time; setters chain. Attribute lists may be NULL.
class TrainerOptions : public detail::Handle<DsTrainerOptions, ds_trainer_options_free> {
public:
    /// The defaults (ds_trainer_options_new).
    TrainerOptions() : Handle(create()) {}
    /// The optimizer of dense parameters by name ("sgd", "adam", "adamw", "adagrad", ...).
    TrainerOptions& set_optimizer(const char* name, const Attrs* attrs = nullptr) {
        detail::check(ds_trainer_options_set_optimizer(raw_, name, attrs ? attrs->get() : nullptr));
        return *this;
    }
    /// The optimizer of embedding tables ("rowwise_adagrad", "lazy_adam"; NULL = the dense one).
    TrainerOptions& set_sparse_optimizer(const char* name, const Attrs* attrs = nullptr) {
        detail::check(ds_trainer_options_set_sparse_optimizer(raw_, name, attrs ? attrs->get() : nullptr));
        return *this;
    }
    /// The base learning rate.
    TrainerOptions& set_lr(double lr) {
        detail::check(ds_trainer_options_set_lr(raw_, lr));
        return *this;
    }
    /// The sparse optimizer's base learning rate (negative = the dense rate).
    TrainerOptions& set_sparse_lr(double lr) {
        detail::check(ds_trainer_options_set_sparse_lr(raw_, lr));
        return *this;
    }
    /// The learning-rate schedule by name ("constant", "step", "cosine", "warmup_cosine", ...).
    TrainerOptions& set_schedule(const char* name, const Attrs* attrs = nullptr) {
        detail::check(ds_trainer_options_set_schedule(raw_, name, attrs ? attrs->get() : nullptr));
        return *this;
    }
    /// Clips gradients to a global L2 norm (0 = off).
    TrainerOptions& set_clip_norm(double max_norm) {
        detail::check(ds_trainer_options_set_clip_norm(raw_, max_norm));
        return *this;
    }
    /// Checkpoints in `dir` (NULL = none) every `every` steps (0 = only save_checkpoint), keeping `keep`.
    TrainerOptions& set_checkpoints(const char* dir, int64_t every, int64_t keep) {
        detail::check(ds_trainer_options_set_checkpoints(raw_, dir, every, keep));
        return *this;
    }
    /// How the trainer's executors compile (copied; NULL = defaults).
    TrainerOptions& set_exec(const ExecOptions* exec) {
        detail::check(ds_trainer_options_set_exec(raw_, exec ? exec->get() : nullptr));
        return *this;
    }
    /// The seed of the trainer's random generator.
    TrainerOptions& set_seed(uint64_t seed) {
        detail::check(ds_trainer_options_set_seed(raw_, seed));
        return *this;
    }

private:
    static DsTrainerOptions* create() {
        detail::ensure_abi();
        DsTrainerOptions* o = nullptr;
        detail::check(ds_trainer_options_new(&o));
        return o;
    }
};

/// A trainer. The engine makes concurrent calls on one trainer take turns, but destroying
/// it while another thread is inside a call is undefined: share it as Executor says.
class Trainer : public detail::Handle<DsTrainer, ds_trainer_free> {
public:
    /// No trainer (NULL).
    Trainer() noexcept = default;
    /// A trainer minimising the scalar output `loss` of `graph` (ds_trainer_new; options
    /// NULL = defaults). It copies what it needs: the graph and options may go afterwards.
    Trainer(const Graph& graph, const char* loss, const TrainerOptions* options = nullptr)
        : Handle(create(graph, loss, options)) {}
    /// As Trainer(graph, loss, &options).
    Trainer(const Graph& graph, const char* loss, const TrainerOptions& options) : Trainer(graph, loss, &options) {}

    /// One training step on `feeds`; returns the loss (DS_STATUS_NON_FINITE refuses the step).
    double step(Feeds feeds) {
        detail::SmallArray<const char*> names(feeds.size());
        detail::SmallArray<const DsTensor*> tensors(feeds.size());
        for (std::size_t i = 0; i < feeds.size(); i++) {
            names[i] = feeds[i].name;
            tensors[i] = feeds[i].tensor->get();
        }
        double loss = 0;
        detail::check(ds_trainer_step(raw_, names.data(), tensors.data(), feeds.size(), &loss));
        return loss;
    }
    /// Runs the forward graph with the current parameters; returns the `fetches` outputs.
    std::vector<Tensor> evaluate(Feeds feeds, Names fetches) const {
        detail::RunArgs a(feeds, fetches);
        std::vector<Tensor> result;
        result.reserve(fetches.size());
        detail::check(ds_trainer_evaluate(raw_, a.names.data(), a.tensors.data(), feeds.size(), fetches.data(),
                                          fetches.size(), a.out.data()));
        return a.take(result);
    }
    /// Writes a checkpoint now.
    void save_checkpoint() { detail::check(ds_trainer_save_checkpoint(raw_)); }
    /// Optimizer steps taken (restored on resume).
    uint64_t step_count() const {
        uint64_t n = 0;
        detail::check(ds_trainer_step_count(raw_, &n));
        return n;
    }
    /// Samples consumed so far (saved in checkpoints).
    uint64_t data_cursor() const {
        uint64_t c = 0;
        detail::check(ds_trainer_data_cursor(raw_, &c));
        return c;
    }
    /// Overrides the data cursor.
    void set_data_cursor(uint64_t cursor) { detail::check(ds_trainer_set_data_cursor(raw_, cursor)); }
    /// What happened at creation (the checkpoint resumed from, damaged ones skipped; "" fresh).
    std::string report() const {
        std::size_t needed = 0;
        DsStatus s = ds_trainer_report(raw_, nullptr, 0, &needed);
        if (s != DS_STATUS_BUFFER_TOO_SMALL) detail::check(s);
        std::string buf(needed, '\0');
        detail::check(ds_trainer_report(raw_, &buf[0], buf.size(), &needed));
        buf.resize(needed ? needed - 1 : 0);
        return buf;
    }
    /// A snapshot of the trainable parameter `name`.
    Tensor param(const char* name) const {
        DsTensor* t = nullptr;
        detail::check(ds_trainer_param(raw_, name, &t));
        return Tensor(t);
    }
    /// An inference-only graph for `outputs` with the current weights frozen in
    /// (ds_trainer_export; `export` is a C++ keyword).
    Graph export_graph(Names outputs) const {
        DsGraph* g = nullptr;
        detail::check(ds_trainer_export(raw_, outputs.data(), outputs.size(), &g));
        return Graph(g);
    }

private:
    static DsTrainer* create(const Graph& graph, const char* loss, const TrainerOptions* options) {
        detail::ensure_abi();
        DsTrainer* t = nullptr;
        detail::check(ds_trainer_new(graph.get(), loss, options ? options->get() : nullptr, &t));
        return t;
    }
};

}  // namespace deepseek

#endif  // DEEPSEEK_TRAINER_HPP
