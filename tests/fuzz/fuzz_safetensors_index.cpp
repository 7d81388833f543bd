// libFuzzer target: model.safetensors.index.json, read by Checkpoint::open_dir from a directory that
// also holds two small valid shards (sharded_checkpoint.h). Checkpoint only opens a directory, so
// each input is written to the index file of one scratch directory.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "model/safetensors.h"
#include "runtime/error.h"
#include "tests/fuzz/sharded_checkpoint.h"

namespace {

std::string scratch_dir;

void remove_scratch_dir() { std::filesystem::remove_all(scratch_dir); }

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Every input is written to a file: in RAM (/dev/shm) when there is one, the disk is far slower.
  const std::filesystem::path parent =
      std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
  std::string pattern = (parent / "runllm-fuzz-index-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) std::abort();
  scratch_dir = pattern;
  std::atexit(remove_scratch_dir);
  runllm::SafetensorsWriter first;
  first.add_f16("a", {2, 2}, {1, 2, 3, 4});
  first.add("b", runllm::DType::I32, {1}, {7, 0, 0, 0});
  first.write(scratch_dir + "/" + runllm::fuzz::kFirstShard);
  runllm::SafetensorsWriter second;
  second.add_f16("c", {3}, {5, 6, 7});
  second.write(scratch_dir + "/" + runllm::fuzz::kSecondShard);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  {
    std::ofstream index(scratch_dir + "/model.safetensors.index.json", std::ios::binary | std::ios::trunc);
    index.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!index) std::abort();
  }
  try {
    const runllm::Checkpoint checkpoint = runllm::Checkpoint::open_dir(scratch_dir);
    for (const std::string& name : checkpoint.names()) {
      const runllm::TensorView& view = checkpoint.get(name);
      if (view.dtype == runllm::DType::F16) checkpoint.read_f32(name, view.shape);
    }
  } catch (const runllm::Error&) {
  }
  return 0;
}
