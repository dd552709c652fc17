// libdeepseek for C++17: header-only RAII wrappers over the C ABI in include/deepseek.h.
//
// Ownership: every handle kind is a move-only class that frees its handle once, in its
// destructor or reset(); a moved-from or reset object holds NULL, and calls on it throw the
// engine's DS_STATUS_INVALID_HANDLE error. Parents are reference counted inside the engine, so
// destruction order never matters (an Executor keeps working after its Graph is gone).
//
// Errors: every failed C call throws deepseek::Error with the status code and the engine's
// message, read on the same thread right after the call. The first handle created checks the
// library's ABI version (ds_check_abi) and throws DS_STATUS_ABI_MISMATCH naming both.
//
// Threads (the C contract, unchanged): const methods may be called from many threads at once
// (Executor::run, Graph queries, CancelToken, CtrGenerator, Tensor queries); non-const
// methods need the object to themselves; no object may be destroyed while another thread is
// inside a call on it — share with const references to threads joined before the owner ends,
// or with std::shared_ptr<const T> copies so the last user destroys it.
#ifndef DEEPSEEK_HPP
#define DEEPSEEK_HPP

#include "deepseek/attrs.hpp"
#include "deepseek/core.hpp"
#include "deepseek/data.hpp"
#include "deepseek/executor.hpp"
#include "deepseek/graph.hpp"
#include "deepseek/tensor.hpp"
#include "deepseek/trainer.hpp"

#endif  // DEEPSEEK_HPP
