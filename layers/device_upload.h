// Host arrays copied into one device allocation per linear, each piece 256-byte aligned.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "runtime/cuda_context.h"

namespace runllm {

struct HostPiece {
  const void* data = nullptr;  // null: the piece is allocated but left unset (random fills)
  size_t bytes = 0;
};

// Allocates one block for `pieces` (the out-of-memory error names `what`), copies each, and returns
// the device address of each piece in `addresses` (null for a piece of 0 bytes).
DeviceMemory upload_pieces(const std::vector<HostPiece>& pieces, std::vector<void*>& addresses, const std::string& what);

}  // namespace runllm
