// The C++ binding end to end: train a small DCN-v2 on the engine's synthetic CTR stream, save
// the exported inference graph, load it back, and serve batch-1 requests from several
// std::threads sharing one executor; prints held-out AUC and latency.
//
// Usage: ctr_example [work_dir]   (default build/cpp; the model is written there)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "deepseek.hpp"

namespace ds = deepseek;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int64_t kVocab = 1000;  // ids per field: small tables, so training is quick
constexpr int64_t kBatch = 256;
constexpr int kSteps = 300;
constexpr int64_t kEvalN = 5000;
constexpr uint64_t kStreamSeed = 2026;     // the synthetic world: its seed fixes the true model
constexpr uint64_t kHeldOutAt = 1ull << 40;  // held-out samples start here in the stream
constexpr int kServeThreads = 4;
constexpr int kRequestsPerThread = 500;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

DsCtrConfig stream_config() {
    DsCtrConfig cfg = ds::CtrGenerator::default_config();
    for (auto& v : cfg.vocab_sizes) v = kVocab;
    return cfg;
}

ds::Graph build_model() {
    std::vector<int64_t> vocab(DS_CTR_NUM_FIELDS, kVocab);
    ds::Attrs a;
    a.set_ints("vocab_sizes", vocab).set_int("embed_dim", 8).set_ints("mlp", {64, 32}).set_int("seed", 7);
    return ds::Graph::model("dcn_v2", a);
}

}  // namespace

int main(int argc, char** argv) try {
    std::string work = argc > 1 ? argv[1] : "build/cpp";
    std::string model_path = work + "/ctr_example.dsg";
    std::printf("libdeepseek %s from C++: DCN-v2 on the synthetic CTR stream (26 fields x %lld ids)\n",
                ds::version().c_str(), static_cast<long long>(kVocab));

    // Held-out data: the same world, far past anything trained on, with the true probabilities.
    ds::CtrGenerator eval_gen(kStreamSeed, stream_config());
    eval_gen.seek(kHeldOutAt);
    ds::CtrBatch eval = eval_gen.next(kEvalN, true);
    double oracle = ds::auc(eval.probs, eval.labels);

    // Train: Adam on dense layers, row-wise Adagrad on the tables.
    ds::TrainerOptions opts;
    opts.set_optimizer("adam").set_lr(2e-3).set_sparse_optimizer("rowwise_adagrad").set_sparse_lr(0.05);
    ds::Trainer trainer(build_model(), "loss", opts);
    ds::CtrGenerator train_gen(kStreamSeed, stream_config());
    auto t0 = Clock::now();
    for (int s = 1; s <= kSteps; s++) {
        ds::CtrBatch b = train_gen.next(kBatch);
        double loss = trainer.step({{"dense", b.dense}, {"ids", b.ids}, {"label", b.labels}});
        if (s % 100 == 0) std::printf("  step %3d  loss %.4f\n", s, loss);
    }
    double train_s = seconds_since(t0);
    ds::Tensor trained_prob =
        std::move(trainer.evaluate({{"dense", eval.dense}, {"ids", eval.ids}, {"label", eval.labels}}, {"prob"}).at(0));
    double trained_auc = ds::auc(trained_prob, eval.labels);

    // Export, save, and load back as a service would; the trainer is no longer needed.
    trainer.export_graph({"prob"}).save(model_path);
    trainer.reset();
    ds::ExecOptions serve_opts;
    serve_opts.set_inter_op_threads(1);  // one request per thread: no nested fan-out
    auto server = std::make_shared<const ds::Executor>(ds::Graph::load(model_path), serve_opts);
    ds::Tensor served_prob = std::move(server->run({{"dense", eval.dense}, {"ids", eval.ids}}, {"prob"}).at(0));
    double served_auc = ds::auc(served_prob, eval.labels);

    // Serve: each thread holds the executor (shared_ptr) and sends one-sample requests.
    std::vector<std::vector<double>> lat(kServeThreads);
    std::vector<std::thread> threads;
    auto t_serve = Clock::now();
    for (int t = 0; t < kServeThreads; t++) {
        threads.emplace_back([server, t, &eval, &lat] {
            for (int i = 0; i < kRequestsPerThread; i++) {
                int64_t r = (t * 997 + i) % kEvalN;
                auto t1 = Clock::now();
                ds::Tensor d = eval.dense.slice(0, r, r + 1), ids = eval.ids.slice(0, r, r + 1);
                float p = 0;
                server->run({{"dense", d}, {"ids", ids}}, {"prob"}).at(0).copy_to(&p, 1);
                lat[t].push_back(seconds_since(t1) * 1e6);
            }
        });
    }
    for (auto& th : threads) th.join();
    double serve_s = seconds_since(t_serve);
    std::vector<double> all;
    for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
    std::sort(all.begin(), all.end());

    std::printf("\nresults on %lld held-out samples\n", static_cast<long long>(kEvalN));
    std::printf("  AUC  DCN-v2 %.4f   reloaded graph %.4f   oracle %.4f\n", trained_auc, served_auc, oracle);
    std::printf("  training: %d steps x %lld samples in %.1f s\n", kSteps, static_cast<long long>(kBatch), train_s);
    std::printf("  serving, %d threads x %d requests of 1 sample: p50 %.0f us, p99 %.0f us, %.0f requests/s\n",
                kServeThreads, kRequestsPerThread, all[all.size() / 2], all[all.size() * 99 / 100],
                all.size() / serve_s);
    if (std::abs(served_auc - trained_auc) > 1e-4) {
        std::fprintf(stderr, "the reloaded graph scores differently from the trained one\n");
        return 1;
    }
    if (trained_auc < 0.6) {
        std::fprintf(stderr, "AUC %.4f: the model did not learn\n", trained_auc);
        return 1;
    }
    return 0;
} catch (const ds::Error& e) {
    std::fprintf(stderr, "ctr_example: %s: %s\n", e.code_name().c_str(), e.what());
    return 1;
}
