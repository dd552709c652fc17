// Sharing: 64 threads run one Executor at once and get the single-threaded bits; holding it
// in std::shared_ptr<const Executor> makes "destroyed while in use" impossible, because the
// last thread to let go destroys it.
#include <atomic>
#include <memory>
#include <thread>

#include "support.hpp"

namespace ds = deepseek;

namespace {

constexpr int kThreads = 64;
constexpr int kCallsPerThread = 16;

// Batch-1 feeds of scenario row `r`, made by the calling thread.
std::vector<float> predict_row(const ds::Executor& ex, const ScenarioInputs& in, int r) {
    ds::Tensor d = ds::Tensor::from<float>({1, kNumDense}, in.dense.data() + r * kNumDense, kNumDense);
    ds::Tensor i = ds::Tensor::from<int64_t>({1, kNumFields}, in.ids.data() + r * kNumFields, kNumFields);
    return ex.run({{"dense", d}, {"ids", i}}, {"prob"}).at(0).to_vector<float>();
}

}  // namespace

TEST_F(DsTest, SixtyFourThreadsSharingOneExecutorGetTheSingleThreadedBits) {
    ScenarioInputs in;
    ds::ExecOptions opts;
    opts.set_inter_op_threads(1);  // one request per thread, as a server runs it
    auto ex = std::make_shared<const ds::Executor>(scenario_model(), opts);

    std::vector<std::vector<float>> want;
    for (int r = 0; r < kBatch; r++) want.push_back(predict_row(*ex, in, r));

    std::weak_ptr<const ds::Executor> watch = ex;
    std::atomic<int> mismatches{0}, failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
        // Each thread owns a copy of the pointer: the executor lives while any thread runs it.
        threads.emplace_back([ex, t, &in, &want, &mismatches, &failures] {
            for (int k = 0; k < kCallsPerThread; k++) {
                int r = (t + k) % kBatch;
                try {
                    if (predict_row(*ex, in, r) != want[r]) mismatches++;
                } catch (const ds::Error&) {
                    failures++;
                }
            }
        });
    }
    ex.reset();  // the test lets go first; the last serving thread destroys the executor
    for (auto& th : threads) th.join();
    EXPECT_EQ(mismatches.load(), 0);
    EXPECT_EQ(failures.load(), 0);
    EXPECT_TRUE(watch.expired());  // destroyed by the last owner, with no run in flight
}

TEST_F(DsTest, EachThreadReadsItsOwnErrorMessage) {
    // ds_last_error() is per thread: the binding reads it right after the failing call, so
    // concurrent failures of different kinds never swap messages.
    ds::Executor ex(scenario_model());
    ScenarioInputs in;
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; t++) {
        threads.emplace_back([&, t] {
            ds::Tensor d = ds::Tensor::from<float>({kBatch, kNumDense}, in.dense);
            for (int k = 0; k < 20; k++) {
                const char* fetch = (t % 2) ? "missing_output_odd" : "missing_output_even";
                try {
                    ex.run({{"dense", d}}, {fetch});
                    wrong++;
                } catch (const ds::Error& e) {
                    if (std::string(e.what()).find(fetch) == std::string::npos) wrong++;
                }
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(wrong.load(), 0);
}
