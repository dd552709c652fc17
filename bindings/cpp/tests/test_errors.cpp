// Bad paths: wrong feeds, unknown names, trainer misuse and moved-from objects all surface
// as deepseek::Error carrying the engine's own code and message — never a crash.
#include "support.hpp"

namespace ds = deepseek;

namespace {

// Runs the raw C executor on one feed list and one fetch (for comparing errors).
DsStatus c_run(const ds::Executor& ex, std::vector<const char*> names, std::vector<const DsTensor*> feeds,
               const char* fetch) {
    DsTensor* out[1] = {nullptr};
    const char* fetches[1] = {fetch};
    return ds_executor_run(ex.get(), names.data(), feeds.data(), feeds.size(), fetches, 1, out);
}

// A call on a moved-from (NULL) object must throw the engine's DS_STATUS_INVALID_HANDLE.
template <class Call>
void expect_invalid_handle(Call&& call) {
    std::string msg = expect_error(DS_STATUS_INVALID_HANDLE, call);
    EXPECT_FALSE(msg.empty());
}

}  // namespace

TEST_F(DsTest, AFeedOfTheWrongDtypeIsTheEnginesErrorNamingIt) {
    ScenarioInputs in;
    ds::Executor ex(scenario_model());
    ds::Tensor dense = ds::Tensor::from<float>({kBatch, kNumDense}, in.dense);
    std::vector<float> ids_as_f32(in.ids.begin(), in.ids.end());
    ds::Tensor bad_ids = ds::Tensor::from<float>({kBatch, kNumFields}, ids_as_f32);
    expect_same_error([&] { ex.run({{"dense", dense}, {"ids", bad_ids}}, {"prob"}); },
                      [&] { return c_run(ex, {"dense", "ids"}, {dense.get(), bad_ids.get()}, "prob"); });
    DsStatus code = c_run(ex, {"dense", "ids"}, {dense.get(), bad_ids.get()}, "prob");
    std::string msg = expect_error(code, [&] { ex.run({{"dense", dense}, {"ids", bad_ids}}, {"prob"}); });
    EXPECT_NE(msg.find("ids"), std::string::npos) << msg;
}

TEST_F(DsTest, AFeedOfTheWrongShapeIsTheEnginesErrorNamingIt) {
    ScenarioInputs in;
    ds::Executor ex(scenario_model());
    ds::Tensor ids = ds::Tensor::from<int64_t>({kBatch, kNumFields}, in.ids);
    ds::Tensor narrow = ds::Tensor::from<float>({kBatch * 2, kNumDense / 2}, in.dense);  // [16, 2], not [8, 4]
    expect_same_error([&] { ex.run({{"dense", narrow}, {"ids", ids}}, {"prob"}); },
                      [&] { return c_run(ex, {"dense", "ids"}, {narrow.get(), ids.get()}, "prob"); });
    // Unknown feed and fetch names, and a missing feed.
    expect_same_error([&] { ex.run({{"nope", ids}}, {"prob"}); },
                      [&] { return c_run(ex, {"nope"}, {ids.get()}, "prob"); });
    expect_same_error([&] { ex.run({{"ids", ids}}, {"prob"}); }, [&] { return c_run(ex, {"ids"}, {ids.get()}, "prob"); });
    ds::Tensor dense = ds::Tensor::from<float>({kBatch, kNumDense}, in.dense);
    expect_same_error([&] { ex.run({{"dense", dense}, {"ids", ids}}, {"no_output"}); },
                      [&] { return c_run(ex, {"dense", "ids"}, {dense.get(), ids.get()}, "no_output"); });
}

TEST_F(DsTest, UnknownModelsAndMissingFilesAreTheEnginesErrors) {
    expect_same_error([] { ds::Graph::model("no_such_model"); },
                      [] {
                          DsGraph* g = nullptr;
                          return ds_model_build("no_such_model", nullptr, &g);
                      });
    ds::Attrs bad;
    bad.set_string("structure", "sideways");
    expect_same_error([&] { ds::Graph::model("dcn_v2", bad); },
                      [&] {
                          DsGraph* g = nullptr;
                          return ds_model_build("dcn_v2", bad.get(), &g);
                      });
    std::string missing = temp_path("does_not_exist.dsg");
    std::string msg = expect_error(DS_STATUS_NOT_FOUND, [&] { ds::Graph::load(missing); });
    EXPECT_NE(msg.find("does_not_exist"), std::string::npos) << msg;
    expect_same_error([&] { ds::Graph::load(missing); },
                      [&] {
                          DsGraph* g = nullptr;
                          return ds_graph_load(missing.c_str(), &g);
                      });
}

TEST_F(DsTest, TrainerMisuseIsTheEnginesError) {
    ds::Graph model = scenario_model();
    expect_same_error([&] { ds::Trainer(model, "no_such_loss"); },
                      [&] {
                          DsTrainer* t = nullptr;
                          return ds_trainer_new(model.get(), "no_such_loss", nullptr, &t);
                      });
    ds::TrainerOptions opts;
    expect_same_error([&] { opts.set_optimizer("no_such_optimizer"); },
                      [&] { return ds_trainer_options_set_optimizer(opts.get(), "no_such_optimizer", nullptr); });
    expect_same_error([&] { opts.set_lr(-1.0); }, [&] { return ds_trainer_options_set_lr(opts.get(), -1.0); });

    // A step without the label the loss needs.
    ScenarioInputs in;
    ds::Trainer trainer(model, "loss", opts);
    ds::Tensor dense = ds::Tensor::from<float>({kBatch, kNumDense}, in.dense);
    ds::Tensor ids = ds::Tensor::from<int64_t>({kBatch, kNumFields}, in.ids);
    expect_same_error([&] { trainer.step({{"dense", dense}, {"ids", ids}}); },
                      [&] {
                          const char* names[2] = {"dense", "ids"};
                          const DsTensor* feeds[2] = {dense.get(), ids.get()};
                          double loss = 0;
                          return ds_trainer_step(trainer.get(), names, feeds, 2, &loss);
                      });
    EXPECT_EQ(trainer.step_count(), 0u);  // the failed step changed nothing
    expect_same_error([&] { trainer.param("no/such/param"); },
                      [&] {
                          DsTensor* t = nullptr;
                          return ds_trainer_param(trainer.get(), "no/such/param", &t);
                      });
}

TEST_F(DsTest, MovedFromAndResetObjectsThrowInvalidHandle) {
    ds::Graph model = scenario_model();
    ds::Graph g2 = std::move(model);
    expect_invalid_handle([&] { model.num_ops(); });
    EXPECT_GT(g2.num_ops(), 0u);
    expect_invalid_handle([&] { ds::Executor{model}; });

    ds::Executor ex(g2);
    ds::Executor ex2 = std::move(ex);
    EXPECT_FALSE(ex);
    ds::Tensor t = ds::Tensor::from<float>({1}, std::vector<float>{1});
    expect_invalid_handle([&] { ex.run({{"dense", t}}, {"prob"}); });

    ds::Tensor t2 = std::move(t);
    expect_invalid_handle([&] { t.numel(); });
    expect_invalid_handle([&] { t.to_vector<float>(); });
    expect_invalid_handle([&] { ds::op_call("add", {t, t2}); });
    t2.reset();
    t2.reset();  // a second reset is a no-op
    expect_invalid_handle([&] { t2.shape(); });

    ds::Attrs a;
    ds::Attrs a2(std::move(a));
    expect_invalid_handle([&] { a.set_int("x", 1); });
    ds::GraphBuilder b;
    ds::GraphBuilder b2 = std::move(b);
    expect_invalid_handle([&] { b.finish(); });
    ds::ExecOptions xo;
    ds::ExecOptions xo2 = std::move(xo);
    expect_invalid_handle([&] { xo.set_opt_level(1); });
    ds::CancelToken c;
    ds::CancelToken c2 = std::move(c);
    expect_invalid_handle([&] { c.cancel(); });
    ds::TrainerOptions o;
    ds::TrainerOptions o2 = std::move(o);
    expect_invalid_handle([&] { o.set_seed(1); });
    ds::Trainer tr(g2, "loss");
    ds::Trainer tr2 = std::move(tr);
    expect_invalid_handle([&] { tr.step_count(); });
    ds::CtrGenerator gen(1);
    ds::CtrGenerator gen2 = std::move(gen);
    expect_invalid_handle([&] { gen.cursor(); });

    // Move assignment frees the target's old handle (the live count drops by one).
    uint64_t before = ds::live_objects();
    ex2 = ds::Executor();
    EXPECT_EQ(ds::live_objects(), before - 1);
}

TEST_F(DsTest, TheAbiCheckNamesBothVersions) {
    ds::check_abi();  // this library is the one the header describes
    std::string msg = expect_error(DS_STATUS_ABI_MISMATCH, [] { ds::check_abi(DS_ABI_VERSION + 1); });
    EXPECT_NE(msg.find(std::to_string(DS_ABI_VERSION)), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::to_string(DS_ABI_VERSION + 1)), std::string::npos) << msg;
    EXPECT_EQ(ds::abi_version(), static_cast<uint32_t>(DS_ABI_VERSION));
    EXPECT_FALSE(ds::version().empty());
}
