// The shared cross-language scenario (tests/scenario/README.md) through the C++ binding: the
// same steps as tests/c/test_scenario.c, and every number equal to the expected files bit for bit.
#include <cstdio>
#include <cstring>

#include "support.hpp"

namespace ds = deepseek;

namespace {

// Runs `graph` on dense + ids with a fresh default executor and returns "prob".
std::vector<float> predict(const ds::Graph& graph, const ds::Tensor& dense, const ds::Tensor& ids) {
    ds::Executor ex(graph);
    std::vector<ds::Tensor> out = ex.run({{"dense", dense}, {"ids", ids}}, {"prob"});
    EXPECT_EQ(out.size(), 1u);
    return out.at(0).to_vector<float>();
}

// Bytewise comparison with an expected file (exact float equality would pass -0 == 0).
template <class T>
void expect_file_bytes(const std::string& file, const std::vector<T>& got) {
    std::vector<char> want = scenario_bytes(file);
    ASSERT_EQ(want.size(), got.size() * sizeof(T)) << file;
    EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size()), 0) << "differs from " << file;
}

}  // namespace

TEST_F(DsTest, SharedScenarioMatchesTheExpectedFilesBitForBit) {
    ScenarioInputs in;
    ds::Tensor dense = ds::Tensor::from<float>({kBatch, kNumDense}, in.dense);
    ds::Tensor ids = ds::Tensor::from<int64_t>({kBatch, kNumFields}, in.ids);
    ds::Tensor labels = ds::Tensor::from<float>({kBatch}, in.labels);

    // 1-2. Build and infer with the seeded initial weights.
    ds::Graph model = scenario_model();
    expect_file_bytes("expected_prob_initial.f32", predict(model, dense, ids));

    // 3. Five steps of Adam + row-wise Adagrad on the same batch.
    ds::TrainerOptions opts;
    opts.set_optimizer("adam").set_lr(0.01).set_sparse_optimizer("rowwise_adagrad").set_sparse_lr(0.1).set_seed(1);
    ds::Trainer trainer(model, "loss", opts);
    std::vector<double> losses;
    for (int s = 0; s < 5; s++) losses.push_back(trainer.step({{"dense", dense}, {"ids", ids}, {"label", labels}}));
    EXPECT_LT(losses.back(), losses.front());
    expect_file_bytes("expected_losses.f64", losses);

    // 4. Export and infer.
    ds::Graph served = trainer.export_graph({"prob"});
    expect_file_bytes("expected_prob_trained.f32", predict(served, dense, ids));

    // 5. Save, reload, infer again: the same bits.
    std::string path = temp_path("scenario_cpp.dsg");
    served.save(path);
    ds::Graph loaded = ds::Graph::load(path);
    expect_file_bytes("expected_prob_trained.f32", predict(loaded, dense, ids));
    std::remove(path.c_str());
    // 6. Every handle above is freed at the end of the scope; DsTest checks the count is 0.
}
