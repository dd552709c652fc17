// A program built for another ABI version: the first handle it creates is refused with
// DS_STATUS_ABI_MISMATCH and the engine's message naming both versions, and nothing is made.
#define DEEPSEEK_HPP_EXPECTED_ABI (DS_ABI_VERSION + 1)
#include <gtest/gtest.h>

#include "deepseek.hpp"

namespace ds = deepseek;

TEST(AbiMismatch, TheFirstHandleIsRefusedNamingBothVersions) {
    for (int attempt = 0; attempt < 2; attempt++) {  // refused again on later use, too
        try {
            ds::Tensor t = ds::Tensor::from<float>({1}, std::vector<float>{1});
            FAIL() << "a library of ABI " << ds::abi_version() << " was accepted by a program built for "
                   << DEEPSEEK_HPP_EXPECTED_ABI;
        } catch (const ds::Error& e) {
            EXPECT_EQ(e.code(), DS_STATUS_ABI_MISMATCH);
            std::string msg = e.what();
            EXPECT_NE(msg.find(std::to_string(DS_ABI_VERSION)), std::string::npos) << msg;
            EXPECT_NE(msg.find(std::to_string(DS_ABI_VERSION + 1)), std::string::npos) << msg;
        }
    }
    EXPECT_THROW(ds::Graph::model("dcn_v2"), ds::Error);
    EXPECT_EQ(ds::live_objects(), 0u);
}
