// Per-call cost of a batch-1 predict on the shared scenario's exported graph through the C++
// binding and through the raw C calls in the same process (the difference is the binding's
// overhead), and bulk copy throughput of 1M floats in (from_data) and out (to_vector/copy_to).
//
// Usage: predict_overhead [calls=20000] [inter_op_threads=1]   (reads tests/scenario/)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "deepseek.hpp"

namespace ds = deepseek;
using Clock = std::chrono::steady_clock;

namespace {

template <class T>
std::vector<T> read_array(const std::string& name) {
    std::ifstream f(std::string(DEEPSEEK_REPO_ROOT) + "/tests/scenario/" + name, std::ios::binary);
    std::vector<char> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::vector<T> out(b.size() / sizeof(T));
    std::copy(b.begin(), b.begin() + out.size() * sizeof(T), reinterpret_cast<char*>(out.data()));
    return out;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Median nanoseconds of `calls` runs of `f`, each timed alone, after `calls / 10` warm-up runs.
template <class F>
double median_ns(int calls, F&& f) {
    for (int i = 0; i < calls / 10; i++) f();
    std::vector<double> ns(calls);
    for (int i = 0; i < calls; i++) {
        auto t0 = Clock::now();
        f();
        ns[i] = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
    }
    return median(ns);
}

// The scenario (tests/scenario/README.md) up to the exported graph.
ds::Graph scenario_export(const ds::Tensor& dense, const ds::Tensor& ids, const ds::Tensor& labels) {
    ds::Attrs a;
    a.set_int("num_dense", 4).set_ints("vocab_sizes", {11, 7, 5}).set_int("embed_dim", 4);
    a.set_int("cross_layers", 2).set_ints("mlp", {8, 4}).set_int("seed", 42);
    ds::TrainerOptions o;
    o.set_optimizer("adam").set_lr(0.01).set_sparse_optimizer("rowwise_adagrad").set_sparse_lr(0.1).set_seed(1);
    ds::Trainer tr(ds::Graph::model("dcn_v2", a), "loss", o);
    for (int s = 0; s < 5; s++) tr.step({{"dense", dense}, {"ids", ids}, {"label", labels}});
    return tr.export_graph({"prob"});
}

}  // namespace

int main(int argc, char** argv) try {
    int calls = argc > 1 ? std::atoi(argv[1]) : 20000;
    int inter_op = argc > 2 ? std::atoi(argv[2]) : 1;
    std::vector<float> dense_v = read_array<float>("dense.f32"), labels_v = read_array<float>("labels.f32");
    std::vector<int64_t> ids_v = read_array<int64_t>("ids.i64");
    ds::Tensor dense = ds::Tensor::from<float>({8, 4}, dense_v), ids = ds::Tensor::from<int64_t>({8, 3}, ids_v);
    ds::Tensor labels = ds::Tensor::from<float>({8}, labels_v);
    // Default: one node at a time, as a server running one batch-1 request per thread does.
    ds::ExecOptions xo;
    xo.set_inter_op_threads(inter_op);
    ds::Executor ex(scenario_export(dense, ids, labels), xo);

    // Batch 1: row 0 of the scenario inputs.
    ds::Tensor d1 = ds::Tensor::from<float>({1, 4}, dense_v.data(), 4);
    ds::Tensor i1 = ds::Tensor::from<int64_t>({1, 3}, ids_v.data(), 3);
    float prob = 0;
    auto cpp_call = [&] { ex.run({{"dense", d1}, {"ids", i1}}, {"prob"}).at(0).copy_to(&prob, 1); };
    auto c_call = [&] {
        const char* names[2] = {"dense", "ids"};
        const DsTensor* in[2] = {d1.get(), i1.get()};
        const char* fetch[1] = {"prob"};
        DsTensor* out[1] = {nullptr};
        if (ds_executor_run(ex.get(), names, in, 2, fetch, 1, out) != DS_STATUS_OK ||
            ds_tensor_copy_to(out[0], &prob, sizeof prob) != DS_STATUS_OK)
            std::abort();
        ds_tensor_free(out[0]);
    };
    // Interleaved, so that load from other processes falls on both alike.
    for (int i = 0; i < calls / 10; i++) cpp_call(), c_call();
    std::vector<double> cpp_v(calls), c_v(calls);
    for (int i = 0; i < calls; i++) {
        auto t0 = Clock::now();
        cpp_call();
        auto t1 = Clock::now();
        c_call();
        auto t2 = Clock::now();
        cpp_v[i] = std::chrono::duration<double, std::nano>(t1 - t0).count();
        c_v[i] = std::chrono::duration<double, std::nano>(t2 - t1).count();
    }
    double cpp_ns = median(cpp_v), c_ns = median(c_v);

    // Bulk copies of 1M floats (4 MB each way).
    const int64_t n = 1 << 20;
    const double gb = n * sizeof(float) / 1e9;
    std::vector<float> big(n, 0.5f), back(n);
    const int reps = 50;
    double in_ns = median_ns(reps, [&] { ds::Tensor t = ds::Tensor::from<float>({n}, big); });
    ds::Tensor t = ds::Tensor::from<float>({n}, big);
    double out_vec_ns = median_ns(reps, [&] { std::vector<float> v = t.to_vector<float>(); });
    double out_buf_ns = median_ns(reps, [&] { t.copy_to(back.data(), back.size()); });

    std::printf("batch-1 predict (scenario export, inter-op %d, %d calls, median): C++ %.0f ns/call, "
                "raw C %.0f ns/call, C++ - C %+.0f ns\n",
                inter_op, calls, cpp_ns, c_ns, cpp_ns - c_ns);
    std::printf("1M f32 in  (Tensor::from):        %.2f GB/s (%.0f us)\n", gb / (in_ns * 1e-9), in_ns / 1e3);
    std::printf("1M f32 out (to_vector, allocates): %.2f GB/s (%.0f us)\n", gb / (out_vec_ns * 1e-9), out_vec_ns / 1e3);
    std::printf("1M f32 out (copy_to, caller buf):  %.2f GB/s (%.0f us)\n", gb / (out_buf_ns * 1e-9), out_buf_ns / 1e3);
    return 0;
} catch (const ds::Error& e) {
    std::fprintf(stderr, "predict_overhead: %s: %s\n", e.code_name().c_str(), e.what());
    return 1;
}
