// Graphs built by hand, executor options and cancellation, the CTR generator and metrics,
// and the engine's ownership rule: an Executor keeps working after its Graph is destroyed.
#include "support.hpp"

namespace ds = deepseek;

TEST_F(DsTest, ABuiltGraphRunsWithSymbolicBatch) {
    ds::GraphBuilder b;
    DsValueId x = b.input("x", DS_DTYPE_F32, {-1, 2}, {"batch", nullptr});
    DsValueId c = b.constant(ds::Tensor::from<float>({2}, std::vector<float>{10, 20}));
    std::vector<DsValueId> sum = b.op("add", {x, c});
    ASSERT_EQ(sum.size(), 1u);
    b.output("y", sum[0]);
    ds::Graph g = b.finish();
    EXPECT_EQ(g.num_ops(), 1u);
    EXPECT_NE(g.dump().find("add"), std::string::npos) << g.dump();

    ds::Executor ex(g);
    g.reset();  // the executor holds what it needs
    ds::Tensor in = ds::Tensor::from<float>({3, 2}, std::vector<float>{1, 2, 3, 4, 5, 6});
    EXPECT_EQ(ex.run({{"x", in}}, {"y"}).at(0).to_vector<float>(), (std::vector<float>{11, 22, 13, 24, 15, 26}));
    // A bad op is the engine's error naming the node; the builder stays usable.
    expect_same_error([&] { b.op("no_such_op", {x}); },
                      [&] {
                          DsValueId out[4];
                          size_t n = 0;
                          return ds_graph_builder_op(b.get(), "no_such_op", &x, 1, nullptr, out, 4, &n);
                      });
    EXPECT_EQ(b.finish().num_ops(), 1u);
}

TEST_F(DsTest, ACancelledRunThrowsCancelledAndTheExecutorStaysUsable) {
    ScenarioInputs in;
    ds::Executor ex(scenario_model(), ds::ExecOptions().set_opt_level(1));
    ds::Tensor d = ds::Tensor::from<float>({kBatch, kNumDense}, in.dense);
    ds::Tensor i = ds::Tensor::from<int64_t>({kBatch, kNumFields}, in.ids);
    ds::CancelToken token;
    token.cancel();
    EXPECT_TRUE(token.is_cancelled());
    expect_error(DS_STATUS_CANCELLED, [&] { ex.run_with({{"dense", d}, {"ids", i}}, {"prob"}, &token); });
    token.reset_flag();
    ds::RunStats stats;
    std::vector<ds::Tensor> out = ex.run_with({{"dense", d}, {"ids", i}}, {"prob"}, &token, &stats);
    EXPECT_EQ(out.at(0).numel(), kBatch);
    EXPECT_GT(stats.nodes_run, 0);
    EXPECT_GT(stats.peak_bytes, 0);
}

TEST_F(DsTest, TheCtrGeneratorIsSeekableAndFeedsTheMetrics) {
    DsCtrConfig cfg = ds::CtrGenerator::default_config();
    for (auto& v : cfg.vocab_sizes) v = 50;
    ds::CtrGenerator gen(7, cfg);
    ds::CtrBatch a = gen.next(64, true);
    EXPECT_EQ(gen.cursor(), 64u);
    EXPECT_EQ(a.dense.shape(), (std::vector<int64_t>{64, DS_CTR_NUM_DENSE}));
    EXPECT_EQ(a.ids.shape(), (std::vector<int64_t>{64, DS_CTR_NUM_FIELDS}));
    gen.seek(0);
    ds::CtrBatch again = gen.next(64);
    EXPECT_FALSE(again.probs);  // not asked for
    EXPECT_EQ(again.ids.to_vector<int64_t>(), a.ids.to_vector<int64_t>());
    double oracle = ds::auc(a.probs, a.labels);
    EXPECT_GT(oracle, 0.5);
    EXPECT_GT(ds::log_loss(a.probs, a.labels), 0.0);
    EXPECT_GE(ds::accuracy(a.probs, a.labels), 0.0);
    cfg.vocab_sizes[0] = 0;
    expect_same_error([&] { ds::CtrGenerator(1, cfg); },
                      [&] {
                          DsCtrGenerator* g = nullptr;
                          return ds_ctr_generator_new(&cfg, 1, &g);
                      });
}
