// The test program's main: GoogleTest plus an environment that checks, after the last test,
// that the whole suite left no live engine handle behind (each test also checks its own).
#include <gtest/gtest.h>

#include "deepseek.hpp"

namespace {
class NoLiveHandlesAtExit : public ::testing::Environment {
public:
    void TearDown() override { EXPECT_EQ(deepseek::live_objects(), 0u) << "live handles after the suite"; }
};
}  // namespace

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    ::testing::AddGlobalTestEnvironment(new NoLiveHandlesAtExit);  // GoogleTest owns it
    return RUN_ALL_TESTS();
}
