// What the C++ tests share: the leak-checking fixture, the scenario inputs and model, and a
// check that a C++ call fails exactly as the same C call does (same code, same message).
#ifndef DEEPSEEK_CPP_TEST_SUPPORT_HPP
#define DEEPSEEK_CPP_TEST_SUPPORT_HPP

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "deepseek.hpp"

/// Every test derives from this: when its body has destroyed everything it made, the
/// engine must hold no live handle (a binding that leaked one fails the test that leaked).
class DsTest : public ::testing::Test {
protected:
    void TearDown() override { EXPECT_EQ(deepseek::live_objects(), 0u) << "live handles left by this test"; }
};

/// A file of tests/scenario/ (the repository root comes from CMake), whole.
inline std::vector<char> scenario_bytes(const std::string& name) {
    std::ifstream f(std::string(DEEPSEEK_REPO_ROOT) + "/tests/scenario/" + name, std::ios::binary);
    EXPECT_TRUE(f.good()) << "cannot open tests/scenario/" << name;
    return std::vector<char>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

/// A scenario file as elements of T; the file must hold exactly `n` of them.
template <class T>
std::vector<T> scenario_array(const std::string& name, std::size_t n) {
    std::vector<char> bytes = scenario_bytes(name);
    EXPECT_EQ(bytes.size(), n * sizeof(T)) << name << " has the wrong size";
    std::vector<T> out(n);
    std::memcpy(out.data(), bytes.data(), std::min(bytes.size(), n * sizeof(T)));
    return out;
}

/// The scenario's sizes (tests/scenario/README.md).
constexpr int64_t kBatch = 8, kNumDense = 4, kNumFields = 3;

/// The scenario's inputs, read from its files.
struct ScenarioInputs {
    std::vector<float> dense = scenario_array<float>("dense.f32", kBatch * kNumDense);
    std::vector<int64_t> ids = scenario_array<int64_t>("ids.i64", kBatch * kNumFields);
    std::vector<float> labels = scenario_array<float>("labels.f32", kBatch);
};

/// Step 1 of the scenario: the small seeded DCN-v2.
inline deepseek::Graph scenario_model() {
    deepseek::Attrs a;
    a.set_int("num_dense", kNumDense)
        .set_ints("vocab_sizes", {11, 7, 5})
        .set_int("embed_dim", 4)
        .set_int("cross_layers", 2)
        .set_ints("mlp", {8, 4})
        .set_int("seed", 42);
    return deepseek::Graph::model("dcn_v2", a);
}

/// A path for files a test writes, in the build directory.
inline std::string temp_path(const std::string& name) { return std::string(DEEPSEEK_TEST_TMP) + "/" + name; }

/// Runs `c_call` (the raw C function on the same arguments) and `cpp_call`: the C++ call must
/// throw deepseek::Error with the C call's status and, unchanged, its ds_last_error() text.
template <class CppCall, class CCall>
void expect_same_error(CppCall&& cpp_call, CCall&& c_call) {
    DsStatus c_code = c_call();
    std::string c_message = ds_last_error();
    ASSERT_NE(c_code, DS_STATUS_OK) << "the C call was expected to fail";
    ASSERT_FALSE(c_message.empty());
    try {
        cpp_call();
        ADD_FAILURE() << "no deepseek::Error thrown; C gave " << ds_status_name(c_code) << ": " << c_message;
    } catch (const deepseek::Error& e) {
        EXPECT_EQ(e.code(), c_code) << e.code_name() << " vs " << ds_status_name(c_code);
        EXPECT_EQ(std::string(e.what()), c_message);
    }
}

/// Runs `call`, which must throw deepseek::Error with `code`; returns the message.
template <class Call>
std::string expect_error(DsStatus code, Call&& call) {
    try {
        call();
    } catch (const deepseek::Error& e) {
        EXPECT_EQ(e.code(), code) << e.code_name() << ": " << e.what();
        return e.what();
    }
    ADD_FAILURE() << "no deepseek::Error thrown; expected " << ds_status_name(code);
    return "";
}

#endif  // DEEPSEEK_CPP_TEST_SUPPORT_HPP
