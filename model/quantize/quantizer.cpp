// The layer-by-layer calibration driver of `run-llm quantize`.
//
// Every calibration sample's hidden state [S, L, H] lives in memory. For each decoder layer:
//   1. a statistics pass runs the layer over every sample with an observer that collects what the
//      method needs from each linear's input (GPTQ: Hessians; AWQ: a fixed subsample of input rows;
//      W8A8: per-channel absmax);
//   2. the layer's linears are scaled / quantized and replaced in the model;
//   3. the layer's outputs become the next layer's inputs: GPTQ and W8A8 run the quantized layer
//      (AutoGPTQ: later layers are calibrated on what the quantized earlier layers produce); AWQ keeps
//      the outputs of the statistics pass, i.e. of the unquantized layer, as AutoAWQ's quantizer does
//      (its _get_input_feat computes the next inputs before scaling).
// At the end the model holds AwqLinear / GptqLinear / W8A8Linear everywhere and the rescaled norms, and
// checkpoint_writer writes it.
#include "model/quantize/quantizer.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numeric>

#include "layers/dense_linear.h"
#include "layers/quantized_linear.h"
#include "layers/rtn_quantize.h"
#include "layers/w8a8_linear.h"
#include "model/model_directory.h"
#include "model/quantize/awq_search.h"
#include "model/quantize/calibration.h"
#include "model/quantize/checkpoint_writer.h"
#include "model/quantize/gptq.h"
#include "model/quantize/smoothquant.h"
#include "runtime/dtype.h"
#include "runtime/error.h"

namespace runllm {

void prepare_output_directory(const std::string& out_dir, bool force) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::file_status status = fs::status(out_dir, error);
  if (fs::exists(status) && !fs::is_directory(status))
    throw Error("--out " + out_dir + ": exists and is not a directory");
  if (fs::is_directory(status) && !force) {
    fs::directory_iterator entries(out_dir, error);
    if (error) throw Error("--out " + out_dir + ": cannot list the directory: " + error.message());
    if (entries != fs::directory_iterator())
      throw Error("--out " + out_dir + ": the directory is not empty (it holds " +
                  entries->path().filename().string() +
                  "); choose another directory, or pass --force to overwrite its checkpoint files");
  }
  fs::create_directories(out_dir, error);
  if (error) throw Error("--out " + out_dir + ": cannot create the directory: " + error.message());
  const std::string probe = out_dir + "/.run-llm-write-test";
  std::FILE* file = std::fopen(probe.c_str(), "wb");
  if (!file) throw Error("--out " + out_dir + ": the directory is not writable: " + std::strerror(errno));
  std::fclose(file);
  fs::remove(probe, error);
}

// The distinct [N, K] shapes of a decoder layer's linear modules (v has k's shape, up has gate's),
// named for error messages.
struct ModuleShape {
  const char* name;
  int64_t N, K;
};
std::vector<ModuleShape> module_shapes(const ModelConfig& c) {
  return {{"self_attn.q_proj", c.q_dim(), c.hidden_size}, {"self_attn.k_proj", c.kv_dim(), c.hidden_size},
          {"self_attn.o_proj", c.hidden_size, c.q_dim()}, {"mlp.gate_proj", c.intermediate_size, c.hidden_size},
          {"mlp.down_proj", c.hidden_size, c.intermediate_size}};
}

void check_group_size_fits(const ModelConfig& c, int64_t group_size) {
  if (group_size <= 0) return;  // -1: one group per row fits any shape
  const std::vector<ModuleShape> modules = module_shapes(c);
  int64_t all_k = 0;
  for (const ModuleShape& m : modules) all_k = std::gcd(all_k, m.K);
  for (const ModuleShape& m : modules) {
    if (m.K % group_size == 0) continue;
    std::string choices;
    for (int64_t g = 16; g <= all_k; g *= 2)
      if (all_k % g == 0) choices += std::to_string(g) + ", ";
    throw Error("--group-size " + std::to_string(group_size) + " does not divide in_features " + std::to_string(m.K) +
                " of model.layers.*." + m.name + " [" + std::to_string(m.N) + ", " + std::to_string(m.K) +
                "] (sizes that fit every linear: " + choices + "or -1)");
  }
}

namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kAwqMaxRows = 4096;    // input rows per projection kept for the AWQ searches
constexpr Projection kProjections[] = {Projection::Qkv, Projection::O, Projection::GateUp, Projection::Down};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string format_number(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}
std::string sci(double value) { return format_number("%.2e", value); }

const char* method_name(QuantizeMethod method) {
  switch (method) {
    case QuantizeMethod::Awq: return "awq";
    case QuantizeMethod::Gptq: return "gptq";
    case QuantizeMethod::W8A8: return "w8a8";
    case QuantizeMethod::Rtn: return "rtn";
  }
  return "?";
}

const char* projection_name(Projection projection) {
  switch (projection) {
    case Projection::Qkv: return "qkv";
    case Projection::O: return "o";
    case Projection::GateUp: return "gate_up";
    case Projection::Down: return "down";
  }
  return "?";
}

std::unique_ptr<Linear>& slot(DecoderLayer& layer, Projection projection) {
  switch (projection) {
    case Projection::Qkv: return layer.qkv;
    case Projection::O: return layer.o;
    case Projection::GateUp: return layer.gate_up;
    case Projection::Down: return layer.down;
  }
  throw Error("unknown projection");
}

void validate_options(const QuantizeOptions& o) {
  if (o.model_dir.empty()) throw Error("--model: missing checkpoint directory");
  if (o.out_dir.empty()) throw Error("--out: missing output directory");
  const std::string bits = std::to_string(o.bits);
  switch (o.method) {
    case QuantizeMethod::Awq:
      if (o.bits != 4) throw Error("--method awq writes 4-bit weights only (AutoAWQ gemm), got --bits " + bits);
      if (o.sym) throw Error("--sym does not apply to --method awq (AWQ gemm stores asymmetric zero points)");
      break;
    case QuantizeMethod::W8A8:
      if (o.bits != 8) throw Error("--method w8a8 writes 8-bit weights only, got --bits " + bits);
      if (o.smoothquant_alpha < 0.0 || o.smoothquant_alpha > 1.0)
        throw Error("--smoothquant-alpha must be within [0, 1], got " + format_number("%g", o.smoothquant_alpha));
      break;
    case QuantizeMethod::Gptq:
    case QuantizeMethod::Rtn:
      if (o.bits != 2 && o.bits != 3 && o.bits != 4 && o.bits != 8)
        throw Error(std::string("--method ") + method_name(o.method) + " supports --bits 2, 3, 4 or 8, got " + bits);
      break;
  }
  if (o.act_order && o.method != QuantizeMethod::Gptq)
    throw Error(std::string("--act-order applies to --method gptq only, not ") + method_name(o.method));
  if (o.group_size == 0 || o.group_size < -1)
    throw Error("--group-size must be -1 (one group per row) or a positive size, got " + std::to_string(o.group_size));
  if (o.method != QuantizeMethod::Rtn) {
    if (o.calibration_samples <= 0)
      throw Error("--calib-samples must be positive, got " + std::to_string(o.calibration_samples));
    if (o.calibration_length <= 0)
      throw Error("--calib-len must be positive, got " + std::to_string(o.calibration_length));
  }
}

// Packing constraints of the written format, checked before any calibration time is spent.
void check_shapes(const ModelConfig& c, const QuantizeOptions& o) {
  const std::vector<ModuleShape> modules = module_shapes(c);
  if (o.method == QuantizeMethod::W8A8) return;  // per-channel int8: any shape
  check_group_size_fits(c, o.group_size);
  for (const ModuleShape& m : modules) {
    const std::string where = std::string("model.layers.*.") + m.name + " [" + std::to_string(m.N) + ", " +
                              std::to_string(m.K) + "]";
    if (o.method == QuantizeMethod::Awq && m.N % 8 != 0)
      throw Error(where + ": AWQ gemm packs 8 outputs per int32; out_features must be a multiple of 8");
    if (o.method == QuantizeMethod::Gptq || o.method == QuantizeMethod::Rtn) {
      const int64_t pack = o.bits == 3 ? 32 : 32 / o.bits;  // 3-bit packs 32 values into 3 words
      if (m.K % pack != 0 || m.N % pack != 0)
        throw Error(where + ": GPTQ " + std::to_string(o.bits) + "-bit packs " + std::to_string(pack) +
                    " values per word group; in_features and out_features must be multiples of " + std::to_string(pack));
    }
  }
}

// The fp32 weight and bias of an unquantized linear (the linear says; a quantized one cannot be
// quantized again).
DenseWeights dense_weights(const Linear& linear, const std::string& what) {
  std::optional<DenseWeights> weights = linear.dense_weights();
  if (!weights) throw Error(what + ": expected an unquantized linear, got " + linear.describe());
  return std::move(*weights);
}

float round_to_fp16(float value) { return half_to_float(float_to_half(value)); }

// norm /= s, rounded to fp16 as the checkpoint stores it (the next layers see what is written).
void divide_norm(std::vector<float>& norm, const std::vector<float>& s) {
  for (size_t k = 0; k < norm.size(); ++k) norm[k] = round_to_fp16(norm[k] / s[k]);
}

void multiply_columns(std::vector<float>& weight, int64_t N, int64_t K, const std::vector<float>& s) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) weight[static_cast<size_t>(n * K + k)] *= s[static_cast<size_t>(k)];
}

// Rows [first, first + s.size()) of weight (and bias) divided by s: the producer side of a scale.
void divide_rows(DenseWeights& w, int64_t first, const std::vector<float>& s) {
  for (size_t j = 0; j < s.size(); ++j) {
    float* row = w.weight.data() + (first + static_cast<int64_t>(j)) * w.K;
    for (int64_t k = 0; k < w.K; ++k) row[k] /= s[j];
    if (!w.bias.empty()) w.bias[static_cast<size_t>(first) + j] /= s[j];
  }
}

// The calibration hidden states and the passes over them.
struct Calibration {
  int64_t S = 0, L = 0, H = 0;
  std::vector<float> hidden;  // [S, L, H]: the current layer's inputs
  float* sample(int64_t s) { return hidden.data() + s * L * H; }
};

class SampleAwareObserver : public LinearInputObserver {
 public:
  virtual void begin_sample(int64_t) {}
};

// Runs layer `l` over every sample with `observer`. With `outputs_in_place` the hidden states become
// the layer's outputs; otherwise they stay and the outputs are returned ([S, L, H]).
std::vector<float> statistics_pass(const LlamaModel& model, int64_t l, Calibration& calibration,
                                   SampleAwareObserver& observer, bool outputs_in_place) {
  std::vector<float> outputs;
  if (!outputs_in_place) outputs = calibration.hidden;
  for (int64_t s = 0; s < calibration.S; ++s) {
    observer.begin_sample(s);
    float* x = outputs_in_place ? calibration.sample(s) : outputs.data() + s * calibration.L * calibration.H;
    model.forward_layer_sequence(l, x, calibration.L, &observer);
  }
  return outputs;
}

// Runs the (quantized) layer in place; returns Σ(y - reference)² / Σ(reference - x)²: the output error
// relative to what the unquantized layer adds to the residual stream.
double output_pass(const LlamaModel& model, int64_t l, Calibration& calibration, const std::vector<float>& reference) {
  double error = 0.0, change = 0.0;
  const int64_t size = calibration.L * calibration.H;
  std::vector<float> input(static_cast<size_t>(size));
  for (int64_t s = 0; s < calibration.S; ++s) {
    float* x = calibration.sample(s);
    std::copy(x, x + size, input.begin());
    model.forward_layer_sequence(l, x, calibration.L, nullptr);
    const float* ref = reference.data() + s * size;
    for (int64_t i = 0; i < size; ++i) {
      error += (double(x[i]) - ref[i]) * (double(x[i]) - ref[i]);
      change += (double(ref[i]) - input[i]) * (double(ref[i]) - input[i]);
    }
  }
  return change > 0.0 ? error / change : 0.0;
}

// ---- GPTQ ----

class HessianObserver : public SampleAwareObserver {
 public:
  explicit HessianObserver(const ModelConfig& c) {
    hessians_.emplace_back(c.hidden_size);
    hessians_.emplace_back(c.q_dim());
    hessians_.emplace_back(c.hidden_size);
    hessians_.emplace_back(c.intermediate_size);
  }
  void observe(int64_t, Projection projection, const float* x, int64_t M, int64_t) override {
    hessians_[static_cast<size_t>(projection)].add(x, M);
  }
  const HessianAccumulator& hessian(Projection projection) const { return hessians_[static_cast<size_t>(projection)]; }

 private:
  std::vector<HessianAccumulator> hessians_;  // indexed by Projection
};

std::string quantize_layer_gptq(LlamaModel& model, int64_t l, Calibration& calibration, const QuantizeOptions& o) {
  HessianObserver observer(model.config());
  const std::vector<float> reference = statistics_pass(model, l, calibration, observer, false);
  DecoderLayer& layer = model.mutable_layer(l);
  GptqOptions gptq;
  gptq.bits = o.bits;
  gptq.group_size = o.group_size;
  gptq.sym = o.sym;
  gptq.act_order = o.act_order;
  gptq.damp_percent = o.damp_percent;
  std::string summary;
  // q/k/v (and gate/up) share one Hessian and GPTQ treats rows independently, so quantizing the fused
  // matrix is exactly quantizing each module; act-order's permutation is the same for all of them.
  for (Projection projection : kProjections) {
    std::unique_ptr<Linear>& linear = slot(layer, projection);
    DenseWeights w = dense_weights(*linear, projection_name(projection));
    GptqResult result = gptq_quantize(w.weight.data(), w.N, w.K, observer.hessian(projection), gptq);
    linear = GptqLinear::from_matrix(std::move(result.matrix), std::move(w.bias));
    summary += std::string(projection_name(projection)) + " err " + sci(result.squared_error) + ", ";
  }
  layer.qkv_fused = layer.gate_up_fused = true;
  const double error = output_pass(model, l, calibration, reference);
  return summary + "layer output error " + sci(error);
}

// ---- RTN ----

std::string quantize_layer_rtn(LlamaModel& model, int64_t l, const QuantizeOptions& o) {
  DecoderLayer& layer = model.mutable_layer(l);
  RtnOptions rtn;
  rtn.bits = o.bits;
  rtn.group_size = o.group_size;
  rtn.symmetric = o.sym;
  double squared = 0.0, count = 0.0;
  for (Projection projection : kProjections) {
    std::unique_ptr<Linear>& linear = slot(layer, projection);
    DenseWeights w = dense_weights(*linear, projection_name(projection));
    QuantizedMatrix matrix = rtn_quantize(w.weight.data(), w.N, w.K, rtn);
    const std::vector<float> dequantized = matrix.dequantize();
    for (size_t i = 0; i < dequantized.size(); ++i) squared += double(dequantized[i] - w.weight[i]) * (dequantized[i] - w.weight[i]);
    count += static_cast<double>(dequantized.size());
    linear = GptqLinear::from_matrix(std::move(matrix), std::move(w.bias));
  }
  layer.qkv_fused = layer.gate_up_fused = true;
  return "round-to-nearest, weight rmse " + sci(std::sqrt(squared / count));
}

// ---- AWQ ----

// Keeps the input rows whose global index r (sample * L + position) is floor(j * R / kAwqMaxRows) for
// some j: an evenly spread, deterministic subsample of at most kAwqMaxRows rows per projection.
class RowSampleObserver : public SampleAwareObserver {
 public:
  RowSampleObserver(const ModelConfig& c, int64_t S, int64_t L) : L_(L), keep_(static_cast<size_t>(S * L), false) {
    const int64_t R = S * L;
    if (R <= kAwqMaxRows) std::fill(keep_.begin(), keep_.end(), true);
    else
      for (int64_t j = 0; j < kAwqMaxRows; ++j) keep_[static_cast<size_t>(j * R / kAwqMaxRows)] = true;
    widths_ = {c.hidden_size, c.q_dim(), c.hidden_size, c.intermediate_size};
    rows_.resize(4);
  }
  void begin_sample(int64_t s) override { sample_ = s; }
  void observe(int64_t, Projection projection, const float* x, int64_t M, int64_t K) override {
    std::vector<float>& rows = rows_[static_cast<size_t>(projection)];
    for (int64_t t = 0; t < M; ++t)
      if (keep_[static_cast<size_t>(sample_ * L_ + t)]) rows.insert(rows.end(), x + t * K, x + (t + 1) * K);
  }
  std::vector<float>& rows(Projection projection) { return rows_[static_cast<size_t>(projection)]; }  // [T, K]
  int64_t count(Projection projection) const {
    return static_cast<int64_t>(rows_[static_cast<size_t>(projection)].size()) / widths_[static_cast<size_t>(projection)];
  }

 private:
  int64_t L_, sample_ = 0;
  std::vector<bool> keep_;             // [S * L]
  std::vector<int64_t> widths_;        // K of each projection
  std::vector<std::vector<float>> rows_;
};

// x[:, k] /= s[k]: the inputs a linear sees once its columns are multiplied by s.
void divide_inputs(std::vector<float>& x, int64_t K, const std::vector<float>& s) {
  for (size_t i = 0; i < x.size(); ++i) x[i] /= s[i % static_cast<size_t>(K)];
}

std::string describe_scale(const char* name, const AwqScaleResult& r) {
  return std::string(name) + " " + format_number("α=%.2f", r.alpha) + " loss " + sci(r.rtn_loss) + " -> " +
         sci(r.best_loss);
}

std::string quantize_layer_awq(LlamaModel& model, int64_t l, Calibration& calibration, const QuantizeOptions& o) {
  const ModelConfig& c = model.config();
  const int64_t H = c.hidden_size, I = c.intermediate_size, q_dim = c.q_dim(), kv_dim = c.kv_dim();
  RowSampleObserver observer(c, calibration.S, calibration.L);
  statistics_pass(model, l, calibration, observer, true);  // next inputs from the unquantized layer (AutoAWQ)

  DecoderLayer& layer = model.mutable_layer(l);
  DenseWeights qkv = dense_weights(*layer.qkv, "qkv"), o_proj = dense_weights(*layer.o, "o");
  DenseWeights gate_up = dense_weights(*layer.gate_up, "gate_up"), down = dense_weights(*layer.down, "down");
  AwqSearchOptions search;
  search.group_size = o.group_size;
  const auto T = [&](Projection p) { return observer.count(p); };

  // Every scale is searched on the original weights and inputs, then all are applied (AutoAWQ order).
  const AwqScaleResult s_qkv = awq_search_scales(qkv.weight.data(), qkv.N, H, observer.rows(Projection::Qkv).data(),
                                                 T(Projection::Qkv), search);
  // v -> o scaling needs v's output channels to be o's input channels one to one (no GQA), as AutoAWQ.
  const bool scale_o = q_dim == kv_dim;
  AwqScaleResult s_o;
  if (scale_o)
    s_o = awq_search_scales(o_proj.weight.data(), H, q_dim, observer.rows(Projection::O).data(), T(Projection::O), search);
  const AwqScaleResult s_gate_up = awq_search_scales(gate_up.weight.data(), 2 * I, H,
                                                     observer.rows(Projection::GateUp).data(), T(Projection::GateUp), search);
  const AwqScaleResult s_down = awq_search_scales(down.weight.data(), H, I, observer.rows(Projection::Down).data(),
                                                  T(Projection::Down), search);

  divide_norm(layer.input_norm, s_qkv.scales);
  multiply_columns(qkv.weight, qkv.N, H, s_qkv.scales);
  divide_inputs(observer.rows(Projection::Qkv), H, s_qkv.scales);
  if (scale_o) {
    divide_rows(qkv, q_dim + kv_dim, s_o.scales);
    multiply_columns(o_proj.weight, H, q_dim, s_o.scales);
    divide_inputs(observer.rows(Projection::O), q_dim, s_o.scales);
  }
  divide_norm(layer.post_attention_norm, s_gate_up.scales);
  multiply_columns(gate_up.weight, 2 * I, H, s_gate_up.scales);
  divide_inputs(observer.rows(Projection::GateUp), H, s_gate_up.scales);
  divide_rows(gate_up, I, s_down.scales);  // up's rows: down's input is silu(gate) * up
  multiply_columns(down.weight, H, I, s_down.scales);
  divide_inputs(observer.rows(Projection::Down), I, s_down.scales);

  std::string summary = describe_scale("qkv", s_qkv) + ", " +
                        (scale_o ? describe_scale("o", s_o) : std::string("o not scaled (GQA)")) + ", " +
                        describe_scale("gate_up", s_gate_up) + ", " + describe_scale("down", s_down);
  if (o.awq_clip) {
    // q and k are not clipped: their error passes through q·kᵀ, which the output loss does not see (AutoAWQ).
    const double v = awq_search_clip(qkv.weight.data() + (q_dim + kv_dim) * H, kv_dim, H,
                                     observer.rows(Projection::Qkv).data(), T(Projection::Qkv), search);
    const double o_loss = awq_search_clip(o_proj.weight.data(), H, q_dim, observer.rows(Projection::O).data(),
                                          T(Projection::O), search);
    const double gu = awq_search_clip(gate_up.weight.data(), 2 * I, H, observer.rows(Projection::GateUp).data(),
                                      T(Projection::GateUp), search);
    const double d = awq_search_clip(down.weight.data(), H, I, observer.rows(Projection::Down).data(),
                                     T(Projection::Down), search);
    summary += "; clip loss v " + sci(v) + ", o " + sci(o_loss) + ", gate_up " + sci(gu) + ", down " + sci(d);
  }

  RtnOptions rtn;
  rtn.bits = 4;
  rtn.group_size = o.group_size;
  rtn.symmetric = false;
  const auto quantize = [&](DenseWeights& w) {
    return AwqLinear::from_matrix(rtn_quantize(w.weight.data(), w.N, w.K, rtn), std::move(w.bias));
  };
  layer.qkv = quantize(qkv);
  layer.o = quantize(o_proj);
  layer.gate_up = quantize(gate_up);
  layer.down = quantize(down);
  layer.qkv_fused = layer.gate_up_fused = true;
  return summary;
}

// ---- W8A8 (SmoothQuant + per-channel int8) ----

class AbsMaxObserver : public SampleAwareObserver {
 public:
  explicit AbsMaxObserver(int64_t H) : qkv_(static_cast<size_t>(H), 0.0f), gate_up_(static_cast<size_t>(H), 0.0f) {}
  void observe(int64_t, Projection projection, const float* x, int64_t M, int64_t K) override {
    std::vector<float>* target = projection == Projection::Qkv ? &qkv_ : projection == Projection::GateUp ? &gate_up_ : nullptr;
    if (target == nullptr) return;
    for (int64_t t = 0; t < M; ++t)
      for (int64_t k = 0; k < K; ++k) (*target)[static_cast<size_t>(k)] = std::max((*target)[static_cast<size_t>(k)], std::fabs(x[t * K + k]));
  }
  const std::vector<float>& qkv() const { return qkv_; }          // [H] max |input| of q/k/v per channel
  const std::vector<float>& gate_up() const { return gate_up_; }  // [H] of gate/up

 private:
  std::vector<float> qkv_, gate_up_;
};

std::string scale_range(const char* name, const std::vector<float>& s) {
  const auto [lo, hi] = std::minmax_element(s.begin(), s.end());
  return std::string(name) + " s in [" + format_number("%.3g", *lo) + ", " + format_number("%.3g", *hi) + "]";
}

std::string quantize_layer_w8a8(LlamaModel& model, int64_t l, Calibration& calibration, const QuantizeOptions& o) {
  const ModelConfig& c = model.config();
  const int64_t H = c.hidden_size;
  AbsMaxObserver observer(H);
  const std::vector<float> reference = statistics_pass(model, l, calibration, observer, false);
  DecoderLayer& layer = model.mutable_layer(l);

  DenseWeights qkv = dense_weights(*layer.qkv, "qkv"), gate_up = dense_weights(*layer.gate_up, "gate_up");
  const std::vector<float> s_qkv = smoothquant_scales(observer.qkv(), qkv.weight.data(), qkv.N, H, o.smoothquant_alpha);
  const std::vector<float> s_gate_up =
      smoothquant_scales(observer.gate_up(), gate_up.weight.data(), gate_up.N, H, o.smoothquant_alpha);
  divide_norm(layer.input_norm, s_qkv);
  multiply_columns(qkv.weight, qkv.N, H, s_qkv);
  divide_norm(layer.post_attention_norm, s_gate_up);
  multiply_columns(gate_up.weight, gate_up.N, H, s_gate_up);

  const auto quantize = [](DenseWeights w) {
    return W8A8Linear::from_dense(DenseLinear(std::move(w.weight), std::move(w.bias), w.N, w.K));
  };
  layer.qkv = quantize(std::move(qkv));
  layer.gate_up = quantize(std::move(gate_up));
  layer.o = quantize(dense_weights(*layer.o, "o"));
  layer.down = quantize(dense_weights(*layer.down, "down"));
  layer.qkv_fused = layer.gate_up_fused = true;
  const double error = output_pass(model, l, calibration, reference);
  return format_number("smoothquant α=%.2f: ", o.smoothquant_alpha) + scale_range("qkv", s_qkv) + ", " +
         scale_range("gate_up", s_gate_up) + "; layer output error " + sci(error);
}

// ---- the checkpoint ----

nlohmann::ordered_json quantization_config(const QuantizeOptions& o, bool gptq_v2) {
  using json = nlohmann::ordered_json;
  if (o.method == QuantizeMethod::Awq)
    return json{{"quant_method", "awq"}, {"bits", 4}, {"group_size", o.group_size}, {"zero_point", true},
                {"version", "gemm"}, {"modules_to_not_convert", nullptr}};
  if (o.method == QuantizeMethod::W8A8) {
    const json weights{{"num_bits", 8}, {"type", "int"}, {"symmetric", true}, {"strategy", "channel"}, {"dynamic", false}};
    const json inputs{{"num_bits", 8}, {"type", "int"}, {"symmetric", true}, {"strategy", "token"}, {"dynamic", true}};
    return json{{"quant_method", "compressed-tensors"},
                {"format", "int-quantized"},
                {"config_groups", {{"group_0", {{"targets", {"Linear"}}, {"weights", weights}, {"input_activations", inputs}}}}},
                {"ignore", {"lm_head"}},
                {"quantization_status", "compressed"}};
  }
  return json{{"quant_method", "gptq"},      {"bits", o.bits},           {"group_size", o.group_size},
              {"desc_act", o.act_order},     {"sym", o.sym},             {"static_groups", false},
              {"true_sequential", false},    {"damp_percent", o.damp_percent},
              {"checkpoint_format", gptq_v2 ? "gptq_v2" : "gptq"}};
}

std::string describe_method(const QuantizeOptions& o) {
  std::string text = method_name(o.method);
  if (o.method == QuantizeMethod::W8A8) return text + " int8 per-channel (smoothquant α=" + format_number("%.2f", o.smoothquant_alpha) + ")";
  text += " int" + std::to_string(o.bits) + (o.group_size > 0 ? " g" + std::to_string(o.group_size) : " per-row");
  if (o.act_order) text += " act-order";
  if (o.sym) text += " sym";
  return text;
}

}  // namespace

void quantize_model(const QuantizeOptions& options, const std::function<void(const std::string&)>& progress,
                    const std::function<void(int64_t, int64_t)>& on_layer) {
  validate_options(options);
  const auto start = Clock::now();
  // Mistakes that need no model are reported before the model loads.
  std::error_code same_error;
  if (std::filesystem::exists(options.out_dir) && std::filesystem::equivalent(options.out_dir, options.model_dir, same_error))
    throw Error(options.out_dir + ": --out is the source checkpoint; choose another directory");
  const std::string calibration_path =
      options.method == QuantizeMethod::Rtn ? std::string() : resolve_calibration_file(options.calibration_file);
  prepare_output_directory(options.out_dir, options.force);
  // Said before the wait starts: the default set is slow on a small CPU, and nothing else would say so.
  if (options.method != QuantizeMethod::Rtn && options.calibration_samples * options.calibration_length >= 16384)
    progress("note: calibrating on " + std::to_string(options.calibration_samples) + " x " +
             std::to_string(options.calibration_length) +
             " tokens takes minutes on a small CPU (GPTQ with the default 128 x 512: 9-10 minutes for the 135M "
             "default model on 2 cores, longer for larger models); --calib-samples 16 --calib-len 256 is a quick run");
  ModelDirectory directory = open_model_directory(options.model_dir, false);
  if (directory.quant.method != QuantMethod::None)
    throw Error(options.model_dir + ": already quantized (" + directory.quant.describe() +
                "); quantize from an fp16/bf16/fp32 checkpoint");
  const ModelConfig& config = directory.config;
  check_shapes(config, options);
  LlamaModel& model = *directory.model;
  const int64_t layers = model.num_layers(), H = config.hidden_size;
  progress("quantizing " + options.model_dir + " (" + std::to_string(layers) + " layers) to " + describe_method(options));
  if (on_layer) on_layer(0, layers);

  Calibration calibration;
  if (options.method != QuantizeMethod::Rtn) {
    const std::string& path = calibration_path;
    if (options.calibration_length > config.max_position_embeddings)
      throw Error("--calib-len " + std::to_string(options.calibration_length) + " exceeds the model's " +
                  "max_position_embeddings " + std::to_string(config.max_position_embeddings));
    const CalibrationSet set = load_calibration_set(path, *directory.tokenizer, options.calibration_samples,
                                                    options.calibration_length, options.seed);
    progress("calibration: " + std::to_string(set.samples) + " samples x " + std::to_string(set.length) +
             " tokens from " + path + " (" + std::to_string(set.file_tokens) + " tokens, seed " +
             std::to_string(options.seed) + ")");
    calibration.S = set.samples;
    calibration.L = set.length;
    calibration.H = H;
    calibration.hidden.resize(static_cast<size_t>(calibration.S * calibration.L * H));
    for (int64_t s = 0; s < calibration.S; ++s)
      model.embed(set.tokens.data() + s * calibration.L, calibration.L, calibration.sample(s));
  }

  for (int64_t l = 0; l < layers; ++l) {
    const auto layer_start = Clock::now();
    std::string summary;
    switch (options.method) {
      case QuantizeMethod::Awq: summary = quantize_layer_awq(model, l, calibration, options); break;
      case QuantizeMethod::Gptq: summary = quantize_layer_gptq(model, l, calibration, options); break;
      case QuantizeMethod::W8A8: summary = quantize_layer_w8a8(model, l, calibration, options); break;
      case QuantizeMethod::Rtn: summary = quantize_layer_rtn(model, l, options); break;
    }
    progress("layer " + std::to_string(l + 1) + "/" + std::to_string(layers) + " (" +
             format_number("%.1f", seconds_since(layer_start)) + " s): " + summary);
    if (on_layer) on_layer(l + 1, layers);
  }
  calibration.hidden = {};

  CheckpointWriteOptions write;
  write.source_dir = options.model_dir;
  write.out_dir = options.out_dir;
  bool gptq_v2 = false;
  switch (options.method) {
    case QuantizeMethod::Awq: write.linears.format = WrittenFormat::Awq; break;
    case QuantizeMethod::W8A8: write.linears.format = WrittenFormat::W8A8; break;
    case QuantizeMethod::Gptq:
    case QuantizeMethod::Rtn: {
      write.linears.format = WrittenFormat::Gptq;
      const std::string module = first_module_with_zero_zero(model);
      if (!module.empty()) {
        gptq_v2 = true;
        write.linears.gptq_v1_zeros = false;
        progress("writing checkpoint_format \"gptq_v2\": " + module +
                 " has a true zero of 0, which GPTQ v1 (stored as zero - 1) cannot represent");
      }
      break;
    }
  }
  write.quantization_config = quantization_config(options, gptq_v2);
  const CheckpointWriteResult written = write_quantized_checkpoint(model, write);
  progress("wrote " + options.out_dir + ": " + std::to_string(written.files.size()) + " files, " +
           format_number("%.1f MB", static_cast<double>(written.bytes) / 1e6) + "; " + describe_method(options) +
           " in " + format_number("%.1f s", seconds_since(start)));
}

}  // namespace runllm
