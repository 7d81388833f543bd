// Linear::fuse_rows for a format T with T::can_concat and T::concat_rows: every part must be a T.
#pragma once
#include <memory>
#include <vector>

#include "layers/linear.h"

namespace runllm {

template <typename T>
std::unique_ptr<Linear> fuse_rows_of(const std::vector<const Linear*>& parts) {
  std::vector<const T*> typed;
  for (const Linear* part : parts) {
    const T* same_format = dynamic_cast<const T*>(part);
    if (same_format == nullptr) return nullptr;
    typed.push_back(same_format);
  }
  if (!T::can_concat(parts)) return nullptr;
  return T::concat_rows(typed);
}

}  // namespace runllm
