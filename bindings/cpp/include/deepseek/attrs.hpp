// Attrs: a typed attribute list (ds_attrs_*) for models, layers, ops, optimizers, schedules.
#ifndef DEEPSEEK_ATTRS_HPP
#define DEEPSEEK_ATTRS_HPP

#include <string>

#include "deepseek/core.hpp"

namespace deepseek {

/// An attribute list: (name, typed value) pairs. One thread at a time while it is being
/// filled; calls that take it only read it, so it may then be shared. Setters chain:
/// `Attrs().set_int("num_dense", 4).set_ints("mlp", {8, 4})`. The setters have distinct names
/// because C++ would convert a literal between int, double and bool silently.
class Attrs : public detail::Handle<DsAttrs, ds_attrs_free> {
public:
    /// An empty list (ds_attrs_create).
    Attrs() : Handle(create()) {}
    /// Sets (or replaces) an integer attribute.
    Attrs& set_int(const char* name, int64_t value) {
        detail::check(ds_attrs_set_int(raw_, name, value));
        return *this;
    }
    /// Sets (or replaces) a float attribute.
    Attrs& set_float(const char* name, double value) {
        detail::check(ds_attrs_set_float(raw_, name, value));
        return *this;
    }
    /// Sets (or replaces) a bool attribute.
    Attrs& set_bool(const char* name, bool value) {
        detail::check(ds_attrs_set_bool(raw_, name, value));
        return *this;
    }
    /// Sets (or replaces) an integer-list attribute.
    Attrs& set_ints(const char* name, Span<int64_t> values) {
        detail::check(ds_attrs_set_ints(raw_, name, values.data(), values.size()));
        return *this;
    }
    /// Sets (or replaces) a string attribute (copied by the engine).
    Attrs& set_string(const char* name, const std::string& value) {
        detail::check(ds_attrs_set_string(raw_, name, value.c_str()));
        return *this;
    }

private:
    static DsAttrs* create() {
        detail::ensure_abi();
        DsAttrs* a = nullptr;
        detail::check(ds_attrs_create(&a));
        return a;
    }
};

}  // namespace deepseek

#endif  // DEEPSEEK_ATTRS_HPP
