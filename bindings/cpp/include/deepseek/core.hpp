// The pieces every other part of the C++ binding uses: the error type, the status check, the
// ABI check on first use, a read-only span, the owning handle base, and process-wide queries.
#ifndef DEEPSEEK_CORE_HPP
#define DEEPSEEK_CORE_HPP

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "deepseek.h"

/// The ABI version this binding expects from the library. Defaults to the C header's
/// DS_ABI_VERSION; a test builds one program with another value to see the refusal.
#ifndef DEEPSEEK_HPP_EXPECTED_ABI
#define DEEPSEEK_HPP_EXPECTED_ABI DS_ABI_VERSION
#endif

/// C++17 wrapper over the libdeepseek C ABI (include/deepseek.h): RAII ownership and
/// exceptions, nothing else. Every method is one C call (or a size query plus one call).
namespace deepseek {

/// A failed C call: the engine's status code and its message, read on the failing thread
/// right after the call (ds_last_error() is thread-local and overwritten by the next call).
class Error : public std::runtime_error {
public:
    /// Wraps a status and a message; what() is the message exactly as the engine wrote it.
    Error(DsStatus code, const std::string& message) : std::runtime_error(message), code_(code) {}
    /// The DS_STATUS_* code the C function returned.
    DsStatus code() const noexcept { return code_; }
    /// The code's name ("DS_STATUS_SHAPE_MISMATCH"), or "DS_STATUS_<n>" for an unknown code.
    std::string code_name() const {
        const char* n = ds_status_name(code_);
        return n ? n : "DS_STATUS_" + std::to_string(code_);
    }

private:
    DsStatus code_;
};

namespace detail {

/// Throws the engine's error for a failed status. Must be called before any other ds_
/// call on this thread, so that ds_last_error() still describes this failure.
inline void check(DsStatus status) {
    if (status != DS_STATUS_OK) throw Error(status, ds_last_error());
}

/// Runs ds_check_abi once per process (the first time any handle is created); a library
/// of another ABI version is refused with the engine's message naming both versions. A
/// failed check is retried, and throws again, on every later creation.
inline void ensure_abi() {
    static const bool checked = [] {
        check(ds_check_abi(DEEPSEEK_HPP_EXPECTED_ABI));
        return true;
    }();
    (void)checked;
}

}  // namespace detail

/// A read-only view of contiguous elements (C++17 has no std::span): pointer + count, made
/// from a pointer and size, a std::vector, a std::array, a C array or a braced list. It does
/// not own the elements; a braced list lives until the end of the call it is passed to.
template <class T>
class Span {
public:
    /// Empty.
    constexpr Span() noexcept = default;
    /// `size` elements at `data`.
    constexpr Span(const T* data, std::size_t size) noexcept : data_(data), size_(size) {}
    /// The elements of a vector.
    Span(const std::vector<T>& v) noexcept : data_(v.data()), size_(v.size()) {}
    /// The elements of an array.
    template <std::size_t N>
    constexpr Span(const std::array<T, N>& a) noexcept : data_(a.data()), size_(N) {}
    /// The elements of a C array.
    template <std::size_t N>
    constexpr Span(const T (&a)[N]) noexcept : data_(a), size_(N) {}
    /// The elements of a braced list (valid for the full expression it appears in, which is
    /// what a call argument needs; GCC warns because a Span kept longer would dangle).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winit-list-lifetime"
#endif
    constexpr Span(std::initializer_list<T> l) noexcept : data_(l.begin()), size_(l.size()) {}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

    /// First element (may be NULL when empty).
    constexpr const T* data() const noexcept { return data_; }
    /// Element count.
    constexpr std::size_t size() const noexcept { return size_; }
    /// Whether there are no elements.
    constexpr bool empty() const noexcept { return size_ == 0; }
    /// Element `i` (unchecked, as std::span).
    constexpr const T& operator[](std::size_t i) const noexcept { return data_[i]; }
    /// Iteration.
    constexpr const T* begin() const noexcept { return data_; }
    /// Iteration.
    constexpr const T* end() const noexcept { return data_ + size_; }

private:
    const T* data_ = nullptr;
    std::size_t size_ = 0;
};

/// A tensor shape: dimensions as the C ABI takes them (`{8, 4}`; `{}` is a scalar).
using Shape = Span<int64_t>;

namespace detail {

/// The owning base of every handle class: one C pointer, freed exactly once by `Free`.
/// Move-only; a moved-from or reset object holds NULL, which the C functions reject with
/// DS_STATUS_INVALID_HANDLE (so using it throws, never crashes), and which `Free` ignores.
template <class H, DsStatus (*Free)(H*)>
class Handle {
public:
    /// Takes ownership of `raw` (NULL allowed).
    explicit Handle(H* raw = nullptr) noexcept : raw_(raw) {}
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    /// Moves ownership; `other` is left holding NULL.
    Handle(Handle&& other) noexcept : raw_(other.raw_) { other.raw_ = nullptr; }
    /// Frees what this held, then takes `other`'s handle.
    Handle& operator=(Handle&& other) noexcept {
        if (this != &other) {
            reset();
            raw_ = other.raw_;
            other.raw_ = nullptr;
        }
        return *this;
    }
    ~Handle() { reset(); }

    /// Frees the handle now (a no-op when already NULL); the object then holds NULL.
    void reset() noexcept {
        H* raw = raw_;
        raw_ = nullptr;
        (void)Free(raw);  // fails only for foreign pointers, which this class never holds
    }
    /// The C handle, still owned by this object (for calling the C API directly).
    H* get() const noexcept { return raw_; }
    /// Gives up ownership: the caller must free the returned handle with the C function.
    H* release() noexcept {
        H* raw = raw_;
        raw_ = nullptr;
        return raw;
    }
    /// Whether a handle is held (false after a move or reset).
    explicit operator bool() const noexcept { return raw_ != nullptr; }

protected:
    H* raw_;
};

/// A small array on the stack for the per-call name/handle lists, on the heap beyond N.
template <class T, std::size_t N = 16>
class SmallArray {
public:
    explicit SmallArray(std::size_t n) : n_(n) {
        if (n > N) heap_.resize(n);
    }
    T* data() noexcept { return n_ > N ? heap_.data() : stack_.data(); }
    std::size_t size() const noexcept { return n_; }
    T& operator[](std::size_t i) noexcept { return data()[i]; }

private:
    std::size_t n_;
    std::array<T, N> stack_{};
    std::vector<T> heap_;
};

}  // namespace detail

/// Checks that the library's ABI is `expected` (ds_check_abi): DS_STATUS_ABI_MISMATCH with
/// both versions in the message otherwise. The binding does this itself on first use.
inline void check_abi(uint32_t expected = DEEPSEEK_HPP_EXPECTED_ABI) { detail::check(ds_check_abi(expected)); }

/// The library's version string ("0.1.0").
inline std::string version() { return ds_version_string(); }

/// The library's ABI version (compare with DS_ABI_VERSION).
inline uint32_t abi_version() noexcept { return ds_abi_version(); }

/// Live handles of every kind in the process (0 after full teardown; leak tests use it).
inline uint64_t live_objects() noexcept { return ds_live_objects(); }

/// The name of a status code, or an empty string for an unknown code.
inline std::string status_name(DsStatus status) {
    const char* n = ds_status_name(status);
    return n ? n : "";
}

/// Sets the engine's thread pool size (ds_set_num_threads; 1 = the calling thread).
inline void set_num_threads(int32_t n) { detail::check(ds_set_num_threads(n)); }

/// The engine's thread pool size.
inline int32_t num_threads() {
    int32_t n = 0;
    detail::check(ds_get_num_threads(&n));
    return n;
}

/// The number of usable CUDA devices (0 without CUDA).
inline int32_t cuda_device_count() {
    int32_t n = 0;
    detail::check(ds_cuda_device_count(&n));
    return n;
}

}  // namespace deepseek

#endif  // DEEPSEEK_CORE_HPP
