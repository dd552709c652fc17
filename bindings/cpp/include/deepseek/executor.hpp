// ExecOptions, CancelToken and Executor: compiling a graph and running it from many threads.
#ifndef DEEPSEEK_EXECUTOR_HPP
#define DEEPSEEK_EXECUTOR_HPP

#include <vector>

#include "deepseek/core.hpp"
#include "deepseek/graph.hpp"
#include "deepseek/tensor.hpp"

namespace deepseek {

/// How to compile a graph (defaults: opt level 2, the CPU, inter-op threads 0). Filled by
/// one thread at a time; then read by any number of Executor constructions at once.
class ExecOptions : public detail::Handle<DsExecOptions, ds_exec_options_free> {
public:
    /// The defaults (ds_exec_options_new).
    ExecOptions() : Handle(create()) {}
    /// 0 = as given, 1 = folding/CSE/DCE, 2 = also fusion and early frees.
    ExecOptions& set_opt_level(int32_t level) {
        detail::check(ds_exec_options_set_opt_level(raw_, level));
        return *this;
    }
    /// The device graphs run on (DS_DEVICE_*, index).
    ExecOptions& set_device(DsDeviceKind kind, int32_t index = 0) {
        detail::check(ds_exec_options_set_device(raw_, kind, index));
        return *this;
    }
    /// Independent nodes run at once: 0 = the pool size where unequal products run side by
    /// side, else one; 1 = one (for one request per thread).
    ExecOptions& set_inter_op_threads(int32_t n) {
        detail::check(ds_exec_options_set_inter_op_threads(raw_, n));
        return *this;
    }

private:
    static DsExecOptions* create() {
        detail::ensure_abi();
        DsExecOptions* o = nullptr;
        detail::check(ds_exec_options_new(&o));
        return o;
    }
};

/// A cancellation flag for runs (ds_cancel_token_*). Every method is const: the engine lets
/// any thread cancel, reset or query it while runs use it. It must outlive those runs.
class CancelToken : public detail::Handle<DsCancelToken, ds_cancel_token_free> {
public:
    /// A token, not cancelled.
    CancelToken() : Handle(create()) {}
    /// Asks every run using the token to stop (they fail with DS_STATUS_CANCELLED).
    void cancel() const { detail::check(ds_cancel_token_cancel(raw_)); }
    /// Clears the flag so the token can serve new runs.
    void reset_flag() const { detail::check(ds_cancel_token_reset(raw_)); }
    /// Whether the token is cancelled.
    bool is_cancelled() const {
        bool c = false;
        detail::check(ds_cancel_token_is_cancelled(raw_, &c));
        return c;
    }

private:
    static DsCancelToken* create() {
        detail::ensure_abi();
        DsCancelToken* t = nullptr;
        detail::check(ds_cancel_token_new(&t));
        return t;
    }
};

/// One named input of a run: `{"dense", tensor}`. Holds a reference: the tensor must live
/// until the call returns (a braced list in the call does).
struct Feed {
    /// Feeds `tensor` as the input (or parameter override) `name`.
    Feed(const char* name, const Tensor& tensor) noexcept : name(name), tensor(&tensor) {}
    const char* name;      ///< the graph input's name
    const Tensor* tensor;  ///< the value fed
};

/// Names of a run's feeds and fetches as the C call takes them: `{{"x", t}}`, `{"prob"}`.
using Feeds = Span<Feed>;
/// Output names to fetch.
using Names = Span<const char*>;

/// What one run measured (DsRunStats without its struct_size).
struct RunStats {
    int64_t nodes_run = 0;   ///< op nodes executed
    int64_t peak_bytes = 0;  ///< most bytes held at once by the run's values
};

namespace detail {

// The C arrays of one run: feed names and handles side by side, output slots all NULL.
struct RunArgs {
    RunArgs(Feeds feeds, Names fetches) : names(feeds.size()), tensors(feeds.size()), out(fetches.size()) {
        for (std::size_t i = 0; i < feeds.size(); i++) {
            names[i] = feeds[i].name;
            tensors[i] = feeds[i].tensor->get();
        }
    }
    // Wraps the outputs of a successful call (the vector is reserved first, so no handle
    // can be dropped by a failed allocation after the engine made it).
    std::vector<Tensor> take(std::vector<Tensor>& result) {
        for (std::size_t i = 0; i < out.size(); i++) result.emplace_back(out[i]);
        return std::move(result);
    }
    SmallArray<const char*> names;
    SmallArray<const DsTensor*> tensors;
    SmallArray<DsTensor*> out;
};

}  // namespace detail

/// A compiled graph. run() is const and may be called from any number of threads at once.
///
/// Destroying an Executor while another thread is inside run() is undefined in C; in C++
/// share it so that cannot happen: pass `const Executor&` to threads that are joined before
/// it goes out of scope, or hold it in a `std::shared_ptr<const Executor>` of which every
/// serving thread keeps a copy — the last owner to let go destroys it, after its own runs.
class Executor : public detail::Handle<DsExecutor, ds_executor_free> {
public:
    /// No executor (NULL).
    Executor() noexcept = default;
    /// Compiles `graph` with `options` (NULL = defaults) (ds_executor_new). The graph and
    /// options may be destroyed afterwards.
    explicit Executor(const Graph& graph, const ExecOptions* options = nullptr) : Handle(create(graph, options)) {}
    /// As Executor(graph, &options).
    Executor(const Graph& graph, const ExecOptions& options) : Executor(graph, &options) {}

    /// Runs with `feeds` and returns the outputs named in `fetches`, in order (ds_executor_run).
    /// Wrong names, dtypes or shapes fail with the engine's message naming the feed.
    std::vector<Tensor> run(Feeds feeds, Names fetches) const {
        detail::RunArgs a(feeds, fetches);
        std::vector<Tensor> result;
        result.reserve(fetches.size());
        detail::check(ds_executor_run(raw_, a.names.data(), a.tensors.data(), feeds.size(), fetches.data(),
                                      fetches.size(), a.out.data()));
        return a.take(result);
    }
    /// run() with a cancel token (NULL for none) and, when `stats` is not NULL, what the run
    /// measured (ds_executor_run_with). A cancelled run throws DS_STATUS_CANCELLED.
    std::vector<Tensor> run_with(Feeds feeds, Names fetches, const CancelToken* cancel, RunStats* stats = nullptr) const {
        detail::RunArgs a(feeds, fetches);
        std::vector<Tensor> result;
        result.reserve(fetches.size());
        DsRunStats s{};
        s.struct_size = sizeof s;
        detail::check(ds_executor_run_with(raw_, a.names.data(), a.tensors.data(), feeds.size(), fetches.data(),
                                           fetches.size(), cancel ? cancel->get() : nullptr,
                                           stats ? &s : nullptr, a.out.data()));
        if (stats) *stats = RunStats{s.nodes_run, s.peak_bytes};
        return a.take(result);
    }

private:
    static DsExecutor* create(const Graph& graph, const ExecOptions* options) {
        detail::ensure_abi();
        DsExecutor* e = nullptr;
        detail::check(ds_executor_new(graph.get(), options ? options->get() : nullptr, &e));
        return e;
    }
};

}  // namespace deepseek

#endif  // DEEPSEEK_EXECUTOR_HPP
