// 100,000 batch-1 predicts through the binding leave the engine's live-handle count where it
// started (every output and input handle freed by its destructor). Skipped under valgrind.
#include "support.hpp"

namespace ds = deepseek;

TEST_F(DsTest, StressHundredThousandPredictsLeaveNoHandles) {
    ScenarioInputs in;
    ds::ExecOptions opts;
    opts.set_inter_op_threads(1);
    ds::Executor ex(scenario_model(), opts);
    ds::Tensor d = ds::Tensor::from<float>({1, kNumDense}, in.dense.data(), kNumDense);
    ds::Tensor i = ds::Tensor::from<int64_t>({1, kNumFields}, in.ids.data(), kNumFields);
    const uint64_t before = ds::live_objects();
    float prob = 0, first = -1;
    for (int k = 0; k < 100000; k++) {
        ex.run({{"dense", d}, {"ids", i}}, {"prob"}).at(0).copy_to(&prob, 1);
        if (k == 0) first = prob;
        if (prob != first) FAIL() << "call " << k << " gave " << prob << " after " << first;
    }
    EXPECT_EQ(ds::live_objects(), before);
}
