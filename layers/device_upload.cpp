#include "layers/device_upload.h"

#include "layers/device_linear.h"
#include "runtime/cuda_check.h"

namespace runllm {

DeviceMemory upload_pieces(const std::vector<HostPiece>& pieces, std::vector<void*>& addresses, const std::string& what) {
  size_t total = 0;
  for (const HostPiece& piece : pieces) total += align_device_bytes(piece.bytes);
  DeviceMemory memory(std::max<size_t>(total, 256), what);
  addresses.clear();
  char* cursor = static_cast<char*>(memory.get());
  for (const HostPiece& piece : pieces) {
    addresses.push_back(piece.bytes ? cursor : nullptr);
    if (piece.data && piece.bytes) CUDA_CHECK(cudaMemcpy(cursor, piece.data, piece.bytes, cudaMemcpyHostToDevice));
    cursor += align_device_bytes(piece.bytes);
  }
  return memory;
}

}  // namespace runllm
