// A named tensor in memory (a view into a mapped checkpoint file), the source layers read their
// tensors from and the sink they write them to: layers/ loads and writes through TensorSource and
// TensorSink and never sees model/'s checkpoint readers and writers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/dtype.h"

namespace runllm {

// "[576, 64]": how every error message prints a shape.
std::string shape_to_string(const std::vector<int64_t>& shape);

// `data` stays valid while the file or checkpoint it points into lives.
struct TensorView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const uint8_t* data;
  size_t nbytes;
  int64_t numel() const;
  std::string shape_string() const;  // "[576, 64]"
};

class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual bool has(const std::string& name) const = 0;
  // Throws naming the source and the tensor when absent.
  virtual const TensorView& get(const std::string& name) const = 0;
  // A float tensor (F32, F16 or BF16) converted to fp32, after checking its shape equals
  // `expected_shape`; a mismatch throws "NAME: expected [a, b], got F16 [c, d]".
  virtual std::vector<float> read_f32(const std::string& name, const std::vector<int64_t>& expected_shape) const = 0;
};

// Where a writer puts tensors (a safetensors file being built): layers write their own on-disk
// format through it, without knowing the file.
class TensorSink {
 public:
  virtual ~TensorSink() = default;
  virtual void add(const std::string& name, DType dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes) = 0;
  // fp32 values rounded to fp16 (nearest even).
  virtual void add_f16(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& values) = 0;
};

}  // namespace runllm
