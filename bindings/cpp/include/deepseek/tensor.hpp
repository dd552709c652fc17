// Tensor: an owned DsTensor handle, typed copies in and out, views, and ds_op_call.
#ifndef DEEPSEEK_TENSOR_HPP
#define DEEPSEEK_TENSOR_HPP

#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "deepseek/attrs.hpp"
#include "deepseek/core.hpp"

namespace deepseek {

/// An IEEE half float as its raw bits (C++17 has no such type; the engine does the maths).
struct Half {
    uint16_t bits;  ///< the raw binary16 bits
    friend bool operator==(Half a, Half b) { return a.bits == b.bits; }
    friend bool operator!=(Half a, Half b) { return a.bits != b.bits; }
};

/// A bfloat16 as its raw bits.
struct BFloat16 {
    uint16_t bits;  ///< the raw bfloat16 bits
    friend bool operator==(BFloat16 a, BFloat16 b) { return a.bits == b.bits; }
    friend bool operator!=(BFloat16 a, BFloat16 b) { return a.bits != b.bits; }
};

/// The DS_DTYPE_* code of a C++ element type, fixed at compile time; other types do not compile.
template <class T>
struct dtype_of;
template <> struct dtype_of<float> { static constexpr DsDtype value = DS_DTYPE_F32; };
template <> struct dtype_of<double> { static constexpr DsDtype value = DS_DTYPE_F64; };
template <> struct dtype_of<Half> { static constexpr DsDtype value = DS_DTYPE_F16; };
template <> struct dtype_of<BFloat16> { static constexpr DsDtype value = DS_DTYPE_BF16; };
template <> struct dtype_of<int32_t> { static constexpr DsDtype value = DS_DTYPE_I32; };
template <> struct dtype_of<int64_t> { static constexpr DsDtype value = DS_DTYPE_I64; };
template <> struct dtype_of<uint8_t> { static constexpr DsDtype value = DS_DTYPE_U8; };
template <> struct dtype_of<bool> { static constexpr DsDtype value = DS_DTYPE_BOOL; };
/// Shorthand for dtype_of<T>::value.
template <class T>
constexpr DsDtype dtype_of_v = dtype_of<T>::value;

static_assert(sizeof(bool) == 1, "DS_DTYPE_BOOL is one byte; this compiler's bool is not");
static_assert(sizeof(Half) == 2 && sizeof(BFloat16) == 2, "half types must be two bytes");

/// The name of a dtype code ("f32"); throws the engine's error for an unknown code.
inline std::string dtype_name(DsDtype dtype) {
    const char* n = ds_dtype_name(dtype);
    if (!n) detail::check(DS_STATUS_INVALID_DTYPE);
    return n;
}

/// An owned tensor handle. Move-only; `Tensor()` and moved-from tensors hold NULL and every
/// call on them throws DS_STATUS_INVALID_HANDLE. Const methods may run from many threads at
/// once; the non-const ones (and destruction) need the tensor to themselves.
class Tensor : public detail::Handle<DsTensor, ds_tensor_free> {
public:
    /// No tensor (NULL).
    Tensor() noexcept = default;
    /// Takes ownership of a handle from the C API (NULL allowed).
    explicit Tensor(DsTensor* raw) noexcept : Handle(raw) {}

    /// A CPU tensor holding a copy of `data` (ds_tensor_from_data): the engine checks that
    /// the element count fits `shape` and fails with its own message when it does not.
    template <class T>
    static Tensor from(Shape shape, Span<T> data) {
        detail::ensure_abi();
        DsTensor* t = nullptr;
        detail::check(ds_tensor_from_data(dtype_of_v<T>, shape.data(), shape.size(), data.data(),
                                          data.size() * sizeof(T), &t));
        return Tensor(t);
    }
    /// As from(shape, Span) for a vector (also std::vector<bool>, copied to bytes first).
    template <class T>
    static Tensor from(Shape shape, const std::vector<T>& data) {
        if constexpr (std::is_same_v<T, bool>) {
            std::unique_ptr<bool[]> bytes(new bool[data.size()]);
            for (std::size_t i = 0; i < data.size(); i++) bytes[i] = data[i];
            return from<bool>(shape, Span<bool>(bytes.get(), data.size()));
        } else {
            return from<T>(shape, Span<T>(data));
        }
    }
    /// As from(shape, Span) for `n` elements at `data`.
    template <class T>
    static Tensor from(Shape shape, const T* data, std::size_t n) {
        return from<T>(shape, Span<T>(data, n));
    }

    /// Zeros of `dtype` (ds_tensor_zeros), on the CPU unless a device is given.
    static Tensor zeros(DsDtype dtype, Shape shape, DsDeviceKind device = DS_DEVICE_CPU, int32_t index = 0) {
        detail::ensure_abi();
        DsTensor* t = nullptr;
        detail::check(ds_tensor_zeros(dtype, shape.data(), shape.size(), device, index, &t));
        return Tensor(t);
    }
    /// Every element `value`, converted by the engine's cast rules (ds_tensor_full).
    static Tensor full(DsDtype dtype, Shape shape, double value, DsDeviceKind device = DS_DEVICE_CPU,
                       int32_t index = 0) {
        detail::ensure_abi();
        DsTensor* t = nullptr;
        detail::check(ds_tensor_full(dtype, shape.data(), shape.size(), value, device, index, &t));
        return Tensor(t);
    }
    /// `start, start+step, ...` below `end` (ds_tensor_arange).
    static Tensor arange(double start, double end, double step, DsDtype dtype,
                         DsDeviceKind device = DS_DEVICE_CPU, int32_t index = 0) {
        detail::ensure_abi();
        DsTensor* t = nullptr;
        detail::check(ds_tensor_arange(start, end, step, dtype, device, index, &t));
        return Tensor(t);
    }
    /// Uniform values in [low, high) from the engine's seeded generator (ds_tensor_rand_uniform).
    static Tensor rand_uniform(DsDtype dtype, Shape shape, double low, double high, uint64_t seed,
                               DsDeviceKind device = DS_DEVICE_CPU, int32_t index = 0) {
        detail::ensure_abi();
        DsTensor* t = nullptr;
        detail::check(ds_tensor_rand_uniform(dtype, shape.data(), shape.size(), low, high, seed, device, index, &t));
        return Tensor(t);
    }
    /// Normal values from the engine's seeded generator (ds_tensor_rand_normal).
    static Tensor rand_normal(DsDtype dtype, Shape shape, double mean, double std, uint64_t seed,
                              DsDeviceKind device = DS_DEVICE_CPU, int32_t index = 0) {
        detail::ensure_abi();
        DsTensor* t = nullptr;
        detail::check(ds_tensor_rand_normal(dtype, shape.data(), shape.size(), mean, std, seed, device, index, &t));
        return Tensor(t);
    }

    /// Number of dimensions.
    std::size_t ndim() const {
        std::size_t n = 0;
        detail::check(ds_tensor_ndim(raw_, &n));
        return n;
    }
    /// The dimensions.
    std::vector<int64_t> shape() const {
        std::vector<int64_t> dims(ndim());
        detail::check(ds_tensor_shape(raw_, dims.data(), dims.size()));
        return dims;
    }
    /// The element strides (how a view maps onto its storage).
    std::vector<int64_t> strides() const {
        std::vector<int64_t> s(ndim());
        detail::check(ds_tensor_strides(raw_, s.data(), s.size()));
        return s;
    }
    /// Element count.
    int64_t numel() const {
        int64_t n = 0;
        detail::check(ds_tensor_numel(raw_, &n));
        return n;
    }
    /// Bytes of the elements when packed.
    std::size_t nbytes() const {
        std::size_t n = 0;
        detail::check(ds_tensor_nbytes(raw_, &n));
        return n;
    }
    /// The DS_DTYPE_* code.
    DsDtype dtype() const {
        DsDtype d = 0;
        detail::check(ds_tensor_dtype(raw_, &d));
        return d;
    }
    /// Whether the elements are row-major and gap-free in storage.
    bool is_contiguous() const {
        bool c = false;
        detail::check(ds_tensor_is_contiguous(raw_, &c));
        return c;
    }
    /// Whether both tensors view the same storage.
    bool shares_storage(const Tensor& other) const {
        bool s = false;
        detail::check(ds_tensor_shares_storage(raw_, other.raw_, &s));
        return s;
    }
    /// The device kind (DS_DEVICE_*) and index.
    std::pair<DsDeviceKind, int32_t> device() const {
        DsDeviceKind k = 0;
        int32_t i = 0;
        detail::check(ds_tensor_device(raw_, &k, &i));
        return {k, i};
    }

    /// Copies the elements out, row-major and packed (ds_tensor_copy_to, any device, views
    /// too). T must be the tensor's dtype: ds_tensor_copy_to copies bytes and cannot see the
    /// caller's type, so a mismatch is refused here with DS_STATUS_DTYPE_MISMATCH naming both.
    template <class T>
    std::vector<T> to_vector() const {
        std::size_t n = static_cast<std::size_t>(typed_numel<T>());
        if constexpr (std::is_same_v<T, bool>) {
            std::unique_ptr<bool[]> bytes(new bool[n]);
            detail::check(ds_tensor_copy_to(raw_, bytes.get(), n * sizeof(bool)));
            return std::vector<bool>(bytes.get(), bytes.get() + n);
        } else {
            std::vector<T> out(n);
            detail::check(ds_tensor_copy_to(raw_, out.data(), n * sizeof(T)));
            return out;
        }
    }
    /// Copies the elements into the caller's `n` elements at `dst` (no allocation); the
    /// engine fails with DS_STATUS_BUFFER_TOO_SMALL when they do not fit. Dtype as to_vector.
    template <class T>
    void copy_to(T* dst, std::size_t n) const {
        typed_numel<T>();
        detail::check(ds_tensor_copy_to(raw_, dst, n * sizeof(T)));
    }
    /// A printable form (ds_tensor_to_string).
    std::string to_string() const {
        std::size_t needed = 0;
        DsStatus s = ds_tensor_to_string(raw_, nullptr, 0, &needed);
        if (s != DS_STATUS_BUFFER_TOO_SMALL) detail::check(s);
        std::string buf(needed, '\0');
        detail::check(ds_tensor_to_string(raw_, &buf[0], buf.size(), &needed));
        buf.resize(needed ? needed - 1 : 0);
        return buf;
    }

    /// Same elements with shape `shape` (one entry may be -1): a view when possible, else a copy.
    Tensor reshape(Shape shape) const {
        return make([&](DsTensor** o) { return ds_tensor_reshape(raw_, shape.data(), shape.size(), o); });
    }
    /// Like reshape but always zero-copy (DS_STATUS_SHAPE_MISMATCH when the strides forbid it).
    Tensor view(Shape shape) const {
        return make([&](DsTensor** o) { return ds_tensor_view(raw_, shape.data(), shape.size(), o); });
    }
    /// A zero-copy view with dimensions reordered.
    Tensor permute(Span<int64_t> perm) const {
        return make([&](DsTensor** o) { return ds_tensor_permute(raw_, perm.data(), perm.size(), o); });
    }
    /// A zero-copy view with two dimensions swapped.
    Tensor transpose(int64_t dim0, int64_t dim1) const {
        return make([&](DsTensor** o) { return ds_tensor_transpose(raw_, dim0, dim1, o); });
    }
    /// A zero-copy view of `start, start+step, ...` below `end` along `dim` (INT64_MAX: to the end).
    Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const {
        return make([&](DsTensor** o) { return ds_tensor_slice(raw_, dim, start, end, step, o); });
    }
    /// A zero-copy broadcast to `shape`.
    Tensor expand(Shape shape) const {
        return make([&](DsTensor** o) { return ds_tensor_expand(raw_, shape.data(), shape.size(), o); });
    }
    /// A view without size-1 dimension `dim`.
    Tensor squeeze(int64_t dim) const {
        return make([&](DsTensor** o) { return ds_tensor_squeeze(raw_, dim, o); });
    }
    /// A view with a size-1 dimension inserted at `dim`.
    Tensor unsqueeze(int64_t dim) const {
        return make([&](DsTensor** o) { return ds_tensor_unsqueeze(raw_, dim, o); });
    }
    /// A new handle sharing storage when contiguous, else a packed copy.
    Tensor contiguous() const {
        return make([&](DsTensor** o) { return ds_tensor_contiguous(raw_, o); });
    }
    /// The elements converted to `dtype` by the engine's cast rules.
    Tensor cast(DsDtype dtype) const {
        return make([&](DsTensor** o) { return ds_tensor_cast(raw_, dtype, o); });
    }
    /// A copy on another device (shares storage when already there).
    Tensor to_device(DsDeviceKind kind, int32_t index = 0) const {
        return make([&](DsTensor** o) { return ds_tensor_to_device(raw_, kind, index, o); });
    }
    /// A new handle to the same data without autograd history.
    Tensor detach() const {
        return make([&](DsTensor** o) { return ds_tensor_detach(raw_, o); });
    }

    /// Marks the tensor as a leaf that needs a gradient (or not).
    void set_requires_grad(bool requires_grad) { detail::check(ds_tensor_set_requires_grad(raw_, requires_grad)); }
    /// Whether the tensor requires grad.
    bool requires_grad() const {
        bool r = false;
        detail::check(ds_tensor_requires_grad(raw_, &r));
        return r;
    }
    /// Back-propagates from this tensor (`seed` NULL for a one-element tensor).
    void backward(const Tensor* seed = nullptr, bool retain_graph = false) const {
        detail::check(ds_tensor_backward(raw_, seed ? seed->raw_ : nullptr, retain_graph));
    }
    /// The accumulated gradient, or an empty Tensor when there is none yet.
    Tensor grad() const {
        return make([&](DsTensor** o) { return ds_tensor_grad(raw_, o); });
    }
    /// Clears the accumulated gradient.
    void zero_grad() { detail::check(ds_tensor_zero_grad(raw_)); }

private:
    // The element count, after refusing a T that is not the tensor's dtype (see to_vector).
    template <class T>
    int64_t typed_numel() const {
        DsDtype d = dtype();
        if (d != dtype_of_v<T>) {
            throw Error(DS_STATUS_DTYPE_MISMATCH, "copy out as " + dtype_name(dtype_of_v<T>) +
                                                      " from a tensor of dtype " + dtype_name(d));
        }
        return numel();
    }
    // Runs a C call that writes one new handle and wraps it.
    template <class F>
    static Tensor make(F&& call) {
        DsTensor* t = nullptr;
        detail::check(call(&t));
        return Tensor(t);
    }
};

/// Tensors passed by reference in a list: `{a, b}`.
using TensorRefs = Span<std::reference_wrapper<const Tensor>>;

/// Calls the op `name` on `inputs` with `attrs` (NULL for none) eagerly (ds_op_call) and
/// returns its outputs. The engine's error names the op, the argument and the values.
inline std::vector<Tensor> op_call(const char* name, TensorRefs inputs, const Attrs* attrs = nullptr) {
    detail::ensure_abi();
    detail::SmallArray<const DsTensor*> in(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); i++) in[i] = inputs[i].get().get();
    std::size_t n = 0;
    detail::SmallArray<DsTensor*, 4> out(4);
    DsStatus s = ds_op_call(name, in.data(), in.size(), attrs ? attrs->get() : nullptr, out.data(), out.size(), &n);
    if (s == DS_STATUS_BUFFER_TOO_SMALL) {
        detail::SmallArray<DsTensor*, 4> more(n);
        detail::check(ds_op_call(name, in.data(), in.size(), attrs ? attrs->get() : nullptr, more.data(),
                                 more.size(), &n));
        std::vector<Tensor> result;
        for (std::size_t i = 0; i < n; i++) result.emplace_back(more[i]);
        return result;
    }
    detail::check(s);
    std::vector<Tensor> result;
    for (std::size_t i = 0; i < n; i++) result.emplace_back(out[i]);
    return result;
}

}  // namespace deepseek

#endif  // DEEPSEEK_TENSOR_HPP
