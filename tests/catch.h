// Includes Catch2 whichever major version the build found (2.x on Debian 12, 3.x elsewhere).
#pragma once
#ifdef RUNLLM_CATCH2_V3
#include <catch2/catch_all.hpp>
// A matcher for "the message contains this text", spelled the same for both versions.
#define HAS_SUBSTRING(text) Catch::Matchers::ContainsSubstring(text)
using Catch::Approx;  // 2.x exposes Approx globally; 3.x only in namespace Catch
#else
#include <catch2/catch.hpp>
#define HAS_SUBSTRING(text) Catch::Matchers::Contains(text)
#endif
