// Data and metrics: the synthetic CTR stream, the gmix set, AUC / log loss / accuracy.
#ifndef DEEPSEEK_DATA_HPP
#define DEEPSEEK_DATA_HPP

#include "deepseek/core.hpp"
#include "deepseek/tensor.hpp"

namespace deepseek {

/// One batch of the CTR stream: dense f32 [n, 13], ids i64 [n, 26], labels f32 [n], and the
/// true click probabilities f32 [n] (an empty Tensor when not asked for).
struct CtrBatch {
    Tensor dense;   ///< dense features
    Tensor ids;     ///< categorical ids, one column per field
    Tensor labels;  ///< 0/1 clicks
    Tensor probs;   ///< the oracle's probabilities, or empty
};

/// The engine's synthetic Criteo-shaped stream (seed + cursor). Every method is const: the
/// engine makes concurrent draws on one generator take turns.
class CtrGenerator : public detail::Handle<DsCtrGenerator, ds_ctr_generator_free> {
public:
    /// The default settings (ds_ctr_config_init): 26 fields of 100,000 ids, Zipf 1.1.
    static DsCtrConfig default_config() {
        detail::ensure_abi();
        DsCtrConfig c{};
        c.struct_size = sizeof c;
        detail::check(ds_ctr_config_init(&c));
        return c;
    }
    /// A generator at cursor 0 with `config` (default_config() when NULL) and `seed`.
    explicit CtrGenerator(uint64_t seed, const DsCtrConfig* config = nullptr) : Handle(create(seed, config)) {}
    /// As CtrGenerator(seed, &config).
    CtrGenerator(uint64_t seed, const DsCtrConfig& config) : CtrGenerator(seed, &config) {}

    /// Draws the next `n` samples; `with_probs` also returns the true probabilities.
    CtrBatch next(int64_t n, bool with_probs = false) const {
        DsTensor *d = nullptr, *i = nullptr, *l = nullptr, *p = nullptr;
        detail::check(ds_ctr_generator_next(raw_, n, &d, &i, &l, with_probs ? &p : nullptr));
        return CtrBatch{Tensor(d), Tensor(i), Tensor(l), Tensor(p)};
    }
    /// The index of the next sample.
    uint64_t cursor() const {
        uint64_t c = 0;
        detail::check(ds_ctr_generator_cursor(raw_, &c));
        return c;
    }
    /// Positions the stream at sample `cursor` (constant time).
    void seek(uint64_t cursor) const { detail::check(ds_ctr_generator_seek(raw_, cursor)); }

private:
    static DsCtrGenerator* create(uint64_t seed, const DsCtrConfig* config) {
        detail::ensure_abi();
        DsCtrGenerator* g = nullptr;
        detail::check(ds_ctr_generator_new(config, seed, &g));
        return g;
    }
};

/// The gmix classification set for `seed` (ds_gmix_generate).
struct Gmix {
    Tensor x_train;  ///< f32 [8000, 32]
    Tensor y_train;  ///< i64 [8000]
    Tensor x_test;   ///< f32 [4000, 32]
    Tensor y_test;   ///< i64 [4000]
};

/// Generates the gmix set for `seed`.
inline Gmix gmix(uint64_t seed) {
    detail::ensure_abi();
    DsTensor *a = nullptr, *b = nullptr, *c = nullptr, *d = nullptr;
    detail::check(ds_gmix_generate(seed, &a, &b, &c, &d));
    return Gmix{Tensor(a), Tensor(b), Tensor(c), Tensor(d)};
}

/// Exact ROC AUC of `scores` against 0/1 `labels` (ds_metric_auc).
inline double auc(const Tensor& scores, const Tensor& labels) {
    double v = 0;
    detail::check(ds_metric_auc(scores.get(), labels.get(), &v));
    return v;
}

/// Mean binary cross-entropy of probabilities against 0/1 labels (ds_metric_log_loss).
inline double log_loss(const Tensor& probs, const Tensor& labels) {
    double v = 0;
    detail::check(ds_metric_log_loss(probs.get(), labels.get(), &v));
    return v;
}

/// Binary or multiclass accuracy (ds_metric_accuracy).
inline double accuracy(const Tensor& scores, const Tensor& labels) {
    double v = 0;
    detail::check(ds_metric_accuracy(scores.get(), labels.get(), &v));
    return v;
}

}  // namespace deepseek

#endif  // DEEPSEEK_DATA_HPP
