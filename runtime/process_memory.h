// This process's memory as Linux reports it (/proc/self/status), for load reports: anonymous
// resident memory (RssAnon: heap and stacks, not the pages of mapped files) and the peak resident set.
#pragma once
#include <cstddef>

namespace runllm {

size_t resident_anonymous_bytes();  // RssAnon; 0 where /proc is not readable
size_t peak_resident_bytes();       // VmHWM (mapped file pages included); 0 where unreadable

}  // namespace runllm
