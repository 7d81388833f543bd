// The decode step: one token through the forward, captured once as a CUDA graph and replayed for
// every generated token (its position and token id are read from device memory, so nothing is
// re-captured and the host does not wait per layer).
#include "model/cuda_llama_model.h"
#include "model/decoder_checks.h"
#include "runtime/cuda_check.h"
#include "runtime/error.h"

namespace runllm {

void CudaLlamaModel::decode_step(bool token_on_device) {
  check_context_room(length_, 1, capacity_);
  const cudaStream_t stream = context_.stream();
  if (!use_graph_) {
    if (!token_on_device) throw Error("decode_step: internal: token not staged");
    context_.synchronize();
    host_staging_[max_batch_] = static_cast<int32_t>(length_);
    CUDA_CHECK(cudaMemcpyAsync(positions_, host_staging_ + max_batch_, sizeof(int32_t), cudaMemcpyHostToDevice, stream));
    enqueue_forward(1, length_, 0, false);
    ++length_;
    return;
  }
  context_.synchronize();
  host_staging_[max_batch_] = static_cast<int32_t>(length_);
  CUDA_CHECK(cudaMemcpyAsync(positions_, host_staging_ + max_batch_, sizeof(int32_t), cudaMemcpyHostToDevice, stream));
  if (!graph_exec_) {
    // Captured once: every launch reads its position and token from device memory.
    CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    try {
      enqueue_forward(1, 0, 0, true);
    } catch (...) {
      cudaGraph_t broken = nullptr;
      cudaStreamEndCapture(stream, &broken);
      if (broken) cudaGraphDestroy(broken);
      throw;
    }
    CUDA_CHECK(cudaStreamEndCapture(stream, &graph_));
    CUDA_CHECK(cudaGraphInstantiate(&graph_exec_, graph_, 0));
  }
  CUDA_CHECK(cudaGraphLaunch(graph_exec_, stream));
  ++length_;
}

void CudaLlamaModel::decode_from_device_token() { decode_step(true); }

}  // namespace runllm
