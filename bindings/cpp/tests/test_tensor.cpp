// Tensors through the binding: every dtype round-trips bit for bit, shapes and views read
// back as the engine reports them, and bad copies in or out fail with an Error.
#include <cstring>
#include <limits>

#include "support.hpp"

namespace ds = deepseek;

namespace {

// Six distinct values of each element type, chosen to catch truncation and byte-order bugs.
template <class T> std::vector<T> sample();
template <> std::vector<float> sample() { return {1.5f, -0.0f, 3.0e38f, -1.0e-38f, 0.1f, std::numeric_limits<float>::infinity()}; }
template <> std::vector<double> sample() { return {1.5, -0.0, 1.0e300, -4.9e-324, 0.1, -2.0}; }
template <> std::vector<ds::Half> sample() { return {{0x3C00}, {0x8000}, {0x7BFF}, {0x0001}, {0xC000}, {0x7C00}}; }
template <> std::vector<ds::BFloat16> sample() { return {{0x3F80}, {0x8000}, {0x7F7F}, {0x0001}, {0xC000}, {0x7F80}}; }
template <> std::vector<int32_t> sample() { return {1, -1, INT32_MAX, INT32_MIN, 0, 123456789}; }
template <> std::vector<int64_t> sample() { return {1, -1, INT64_MAX, INT64_MIN, 0, 1234567890123LL}; }
template <> std::vector<uint8_t> sample() { return {0, 1, 127, 128, 254, 255}; }
template <> std::vector<bool> sample() { return {true, false, false, true, true, false}; }

template <class T>
class TensorRoundTrip : public DsTest {};

using AllDtypes = ::testing::Types<float, double, ds::Half, ds::BFloat16, int32_t, int64_t, uint8_t, bool>;
TYPED_TEST_SUITE(TensorRoundTrip, AllDtypes);

}  // namespace

TYPED_TEST(TensorRoundTrip, CopiesInAndOutBitForBitWithShapeAndDtype) {
    using T = TypeParam;
    std::vector<T> values = sample<T>();
    ds::Tensor t = ds::Tensor::from<T>({2, 3}, values);
    EXPECT_EQ(t.dtype(), ds::dtype_of_v<T>);
    EXPECT_EQ(t.shape(), (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(t.ndim(), 2u);
    EXPECT_EQ(t.numel(), 6);
    EXPECT_EQ(t.nbytes(), 6 * sizeof(T));
    std::vector<T> back = t.to_vector<T>();
    ASSERT_EQ(back.size(), values.size());
    if constexpr (std::is_same_v<T, bool>) {
        EXPECT_EQ(back, values);
    } else {
        EXPECT_EQ(std::memcmp(back.data(), values.data(), values.size() * sizeof(T)), 0);
    }
    // A transposed view copies out in its own row-major order.
    std::vector<T> tr = t.transpose(0, 1).template to_vector<T>();
    ASSERT_EQ(tr.size(), 6u);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) EXPECT_TRUE(tr[j * 2 + i] == values[i * 3 + j]) << i << "," << j;
}

TEST_F(DsTest, FromPointerAndCopyToUseCallerMemory) {
    const float data[4] = {1, 2, 3, 4};
    ds::Tensor t = ds::Tensor::from(ds::Shape{4}, data, 4);
    float out[4] = {};
    t.copy_to(out, 4);
    EXPECT_EQ(std::memcmp(out, data, sizeof data), 0);
    // A buffer too small is the engine's error, unchanged.
    float small[2];
    expect_same_error([&] { t.copy_to(small, 2); },
                      [&] { return ds_tensor_copy_to(t.get(), small, sizeof small); });
}

TEST_F(DsTest, ScalarsAndViewsReportTheEnginesShapes) {
    ds::Tensor s = ds::Tensor::from<double>({}, std::vector<double>{2.5});
    EXPECT_EQ(s.ndim(), 0u);
    EXPECT_EQ(s.to_vector<double>(), std::vector<double>{2.5});

    ds::Tensor a = ds::Tensor::arange(0, 12, 1, DS_DTYPE_F32).reshape({3, 4});
    ds::Tensor row = a.slice(0, 1, 2);
    EXPECT_EQ(row.shape(), (std::vector<int64_t>{1, 4}));
    EXPECT_TRUE(row.shares_storage(a));
    EXPECT_EQ(row.to_vector<float>(), (std::vector<float>{4, 5, 6, 7}));
    EXPECT_FALSE(a.transpose(0, 1).is_contiguous());
    EXPECT_EQ(a.cast(DS_DTYPE_I64).to_vector<int64_t>().back(), 11);
    EXPECT_EQ(ds::Tensor::full(DS_DTYPE_I32, {2}, 7).to_vector<int32_t>(), (std::vector<int32_t>{7, 7}));
    EXPECT_EQ(ds::Tensor::zeros(DS_DTYPE_U8, {3}).to_vector<uint8_t>(), (std::vector<uint8_t>{0, 0, 0}));
    EXPECT_EQ(a.device(), std::make_pair(DsDeviceKind{DS_DEVICE_CPU}, 0));
    EXPECT_NE(a.to_string().find("11"), std::string::npos) << a.to_string();
}

TEST_F(DsTest, OpCallReturnsTheEnginesOutputs) {
    ds::Tensor x = ds::Tensor::from<float>({2}, std::vector<float>{1, 2});
    ds::Tensor y = ds::Tensor::from<float>({2}, std::vector<float>{10, 20});
    std::vector<ds::Tensor> out = ds::op_call("add", {x, y});
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].to_vector<float>(), (std::vector<float>{11, 22}));
    // Arity and shape errors are the engine's, unchanged.
    ds::Tensor z = ds::Tensor::from<float>({3}, std::vector<float>{1, 2, 3});
    expect_same_error([&] { ds::op_call("add", {x, z}); },
                      [&] {
                          const DsTensor* in[2] = {x.get(), z.get()};
                          DsTensor* o[1] = {nullptr};
                          size_t n = 0;
                          return ds_op_call("add", in, 2, nullptr, o, 1, &n);
                      });
}

TEST_F(DsTest, AShapeThatDoesNotFitTheDataIsTheEnginesError) {
    std::vector<float> six(6, 1.0f);
    expect_same_error([&] { ds::Tensor::from<float>({4, 2}, six); },
                      [&] {
                          const int64_t dims[2] = {4, 2};
                          DsTensor* t = nullptr;
                          return ds_tensor_from_data(DS_DTYPE_F32, dims, 2, six.data(), six.size() * sizeof(float), &t);
                      });
}

TEST_F(DsTest, CopyingOutAsAnotherDtypeIsRefused) {
    // Same element size (f32 vs i32): ds_tensor_copy_to would copy the bytes, so the binding
    // compares the dtype itself and names both.
    ds::Tensor t = ds::Tensor::from<float>({2}, std::vector<float>{1, 2});
    std::string msg = expect_error(DS_STATUS_DTYPE_MISMATCH, [&] { t.to_vector<int32_t>(); });
    EXPECT_NE(msg.find("i32"), std::string::npos) << msg;
    EXPECT_NE(msg.find("f32"), std::string::npos) << msg;
    expect_error(DS_STATUS_DTYPE_MISMATCH, [&] { t.to_vector<double>(); });
    int64_t big[2];
    expect_error(DS_STATUS_DTYPE_MISMATCH, [&] { t.copy_to(big, 2); });
}
