// Graph (a finished, immutable graph: built, loaded, saved) and GraphBuilder.
#ifndef DEEPSEEK_GRAPH_HPP
#define DEEPSEEK_GRAPH_HPP

#include <string>
#include <vector>

#include "deepseek/attrs.hpp"
#include "deepseek/core.hpp"
#include "deepseek/tensor.hpp"

namespace deepseek {

/// A finished, immutable graph. Const methods may run from many threads at once. Executors
/// and trainers made from it keep what they need, so it may be destroyed right after.
class Graph : public detail::Handle<DsGraph, ds_graph_free> {
public:
    /// No graph (NULL).
    Graph() noexcept = default;
    /// Takes ownership of a handle from the C API (NULL allowed).
    explicit Graph(DsGraph* raw) noexcept : Handle(raw) {}

    /// Builds the ready-made model `name` ("dcn_v2", "deepfm", "logistic_regression",
    /// "mlp_classifier") with `attrs` (NULL = the defaults) (ds_model_build).
    static Graph model(const char* name, const Attrs* attrs = nullptr) {
        detail::ensure_abi();
        DsGraph* g = nullptr;
        detail::check(ds_model_build(name, attrs ? attrs->get() : nullptr, &g));
        return Graph(g);
    }
    /// As model(name, &attrs).
    static Graph model(const char* name, const Attrs& attrs) { return model(name, &attrs); }
    /// Loads a graph saved by save() (ds_graph_load): DS_STATUS_NOT_FOUND for a missing
    /// file, DS_STATUS_CORRUPT_DATA for a damaged one.
    static Graph load(const std::string& path) {
        detail::ensure_abi();
        DsGraph* g = nullptr;
        detail::check(ds_graph_load(path.c_str(), &g));
        return Graph(g);
    }
    /// Saves to `path` atomically (ds_graph_save).
    void save(const std::string& path) const { detail::check(ds_graph_save(raw_, path.c_str())); }
    /// Number of op nodes.
    std::size_t num_ops() const {
        std::size_t n = 0;
        detail::check(ds_graph_num_ops(raw_, &n));
        return n;
    }
    /// A readable dump, one line per node (ds_graph_dump).
    std::string dump() const {
        std::size_t needed = 0;
        DsStatus s = ds_graph_dump(raw_, nullptr, 0, &needed);
        if (s != DS_STATUS_BUFFER_TOO_SMALL) detail::check(s);
        std::string buf(needed, '\0');
        detail::check(ds_graph_dump(raw_, &buf[0], buf.size(), &needed));
        buf.resize(needed ? needed - 1 : 0);
        return buf;
    }
    /// A new graph with the gradients of output `loss` w.r.t. the parameters `wrt` (empty:
    /// every trainable one) as outputs `grad/<param>` (ds_graph_append_gradients).
    Graph append_gradients(const char* loss, Span<const char*> wrt = {}) const {
        DsGraph* g = nullptr;
        detail::check(ds_graph_append_gradients(raw_, loss, wrt.empty() ? nullptr : wrt.data(), wrt.size(), &g));
        return Graph(g);
    }
};

/// A graph under construction, used by one thread at a time. Values are DsValueId numbers.
class GraphBuilder : public detail::Handle<DsGraphBuilder, ds_graph_builder_free> {
public:
    /// An empty builder (ds_graph_builder_new).
    GraphBuilder() : Handle(create()) {}

    /// Adds an input `name` of `dtype`; a dimension of -1 is symbolic, named by the matching
    /// entry of `sym_names` (empty when every dimension is fixed).
    DsValueId input(const char* name, DsDtype dtype, Shape dims, Span<const char*> sym_names = {}) {
        DsValueId v = 0;
        detail::check(ds_graph_builder_input(raw_, name, dtype, dims.data(), dims.size(),
                                             sym_names.empty() ? nullptr : sym_names.data(), &v));
        return v;
    }
    /// Adds a parameter `name` holding `tensor`'s value (shared).
    DsValueId param(const char* name, const Tensor& tensor, bool trainable) {
        DsValueId v = 0;
        detail::check(ds_graph_builder_param(raw_, name, tensor.get(), trainable, &v));
        return v;
    }
    /// Adds a constant holding `tensor`'s value (shared).
    DsValueId constant(const Tensor& tensor) {
        DsValueId v = 0;
        detail::check(ds_graph_builder_constant(raw_, tensor.get(), &v));
        return v;
    }
    /// Adds a node applying op `op_name` to `inputs`; returns its output ids.
    std::vector<DsValueId> op(const char* op_name, Span<DsValueId> inputs, const Attrs* attrs = nullptr) {
        return with_outputs([&](DsValueId* out, std::size_t cap, std::size_t* n) {
            return ds_graph_builder_op(raw_, op_name, inputs.data(), inputs.size(), attrs ? attrs->get() : nullptr,
                                       out, cap, n);
        });
    }
    /// Adds the layer `layer_name` with parameters `<prefix>/...` seeded by `seed`; returns its output ids.
    std::vector<DsValueId> layer(const char* layer_name, const char* prefix, uint64_t seed, Span<DsValueId> inputs,
                                 const Attrs* attrs = nullptr) {
        return with_outputs([&](DsValueId* out, std::size_t cap, std::size_t* n) {
            return ds_graph_builder_layer(raw_, layer_name, prefix, seed, inputs.data(), inputs.size(),
                                          attrs ? attrs->get() : nullptr, out, cap, n);
        });
    }
    /// Names `value` as the graph output `name`.
    void output(const char* name, DsValueId value) { detail::check(ds_graph_builder_output(raw_, name, value)); }
    /// A new graph of everything added so far; the builder stays usable.
    Graph finish() {
        DsGraph* g = nullptr;
        detail::check(ds_graph_builder_finish(raw_, &g));
        return Graph(g);
    }

private:
    static DsGraphBuilder* create() {
        detail::ensure_abi();
        DsGraphBuilder* b = nullptr;
        detail::check(ds_graph_builder_new(&b));
        return b;
    }
    // The engine's two-call protocol: too small a capacity adds nothing and says how many.
    template <class F>
    static std::vector<DsValueId> with_outputs(F&& call) {
        std::vector<DsValueId> out(4);
        std::size_t n = 0;
        DsStatus s = call(out.data(), out.size(), &n);
        if (s == DS_STATUS_BUFFER_TOO_SMALL) {
            out.resize(n);
            s = call(out.data(), out.size(), &n);
        }
        detail::check(s);
        out.resize(n);
        return out;
    }
};

}  // namespace deepseek

#endif  // DEEPSEEK_GRAPH_HPP
